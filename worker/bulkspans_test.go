package worker_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestRevokeAllStormStartsNoSpanPerRevocation: a revoke_all at Clerk's
// rate limit stays one readable trace (docs/tracing.md): its revocations'
// waits, for a Retry-After pause or between two attempts, start no span
// each, as their calls start none.
func TestRevokeAllStormStartsNoSpanPerRevocation(t *testing.T) {
	env := testenv.New(t, emulator.WithRateLimit(40, 200*time.Millisecond))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 300)
	emu.FailSession(ids[7], 422) // its event still goes on the job's span
	tp, exp := tracedWorker(t, env, bulkWorker, func(c *worker.Config) { c.Bulk.Concurrency = 16 })
	r, service := tracedRequest(t, env, tp, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("result %+v", r)
	}
	var limited int
	for _, c := range emu.Calls() {
		if c.Status == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Fatalf("no 429 was answered: the storm did not happen, the test proves nothing")
	}
	var process []string
	testenv.Eventually(t, 5*time.Second, "the process span exported", func() bool {
		sends := named(children(exp.GetSpans(), service), "send ")
		return len(sends) == 1 && len(named(children(exp.GetSpans(), sends[0].SpanContext), "process ")) == 1
	})
	spans := exp.GetSpans()
	send := named(children(spans, service), "send ")[0]
	proc := named(children(spans, send.SpanContext), "process ")[0]
	counts := map[string]int{}
	for _, s := range children(spans, proc.SpanContext) {
		counts[s.Name]++
		process = append(process, s.Name)
	}
	t.Logf("%d answers 429; spans under the process span: %v", limited, counts)
	// A few listings (each page with its retries) at most: 300 sessions are
	// one page.
	if n := len(process); n > 40 {
		t.Errorf("%d spans under the revoke_all's process span (%v); want a few, none per revocation", n, counts)
	}
	var failed int
	for _, e := range proc.Events {
		if e.Name == "revoke_all.failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d revoke_all.failed events on the process span; want 1", failed)
	}
}
