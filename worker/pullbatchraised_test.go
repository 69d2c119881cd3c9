package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestPullBatchFollowsARaisedMaxBatch: a max_batch lowered on the consumer
// while the worker ran (nats consumer edit) was followed by its next pull,
// asking for one job at a time; raised again (or removed), it was not: that
// pull lasts the worker's life, so the worker prefetched one job instead of
// its quarter of the concurrency for good, and said nothing of it. The
// worker now pulls anew at the consumer's max_batch as soon as it reads it.
func TestPullBatchFollowsARaisedMaxBatch(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	// A prefetch of 4, asked for again once one is taken: with every slot
	// busy, three wait here (one, at a pull of one job, none).
	const concurrency, prefetch, waiting = 16, 4, 3
	w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = concurrency })
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.MaxRequestBatch = 1 })
	time.Sleep(3 * time.Second) // the worker reads the consumer every second
	ids := emu.CreateSessions(emu.CreateUser(), 3)
	env.Publish(t, &jobs.GetArgs{SessionID: ids[0]})
	testenv.Eventually(t, 15*time.Second, "a job run at max_batch 1", func() bool { return len(env.Results(t)) == 1 })
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.MaxRequestBatch = 0 })
	time.Sleep(3 * time.Second)
	env.Publish(t, &jobs.GetArgs{SessionID: ids[1]})
	testenv.Eventually(t, 15*time.Second, "a job run with max_batch removed", func() bool { return len(env.Results(t)) == 2 })
	testenv.Eventually(t, 5*time.Second, "ready", func() bool { return w.Worker.Ready() == nil })
	// Every slot busy: the worker holds the slots' jobs and its prefetch.
	emu.SetFaults(emulator.Faults{Latency: 10 * time.Second})
	for _, id := range emu.CreateSessions(emu.CreateUser(), 3*concurrency) {
		env.Publish(t, &jobs.GetArgs{SessionID: id})
	}
	var held int
	testenv.Eventually(t, 8*time.Second, "the slots' jobs and the prefetched ones delivered", func() bool {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending != held {
			t.Logf("%d jobs delivered", info.NumAckPending)
		}
		held = info.NumAckPending
		return held >= concurrency+waiting
	})
	if held > concurrency+prefetch {
		t.Errorf("%d jobs delivered; want at most %d", held, concurrency+prefetch)
	}
}
