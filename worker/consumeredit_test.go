package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// editConsumer changes the workers' consumer as an operator would (nats
// consumer edit) while workers run.
func editConsumer(t *testing.T, env *testenv.Env, edit func(*jetstream.ConsumerConfig)) {
	t.Helper()
	ctx := context.Background()
	c, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	edit(&cfg)
	if _, err := env.JS.UpdateConsumer(ctx, env.Topology.JobsStream, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestShortenedAckWaitDoesNotRunAJobTwice: the heartbeat kept jobs alive
// at a third of the configured ack wait, read at start. An operator who
// shortened the consumer's ack wait while the worker ran (here from 9 s to
// 1 s) had every job longer than that redelivered while it ran, and each
// redelivery, finding no record yet, called Clerk again: one revoke ran
// three times (a create would have made three sessions). The worker reads
// the consumer's ack wait as it runs and keeps jobs alive at its pace.
func TestShortenedAckWaitDoesNotRunAJobTwice(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 3)
	env.StartWorker(t, func(c *worker.Config) { c.Topology.AckWait = 9 * time.Second })
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.AckWait = time.Second })
	// A worker that reads the consumer says so within a second or two; one
	// that does not is given as long.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(env.Logs.String(), "ack wait is shorter than configured") {
			break
		}
	}
	emu.SetFaults(emulator.Faults{Latency: 4 * time.Second})
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
		time.Sleep(700 * time.Millisecond)
	}
	testenv.Eventually(t, 30*time.Second, "3 results", func() bool { return len(env.Results(t)) == len(ids) })
	testenv.Eventually(t, 10*time.Second, "the jobs acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	for _, id := range ids {
		if n := emu.RevokeCount(id); n != 1 {
			t.Errorf("session %s revoked %d times, want once: its job was redelivered while it ran", id, n)
		}
	}
	if !strings.Contains(env.Logs.String(), "ack wait is shorter than configured") {
		t.Errorf("the worker did not say the consumer's ack wait is shorter than configured")
	}
}

// TestPausedOrFilteredConsumerIsReported: a consumer paused (nats consumer
// pause) or given a filter (nats consumer edit) while workers ran left its
// jobs in the stream, and the workers ready and silent: nothing told the
// operator why jobs waited. The worker says so in its log and on /readyz,
// and is ready again once the consumer delivers every job. A job the
// filter passed over is never delivered (the consumer moved past it): it
// is not lost, the backstop dead-letters it, and
// the worker says so when the filter goes.
func TestPausedOrFilteredConsumerIsReported(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 3)
	w := env.StartWorker(t)
	ctx := context.Background()
	notReady := func(what, want string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, "not ready: "+what, func() bool {
			err := w.Worker.Ready()
			return err != nil && strings.Contains(err.Error(), want)
		})
		if !strings.Contains(env.Logs.String(), want) {
			t.Errorf("the log does not say %q", want)
		}
	}

	if _, err := env.JS.PauseConsumer(ctx, env.Topology.JobsStream, env.Topology.Consumer, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	env.Publish(t, &jobs.RevokeArgs{SessionID: ids[0]})
	notReady("paused", "is paused")
	if _, err := env.JS.ResumeConsumer(ctx, env.Topology.JobsStream, env.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the job done once resumed", func() bool { return len(env.Results(t)) == 1 })
	testenv.Eventually(t, 5*time.Second, "ready again", func() bool { return w.Worker.Ready() == nil })

	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.FilterSubject = env.Topology.Subjects.Job(jobs.OpGet) })
	env.Publish(t, &jobs.RevokeArgs{SessionID: ids[1]})
	notReady("filtered", "delivers only jobs on "+env.Topology.Subjects.Job(jobs.OpGet))
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.FilterSubject = "" })
	testenv.Eventually(t, 5*time.Second, "ready again", func() bool { return w.Worker.Ready() == nil })
	testenv.Eventually(t, 5*time.Second, "the worker says a job was passed over", func() bool {
		return strings.Contains(env.Logs.String(), "not the jobs its filter passed over")
	})
	env.Publish(t, &jobs.RevokeArgs{SessionID: ids[2]})
	testenv.Eventually(t, 20*time.Second, "the job passed over recorded", func() bool {
		return len(env.Results(t)) == 2 && len(deadLetters(t, env)) == 1 && env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	if n := emu.RevokeCount(ids[1]); n != 0 {
		t.Errorf("the job passed over ran %d times", n)
	}
}

// editStream changes one of the workers' streams as an operator would
// (nats stream edit) while workers run.
func editStream(t *testing.T, env *testenv.Env, name string, edit func(*jetstream.StreamConfig)) {
	t.Helper()
	ctx := context.Background()
	s, err := env.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	edit(&cfg)
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestStreamEditedWhileRunningIsLogged: the worker set its streams at
// start only, so a stream edited while it ran (here the results stream
// allowed 5 records a subject, so that a job could have two results, and
// its records kept 1 minute instead of a day) went unseen until the next
// start. The worker now compares JetStream with its configuration every
// sweep, warns of each difference once, and says when it is gone.
func TestStreamEditedWhileRunningIsLogged(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	var was jetstream.StreamConfig
	editStream(t, env, env.Topology.ResultsStream, func(c *jetstream.StreamConfig) {
		was = *c
		c.MaxMsgsPerSubject, c.MaxAge = 5, time.Minute
	})
	for _, field := range []string{"max_msgs_per_subject", "max_age"} {
		testenv.Eventually(t, 10*time.Second, "a warning naming "+field, func() bool {
			for _, l := range strings.Split(env.Logs.String(), "\n") {
				if strings.Contains(l, "changed while the workers run") && strings.Contains(l, env.Topology.ResultsStream+": "+field) {
					return true
				}
			}
			return false
		})
	}
	editStream(t, env, env.Topology.ResultsStream, func(c *jetstream.StreamConfig) { *c = was })
	testenv.Eventually(t, 10*time.Second, "the drift said to be gone", func() bool {
		return strings.Count(env.Logs.String(), "JetStream matches the configuration again") == 2
	})
	if n := strings.Count(env.Logs.String(), "changed while the workers run"); n != 2 {
		t.Errorf("%d warnings of the changes, want one each (2)", n)
	}
}

// TestUnfixableDriftSaysStartRefuses: a stream setting JetStream cannot
// undo (deny_delete on the jobs stream), set while the workers run, was
// logged as "a worker's start sets it back", while a worker's start
// refuses to run on it: an operator restarting the fleet to fix it would
// stop every worker. It is now said as what it is, with the fix.
func TestUnfixableDriftSaysStartRefuses(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	editStream(t, env, env.Topology.JobsStream, func(c *jetstream.StreamConfig) { c.DenyDelete = true })
	testenv.Eventually(t, 10*time.Second, "the drift logged", func() bool {
		return strings.Contains(env.Logs.String(), env.Topology.JobsStream+": deny_delete")
	})
	for _, l := range strings.Split(env.Logs.String(), "\n") {
		if strings.Contains(l, "deny_delete") && !strings.Contains(l, "refuse to run") {
			t.Errorf("the drift is not said to stop workers from starting: %s", l)
		}
	}
}
