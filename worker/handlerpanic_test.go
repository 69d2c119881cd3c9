package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestHandlerPanicShowsNoSecret: a custom handler that panics with a value
// quoting its job (a refresh job's tokens and cookie) killed the worker,
// and the runtime printed the value as it was on standard error, every
// job in flight lost with it. The panic is now the job's error, redacted
// as any other: the job is dead-lettered as permanent (a refresh may have
// been sent), the requester told, the worker running on.
func TestHandlerPanicShowsNoSecret(t *testing.T) {
	env := testenv.New(t)
	const refresh, cookie = "opaque-refresh-token-panic-0123", "opaque-cookie-value-panic-4567"
	expired := "eyJhbGciOiJSUzI1NiJ9.eyJzaWQiOiJzZXNzX3BhbmljIn0.c2lnbmF0dXJlcGFuaWM"
	h := handlers.HandlerFunc(func(_ context.Context, a jobs.Args) (handlers.Answer, error) {
		if r, ok := a.(*jobs.RefreshArgs); ok {
			panic(fmt.Sprintf("cannot refresh with %s / %s / %v", r.RefreshToken, r.ExpiredToken, r.RequestHeaders))
		}
		return handlers.Answer{Result: map[string]string{"status": "fine"}}, nil
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(h))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := env.Client.Request(ctx, &jobs.RefreshArgs{Common: jobs.Common{JobID: "panicky"}, SessionID: "sess_panic",
		ExpiredToken: expired, RefreshToken: refresh, RequestOrigin: "https://app.example",
		RequestHeaders: map[string]any{"Cookie": cookie}})
	if err == nil {
		t.Fatalf("a panicking handler's job succeeded: %+v", res)
	}
	if _, err := env.Client.Request(ctx, &jobs.GetArgs{Common: jobs.Common{JobID: "after", ReplyTo: ""}, SessionID: "sess_after"}); err != nil {
		t.Fatalf("the worker does not run jobs after the panic: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the panicking job dead-lettered", func() bool { return len(deadLetters(t, env)) == 1 })
	dl := deadLetters(t, env)["panicky"]
	if dl.Error.Class != jobs.ClassPermanent || dl.Deliveries != 1 || !strings.Contains(dl.Error.Message, "panicked") {
		t.Errorf("dead letter %+v: want one delivery, permanent, saying the handler panicked", dl)
	}
	var all strings.Builder
	fmt.Fprintf(&all, "%+v %v %+v\n%s\n", res, err, dl, env.Logs.String())
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		fmt.Fprintf(&all, "%v %s\n", m.Header, m.Data)
	}
	for _, r := range env.Results(t) {
		fmt.Fprintf(&all, "%+v\n", r)
	}
	for _, s := range []string{refresh, cookie, expired, "c2lnbmF0dXJlcGFuaWM"} {
		if strings.Contains(all.String(), s) {
			t.Errorf("%s is shown: %s", s, all.String())
		}
	}
}
