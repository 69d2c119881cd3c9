package worker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestUnsupportedJobIsNotRetried: a handler that answers ErrUnsupported
// (a job type it does not run, a revoke_all's lock_user on a worker that
// cannot lock users) makes a permanent failure, dead-lettered as such;
// but the retry within the delivery took it for a transport error and ran
// the handler again and again for the whole retry budget first. It now
// runs once.
func TestUnsupportedJobIsNotRetried(t *testing.T) {
	env := testenv.New(t)
	var calls atomic.Int32
	h := handlers.HandlerFunc(func(context.Context, jobs.Args) (handlers.Answer, error) {
		calls.Add(1)
		return handlers.Answer{}, fmt.Errorf("lock_user: %w", handlers.ErrUnsupported)
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(h))
	env.Publish(t, &jobs.GetArgs{SessionID: "sess_unsupported", Common: jobs.Common{JobID: "unsupported"}})
	testenv.Eventually(t, 30*time.Second, "the job dead-lettered", func() bool {
		_, ok := deadLetters(t, env)["unsupported"]
		return ok
	})
	dl := deadLetters(t, env)["unsupported"]
	if n := calls.Load(); n != 1 || dl.Error.Class != jobs.ClassPermanent || dl.Attempts != 1 {
		t.Errorf("handler called %d times, dead letter %+v (attempts %d); want one call, permanent", n, dl.Error, dl.Attempts)
	}
}
