package tracing_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/jobs"
)

var traceparentPattern = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

// TestTraceContextSurvivesJetStream publishes a job with a publisher span
// and baggage into the real jobs stream, consumes it, and checks that the
// consumer's span is the publisher span's child and sees the baggage.
func TestTraceContextSurvivesJetStream(t *testing.T) {
	e := testenv.New(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := tp.Tracer("test")

	// The publisher continues a trace that arrived with vendor trace state.
	state, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	upstream := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0: 0xab, 15: 1}, SpanID: trace.SpanID{7: 2}, TraceFlags: trace.FlagsSampled, TraceState: state, Remote: true,
	})
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(trace.ContextWithRemoteSpanContext(context.Background(), upstream), bag)
	ctx, pub := tracer.Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindProducer))

	msg := nats.NewMsg(e.Topology.Subjects.Job(jobs.OpRevoke))
	msg.Data = []byte(testenv.JobBody(jobs.OpRevoke, "trace-1"))
	msg.Header.Set(jetstream.MsgIDHeader, "trace-1")
	tracing.Inject(ctx, msg)
	pubCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.JS.PublishMsg(pubCtx, msg); err != nil {
		t.Fatal(err)
	}
	pub.End()

	// Consume as the worker does: from its durable consumer.
	cons, err := e.JS.Consumer(pubCtx, e.Topology.JobsStream, e.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Ack(); err != nil {
		t.Fatal(err)
	}
	h := got.Headers()
	if tp := h.Get("traceparent"); !traceparentPattern.MatchString(tp) || len(h["Traceparent"]) != 0 {
		t.Errorf("headers on the wire %v, want one lower-case W3C traceparent", h)
	}
	if h.Get(jetstream.MsgIDHeader) != "trace-1" {
		t.Errorf("Inject lost the other headers: %v", h)
	}

	dctx, deliver := tracer.Start(tracing.Extract(context.Background(), h), "deliver", trace.WithSpanKind(trace.SpanKindConsumer))
	deliver.End()
	if v := baggage.FromContext(dctx).Member("tenant").Value(); v != "acme" {
		t.Errorf("baggage tenant = %q, want acme", v)
	}
	if s := trace.SpanContextFromContext(dctx).TraceState().Get("vendor"); s != "abc" {
		t.Errorf("trace state vendor = %q, want abc", s)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want publish and deliver", len(spans))
	}
	p, d := spans[0], spans[1]
	if p.Name != "publish" || d.Name != "deliver" {
		p, d = d, p
	}
	if d.SpanContext.TraceID() != upstream.TraceID() || d.Parent.SpanID() != p.SpanContext.SpanID() || !d.Parent.IsRemote() {
		t.Errorf("deliver span: trace %s parent %s (remote %v), want trace %s parent %s",
			d.SpanContext.TraceID(), d.Parent.SpanID(), d.Parent.IsRemote(), upstream.TraceID(), p.SpanContext.SpanID())
	}
}

// TestExtractReadsAnyCase: publishers in other languages, and Go code using
// http.Header, spell the headers differently; NATS keeps the spelling.
func TestExtractReadsAnyCase(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		t.Run(key, func(t *testing.T) {
			h := nats.Header{key: {tp}, "Baggage": {"tenant=acme"}}
			ctx := tracing.Extract(context.Background(), h)
			sc := trace.SpanContextFromContext(ctx)
			if sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || sc.SpanID().String() != "b7ad6b7169203331" || !sc.IsSampled() || !sc.IsRemote() {
				t.Errorf("extracted %v", sc)
			}
			if baggage.FromContext(ctx).Member("tenant").Value() != "acme" {
				t.Error("baggage not extracted")
			}
		})
	}
	// Why Extract exists: the http.Header carrier canonicalises the key
	// and misses what a nats.py or nats.js publisher wrote. (Should OTel
	// change that, Extract's doc comment must change with it.)
	lower := propagation.HeaderCarrier(http.Header(nats.Header{"traceparent": {tp}}))
	if trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), lower)).IsValid() {
		t.Error("propagation.HeaderCarrier now reads lower-case NATS headers: update the doc comments of Inject and Extract")
	}
	if ctx := tracing.Extract(context.Background(), nil); trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a nil header gave a span context")
	}
}

