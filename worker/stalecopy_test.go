package worker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestPrefetchedCreateRunElsewhereIsNotRunAgain: a create waits in a busy
// worker's prefetch buffer, where no heartbeat keeps it, past the ack
// wait; JetStream gives it to another worker, which creates the session
// and records the job. When the busy worker's slot frees, it takes its
// own copy from the buffer: a first delivery, of a job stored after its
// consumer was created, so it was not looked for and Clerk was asked for
// a second session. A create (or refresh) that waited past half the ack
// wait is now looked for before it runs, as a redelivery is.
func TestPrefetchedCreateRunElsewhereIsNotRunAgain(t *testing.T) {
	env := testenv.New(t)
	defer func() {
		if t.Failed() {
			t.Log(env.Logs.String())
		}
	}()
	release := make(chan struct{})
	var creates atomic.Int32
	h := handlers.HandlerFunc(func(ctx context.Context, a jobs.Args) (handlers.Answer, error) {
		switch a := a.(type) {
		case *jobs.CreateArgs:
			creates.Add(1)
			return handlers.Answer{Result: map[string]string{"id": "sess_" + a.JobID}}, nil
		case *jobs.GetArgs:
			if a.SessionID == "sess_block" {
				<-release // the busy worker's slot
			}
		}
		return handlers.Answer{Result: map[string]string{"status": "fine"}}, nil
	})
	busyWithPrefetched(t, env, env.WorkerConfig(), h, &jobs.CreateArgs{UserID: "user_stale", Common: jobs.Common{JobID: "create-stale"}})

	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(h))
	testenv.Eventually(t, 30*time.Second, "the create recorded by the other worker", func() bool {
		for _, r := range env.Results(t) {
			if r.JobID == "create-stale" {
				return true
			}
		}
		return false
	})
	close(release)
	testenv.Eventually(t, 30*time.Second, "the busy worker's copy settled", func() bool {
		for _, l := range strings.Split(env.Logs.String(), "\n") {
			if strings.Contains(l, `"job_id":"create-stale"`) && strings.Contains(l, "already_recorded") {
				return true
			}
		}
		return false
	})
	if n := creates.Load(); n != 1 {
		t.Errorf("one create job ran %d times", n)
	}
}

// TestBackloggedJobIsHandedBackAtStop: a job other than a create or
// refresh, prefetched past half its ack wait (every job of a backlog is
// stored that long ago), is handed back when the worker stops, at once:
// run twice it repeats a harmless call, and held back it waited a whole
// ack wait (30 s by default) for every prefetched job of a stopping
// worker.
func TestBackloggedJobIsHandedBackAtStop(t *testing.T) {
	env := testenv.New(t)
	h := handlers.HandlerFunc(func(ctx context.Context, a jobs.Args) (handlers.Answer, error) {
		if g, ok := a.(*jobs.GetArgs); ok && g.SessionID == "sess_block" {
			<-ctx.Done() // the busy worker's slot, until the drain cuts it
			return handlers.Answer{}, ctx.Err()
		}
		return handlers.Answer{Result: map[string]string{"status": "fine"}}, nil
	})
	cfg := env.WorkerConfig()
	cfg.DrainTimeout = 50 * time.Millisecond
	busy := busyWithPrefetched(t, env, cfg, h, &jobs.GetArgs{SessionID: "sess_other", Common: jobs.Common{JobID: "backlogged"}})
	time.Sleep(cfg.Topology.AckWait/2 + 100*time.Millisecond) // a backlog's age
	busy.Stop(t)
	// Handed back, both are delivered again at once; held back, the
	// prefetched one stayed with the stopped worker until its ack wait
	// passed, about a second on.
	c, err := env.JS.Consumer(t.Context(), cfg.Topology.JobsStream, cfg.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var again []string
	for m := range batch.Messages() {
		var g jobs.GetArgs
		testenv.DecodeJSON(t, m.Data(), &g)
		again = append(again, g.JobID)
	}
	if !slices.Contains(again, "backlogged") {
		t.Errorf("after the stop, %v delivered at once; want the backlogged job among them", again)
	}
}

// busyWithPrefetched starts the busy worker of the stale-copy tests: of
// concurrency 1, running h, whose slot the job "blocker" (a get of
// sess_block, which h holds) takes, and whose pull then prefetches
// prefetched, stored more than a second after its consumer was created
// (not a job the consumer may have delivered before: see mayBeAgain). Four
// more jobs fill what the pull still asks for.
func busyWithPrefetched(t *testing.T, env *testenv.Env, cfg worker.Config, h handlers.Handler, prefetched jobs.Args) *testenv.Running {
	t.Helper()
	cfg.Concurrency = 1
	ackPending := func() int {
		c, err := env.JS.Consumer(t.Context(), cfg.Topology.JobsStream, cfg.Topology.Consumer)
		if err != nil {
			return -1
		}
		return c.CachedInfo().NumAckPending
	}
	busy := env.StartWorkerWith(t, env.ClerkClient(t, ""), cfg, worker.WithHandler(h))
	time.Sleep(1100 * time.Millisecond)
	env.Publish(t, &jobs.GetArgs{SessionID: "sess_block", Common: jobs.Common{JobID: "blocker"}})
	testenv.Eventually(t, 10*time.Second, "the busy worker's slot taken", func() bool { return ackPending() == 1 })
	// At once, while the busy worker's pull still asks for its prefetch.
	env.Publish(t, prefetched)
	testenv.Eventually(t, 10*time.Second, "the job prefetched", func() bool { return ackPending() == 2 })
	for i := range 4 {
		env.Publish(t, &jobs.GetArgs{SessionID: "sess_fill", Common: jobs.Common{JobID: fmt.Sprintf("fill-%d", i)}})
	}
	return busy
}
