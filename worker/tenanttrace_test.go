package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestTenantCannotJoinAnotherTenantsTrace: a tenant's job that carries the
// traceparent of another tenant's trace (svc_a copying svc_b's trace id)
// does not put the worker's spans into that trace: the delivery starts a
// trace of its own, linked to the span the job named, and the reply
// carries the new trace, not the one the job claimed.
func TestTenantCannotJoinAnotherTenantsTrace(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	tp, exp := tracedWorker(t, env)

	// svc_b's trace, whose context svc_a has come to know.
	_, victim := tp.Tracer("svc_b").Start(context.Background(), "svc_b incident")
	victim.End()
	claimed := victim.SpanContext()

	inbox := "_INBOX.svc_a." + env.NC.NewRespInbox()[len("_INBOX."):]
	sub, err := env.NC.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subj := env.Topology.Subjects
	subj.Tenant = "svc_a"
	// svc_a publishes with svc_b's span context: its traceparent.
	ctx := trace.ContextWithSpanContext(context.Background(), claimed)
	if _, err := jobs.Publish(ctx, env.JS, subj, &jobs.RevokeArgs{SessionID: id, Common: jobs.Common{ReplyTo: inbox}}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	var r jobs.Result
	testenv.DecodeJSON(t, m.Data, &r)
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("result %+v", r)
	}
	var process tracetest.SpanStub
	testenv.Eventually(t, 5*time.Second, "the process span exported", func() bool {
		ps := named(exp.GetSpans(), "process ")
		if len(ps) != 1 {
			return false
		}
		process = ps[0]
		return true
	})
	for _, s := range exp.GetSpans() {
		if s.Name != "svc_b incident" && s.SpanContext.TraceID() == claimed.TraceID() {
			t.Errorf("the worker's span %q joined svc_b's trace %s", s.Name, claimed.TraceID())
		}
	}
	linked := false
	for _, l := range process.Links {
		if l.SpanContext.SpanID() == claimed.SpanID() && l.SpanContext.TraceID() == claimed.TraceID() {
			linked = true
		}
	}
	if !linked {
		t.Errorf("process span %q (parent %v) has links %v, want one to the job's traceparent %v", process.Name, process.Parent, process.Links, claimed)
	}
	got := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(map[string][]string{"Traceparent": m.Header.Values("traceparent")}))
	if sc := trace.SpanContextFromContext(got); sc.TraceID() == claimed.TraceID() || sc.TraceID() != process.SpanContext.TraceID() {
		t.Errorf("reply traceparent %q: want the worker's own trace %s, not the claimed %s", m.Header.Get("traceparent"), process.SpanContext.TraceID(), claimed.TraceID())
	}
}

// TestTenantDeadLetterCannotJoinAnotherTenantsTrace: the backstop's span
// for a tenant's job JetStream gave up on does not join the trace the job's
// traceparent named either; it is linked to it.
func TestTenantDeadLetterCannotJoinAnotherTenantsTrace(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	claimed := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		SpanID:     trace.SpanID{0x0b, 1, 2, 3, 4, 5, 6, 7},
		TraceFlags: trace.FlagsSampled,
	})
	m := nats.NewMsg(env.Topology.Subjects.TenantJob("svc_a", jobs.OpRevoke))
	m.Data = []byte(`{"session_id":"sess_crashloop"}`)
	m.Header.Set("traceparent", "00-"+claimed.TraceID().String()+"-"+claimed.SpanID().String()+"-01")
	if _, err := env.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Play a worker that crashes on every delivery, until JetStream stops
	// delivering the job.
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < env.Topology.MaxDeliver+jobs.BackstopMargin; i++ {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range b.Messages() {
			got++
		}
		if got != 1 {
			t.Fatalf("delivery %d: got %d jobs", i+1, got)
		}
	}
	_, exp := tracedWorker(t, env)
	var span tracetest.SpanStub
	testenv.Eventually(t, 20*time.Second, "the backstop's span exported", func() bool {
		ss := named(exp.GetSpans(), "dead_letter max_deliveries")
		if len(ss) != 1 {
			return false
		}
		span = ss[0]
		return true
	})
	if span.SpanContext.TraceID() == claimed.TraceID() {
		t.Errorf("the backstop's span joined the trace %s its tenant's job named", claimed.TraceID())
	}
	if len(span.Links) != 1 || span.Links[0].SpanContext.TraceID() != claimed.TraceID() || span.Links[0].SpanContext.SpanID() != claimed.SpanID() {
		t.Errorf("the backstop's span has links %v, want one to the job's traceparent", span.Links)
	}
	for _, l := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		if tp := l.Header.Get("traceparent"); tp == "" || strings.Contains(tp, claimed.TraceID().String()) {
			t.Errorf("dead letter traceparent %q: want the backstop span's trace", tp)
		}
	}
}
