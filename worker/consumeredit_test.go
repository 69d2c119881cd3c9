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
