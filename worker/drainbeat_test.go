package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestJobPastDrainTimeoutIsKeptAlive: the shutdown waits for every job in
// flight to return, past the drain timeout too (a handler that does not
// stop at once when its context ends), but its heartbeat stopped at the
// drain timeout: such a job was redelivered, to another worker, while it
// still ran here, and run twice. The heartbeat now lasts as long as the
// worker holds jobs.
func TestJobPastDrainTimeoutIsKeptAlive(t *testing.T) {
	env := testenv.New(t)
	started, release := make(chan struct{}, 1), make(chan struct{})
	slowToStop := handlers.HandlerFunc(func(ctx context.Context, _ jobs.Args) (handlers.Answer, error) {
		started <- struct{}{}
		<-ctx.Done()
		<-release // its last call, not cut by the context, still under way
		return handlers.Answer{Result: map[string]string{"status": "done"}}, nil
	})
	cfg := env.WorkerConfig()
	cfg.DrainTimeout = 0
	first := env.StartWorkerWith(t, env.ClerkClient(t, ""), cfg, worker.WithHandler(slowToStop))
	env.Publish(t, &jobs.GetArgs{SessionID: "sess_slow", Common: jobs.Common{JobID: "past-drain"}})
	<-started

	var again atomic.Int32
	other := handlers.HandlerFunc(func(context.Context, jobs.Args) (handlers.Answer, error) {
		again.Add(1)
		return handlers.Answer{Result: map[string]string{"status": "again"}}, nil
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(other))

	stopped := make(chan struct{})
	go func() { first.Stop(t); close(stopped) }()
	testenv.Eventually(t, 10*time.Second, "the drain timeout passed", func() bool {
		return strings.Contains(env.Logs.String(), "drain timeout")
	})
	// Three ack waits: a job not kept alive is redelivered in one.
	time.Sleep(3 * env.Topology.AckWait)
	close(release)
	<-stopped
	testenv.Eventually(t, 10*time.Second, "the job recorded", func() bool { return len(env.Results(t)) == 1 })
	if n := again.Load(); n != 0 {
		t.Errorf("the job ran %d more times elsewhere while the stopping worker still ran it", n)
	}
	if r := env.Results(t)[0]; r.Deliveries != 1 {
		t.Errorf("result %+v: delivered %d times; want once", r, r.Deliveries)
	}
}
