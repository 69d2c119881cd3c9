package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestFilterHiddenByRefusedPullsIsStillSaid: an operator gives the
// consumer a filter while the workers run (a revoke is passed over), then a
// max_expires below the workers' pulls' expiry, removes the filter, and
// then the max_expires. The consumer never delivers the revoke it passed over: the
// backstop dead-letters it as max_deliveries, never run. The worker warned
// of that only when a filter alone had held the consumer up: with the
// refusal reported in its place when the filter went, it said "the
// consumer delivers every job again" at Info level, and nothing of the job
// to replay.
func TestFilterHiddenByRefusedPullsIsStillSaid(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 2)
	w := env.StartWorker(t)
	notReady := func(what, want string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, "not ready: "+what, func() bool {
			err := w.Worker.Ready()
			return err != nil && strings.Contains(err.Error(), want)
		})
	}
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.FilterSubject = env.Topology.Subjects.Job(jobs.OpGet) })
	notReady("filtered", "delivers only jobs on")
	env.Publish(t, &jobs.RevokeArgs{SessionID: ids[0]})
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.MaxRequestExpires = 100 * time.Millisecond })
	notReady("refused", "max_expires")
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.FilterSubject = "" })
	time.Sleep(3 * time.Second) // the worker reads the consumer every second
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.MaxRequestExpires = 0 })
	testenv.Eventually(t, 10*time.Second, "ready again", func() bool { return w.Worker.Ready() == nil })
	testenv.Eventually(t, 5*time.Second, "the worker says a job was passed over", func() bool {
		return strings.Contains(env.Logs.String(), "not the jobs its filter passed over")
	})
	// It was passed over indeed: dead-lettered by the backstop.
	env.Publish(t, &jobs.RevokeArgs{SessionID: ids[1]})
	testenv.Eventually(t, 20*time.Second, "the job passed over recorded", func() bool {
		return len(env.Results(t)) == 1 && len(deadLetters(t, env)) == 1 && env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	if n := emu.RevokeCount(ids[0]); n != 0 {
		t.Errorf("the job passed over ran %d times", n)
	}
}
