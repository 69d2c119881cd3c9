package worker_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayOfAnUntracedDeadLetterIsLinkedToNothing: a dead letter without
// a traceparent (nobody traced the job) gives its replay no link, rather
// than a link to the operator's own span, which would claim that span
// dead-lettered the job.
func TestReplayOfAnUntracedDeadLetterIsLinkedToNothing(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t) // tracing off
	r, err := requestAll(env, &jobs.RevokeArgs{SessionID: "sess_missing"}, 20*time.Second, nil)
	if err != nil || r.Outcome != jobs.Failed {
		t.Fatalf("revoke of a missing session: %+v, %v", r, err)
	}
	testenv.Eventually(t, 5*time.Second, "a dead letter", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	dl := env.StreamMsgs(t, env.Topology.DeadLetterStream)[0]
	if tp := dl.Header.Get("traceparent"); tp != "" {
		t.Fatalf("the untraced job's dead letter carries traceparent %q: the test proves nothing", tp)
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	replay := replayAsOperator(t, env, tp, exp, dl.Sequence)
	if len(replay) != 1 {
		t.Fatalf("%d send spans under the operator's span; want 1", len(replay))
	}
	for _, l := range replay[0].Links {
		t.Errorf("the replay is linked to span %s (the operator's is %s); want no link", l.SpanContext.SpanID(), replay[0].Parent.SpanID())
	}
}
