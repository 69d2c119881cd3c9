package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestLongJobsAreKeptAlive: a job that runs for several ack waits is not
// redelivered meanwhile.
func TestLongJobsAreKeptAlive(t *testing.T) {
	env := testenv.New(t)
	slow := handlers.HandlerFunc(func(ctx context.Context, a jobs.Args) (handlers.Answer, error) {
		select {
		case <-time.After(3 * env.Topology.AckWait):
		case <-ctx.Done():
			return handlers.Answer{}, ctx.Err()
		}
		return handlers.Answer{Result: []byte(`{}`)}, nil
	})
	cfg := env.WorkerConfig()
	env.StartWorkerWith(t, env.ClerkClient(t, ""), cfg, worker.WithHandler(slow))
	for i := 0; i < 3; i++ {
		env.Publish(t, &jobs.GetArgs{SessionID: "sess_slow"})
	}
	testenv.Eventually(t, 20*time.Second, "3 results", func() bool { return len(env.Results(t)) == 3 })
	for _, r := range env.Results(t) {
		if r.Deliveries != 1 {
			t.Errorf("job %s delivered %d times while it ran; want 1", r.JobID, r.Deliveries)
		}
	}
}