// TestExtractLeavesOutSecrets: baggage and tracestate travel into every
// record of a job, so a member holding secret-shaped text is left out on
// the way in, and the rest travels on.
func TestExtractLeavesOutSecrets(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	for _, tc := range []struct {
		name, baggage, tracestate string
		keep                      []string // baggage members left
		keepState                 bool
	}{
		{"plain", "tenant=acme,region=eu", "vendor=abc", []string{"tenant", "region"}, true},
		{"bearer token, percent-encoded", "tenant=acme,authorization=Bearer%20" + jwt, "vendor=abc", []string{"tenant"}, true},
		{"session cookie", "cookie=__session%3D" + jwt + ",tenant=acme", "", []string{"tenant"}, false},
		// Python's propagator writes a space as '+' (quote_plus), and reads
		// '+' as a space.
		{"opaque bearer token, form-encoded", "tenant=acme,authorization=Bearer+Zm9vYmFyYmF6cXV4MTIzNDU2", "", []string{"tenant"}, false},
		{"clerk key as a property", "tenant=acme;key=sk_" + "live_abcdEFGH1234", "", nil, false},
		{"a key named like a secret", "sk_" + "test_abcdEFGH1234=1", "", nil, false},
		{"tracestate", "tenant=acme", "vendor=" + jwt, []string{"tenant"}, false},
		// tracestate is read as baggage is: a key or token percent- or
		// form-encoded is as much a secret to whoever decodes it.
		{"clerk key in tracestate, percent-encoded", "tenant=acme", "vendor=sk%5F" + "live%5FabcdEFGH1234", []string{"tenant"}, false},
		{"bearer token in tracestate, percent-encoded", "tenant=acme", "vendor=Bearer%20Zm9vYmFyYmF6cXV4MTIzNDU2", []string{"tenant"}, false},
		{"bearer token in tracestate, form-encoded", "tenant=acme", "vendor=Bearer+Zm9vYmFyYmF6cXV4MTIzNDU2", []string{"tenant"}, false},
		{"session cookie in tracestate", "tenant=acme", "vendor=__session%3DZm9vYmFyYmF6cXV4MTIzNDU2", []string{"tenant"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := nats.Header{"traceparent": {tp}, "baggage": {tc.baggage}}
			if tc.tracestate != "" {
				h["tracestate"] = []string{tc.tracestate}
			}
			ctx := tracing.Extract(context.Background(), h)
			var got []string
			for _, m := range baggage.FromContext(ctx).Members() {
				got = append(got, m.Key())
			}
			slices.Sort(got) // members come in no set order
			if want := slices.Sorted(slices.Values(tc.keep)); !slices.Equal(got, want) {
				t.Errorf("baggage members %v; want %v", got, want)
			}
			sc := trace.SpanContextFromContext(ctx)
			if !sc.IsValid() || sc.TraceState().Len() > 0 != tc.keepState {
				t.Errorf("span context %v, tracestate %q; want it valid, tracestate kept %v", sc.IsValid(), sc.TraceState().String(), tc.keepState)
			}
			out := &nats.Msg{Subject: "x"}
			tracing.Inject(ctx, out)
			for k, v := range out.Header {
				if joined := strings.Join(v, " "); strings.Contains(joined, "eyJ") || strings.Contains(joined, "k_live_") || strings.Contains(joined, "k_test_") ||
					strings.Contains(joined, "Zm9vYmFyYmF6cXV4MTIzNDU2") || strings.Contains(joined, "abcdEFGH1234") {
					t.Errorf("header %s carries it on: %q", k, v)
				}
			}
		})
	}
}

// TestInjectReplacesTraceHeaders: a record built from a job's headers must
// carry the worker's span, not the publisher's, in one spelling only.
func TestInjectReplacesTraceHeaders(t *testing.T) {
	stale := "00-11111111111111111111111111111111-2222222222222222-01"
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0: 0xcd, 15: 3}, SpanID: trace.SpanID{7: 4}, TraceFlags: trace.FlagsSampled})
	withSpan := trace.ContextWithSpanContext(context.Background(), sc)
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		header nats.Header
		want   nats.Header
	}{
		{
			name:   "replaces every spelling",
			ctx:    withSpan,
			header: nats.Header{"Traceparent": {stale}, "TRACESTATE": {"old=1"}, "baggage": {"old=1"}, "Dlq-Op": {"revoke"}},
			want:   nats.Header{"traceparent": {"00-cd000000000000000000000000000003-0000000000000004-01"}, "Dlq-Op": {"revoke"}},
		},
		{
			name:   "no span removes them",
			ctx:    context.Background(),
			header: nats.Header{"traceparent": {stale}, "Nats-Msg-Id": {"x"}},
			want:   nats.Header{"Nats-Msg-Id": {"x"}},
		},
		{
			name:   "no span, no header: stays nil",
			ctx:    context.Background(),
			header: nil,
			want:   nil,
		},
		{
			name:   "allocates a nil header",
			ctx:    withSpan,
			header: nil,
			want:   nats.Header{"traceparent": {"00-cd000000000000000000000000000003-0000000000000004-01"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := &nats.Msg{Subject: "x", Header: tc.header}
			tracing.Inject(tc.ctx, msg)
			if len(msg.Header) != len(tc.want) || (msg.Header == nil) != (tc.want == nil) {
				t.Fatalf("header %v, want %v", msg.Header, tc.want)
			}
			for k, v := range tc.want {
				if got := msg.Header[k]; len(got) != 1 || got[0] != v[0] {
					t.Errorf("%s = %v, want %v (header %v)", k, got, v, msg.Header)
				}
			}
		})
	}
}

func TestContextWithTraceparent(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx, err := tracing.ContextWithTraceparent(context.Background(), " "+tp+"\n", "vendor=abc")
	sc := trace.SpanContextFromContext(ctx)
	if err != nil || sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || !sc.IsRemote() || sc.TraceState().Get("vendor") != "abc" {
		t.Fatalf("ContextWithTraceparent: %v, %v", sc, err)
	}
	for _, bad := range []string{"", "0af7651916cd43dd8448eb211c80319c", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"} {
		ctx, err := tracing.ContextWithTraceparent(context.Background(), bad, "")
		if err == nil || !strings.Contains(err.Error(), "00-<32 hex digits") || trace.SpanContextFromContext(ctx).IsValid() {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}
