package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestHandlerPanicWithANilPanicValue: handlers.Panic is exported, and a
// custom handler may raise one (a goroutine's panic carried back, as
// revoke_all does). Raised as a nil *handlers.Panic, the worker's
// recoverPanic read its Stack inside its deferred recover: a second panic
// there, which nothing recovers, killed the process with every job in
// flight. It is the job's error like any other panic's value.
func TestHandlerPanicWithANilPanicValue(t *testing.T) {
	env := testenv.New(t)
	h := handlers.HandlerFunc(func(_ context.Context, a jobs.Args) (handlers.Answer, error) {
		if g, ok := a.(*jobs.GetArgs); ok && g.SessionID == "sess_nilpanic" {
			var p *handlers.Panic
			panic(p)
		}
		return handlers.Answer{Result: map[string]string{"status": "fine"}}, nil
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(h))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if res, err := env.Client.Request(ctx, &jobs.GetArgs{Common: jobs.Common{JobID: "nil-panic"}, SessionID: "sess_nilpanic"}); err == nil {
		t.Fatalf("a panicking handler's job succeeded: %+v", res)
	}
	if _, err := env.Client.Request(ctx, &jobs.GetArgs{Common: jobs.Common{JobID: "after"}, SessionID: "sess_after"}); err != nil {
		t.Fatalf("the worker does not run jobs after the panic: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the panicking job dead-lettered", func() bool { return len(deadLetters(t, env)) == 1 })
	if dl := deadLetters(t, env)["nil-panic"]; dl.Error.Class != jobs.ClassPermanent || !strings.Contains(dl.Error.Message, "panicked") {
		t.Errorf("dead letter %+v: want permanent, saying the handler panicked", dl)
	}
}
