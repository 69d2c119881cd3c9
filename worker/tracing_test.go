package worker_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// tracedWorker runs a worker whose spans, and its Clerk client's, go to an
// in-memory exporter.
func tracedWorker(t *testing.T, env *testenv.Env, edits ...func(*worker.Config)) (trace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(env.Clerk.URL), clerkapi.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.WorkerConfig()
	cfg.TracerProvider = tp
	for _, edit := range edits {
		edit(&cfg)
	}
	env.StartWorkerWith(t, clerk, cfg)
	return tp, exp
}

// tracedRequest publishes a job inside a span of the "publishing service"
// and waits for its reply.
func tracedRequest(t *testing.T, env *testenv.Env, tp trace.TracerProvider, a jobs.Args) (jobs.Result, trace.SpanContext) {
	t.Helper()
	inbox := env.NC.NewInbox()
	sub, err := env.NC.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	a.CommonFields().ReplyTo = inbox
	ctx, span := tp.Tracer("service").Start(context.Background(), "service "+string(a.Op()))
	if _, err := jobs.Publish(ctx, env.JS, env.Topology.Subjects, a); err != nil {
		t.Fatal(err)
	}
	span.End()
	m, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no reply for %s: %v", a.Op(), err)
	}
	var r jobs.Result
	testenv.DecodeJSON(t, m.Data, &r)
	for r.Outcome == jobs.InProgress { // revoke_all progress
		if m, err = sub.NextMsg(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		r = jobs.Result{}
		testenv.DecodeJSON(t, m.Data, &r)
	}
	if m.Header.Get("traceparent") == "" {
		t.Errorf("the %s reply carries no traceparent", a.Op())
	}
	return r, span.SpanContext()
}

// children are the spans whose parent is sc.
func children(spans tracetest.SpanStubs, sc trace.SpanContext) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Parent.SpanID() == sc.SpanID() && s.Parent.TraceID() == sc.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

func named(spans tracetest.SpanStubs, prefix string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// TestTraceRunsFromPublisherToClerk: for each job type, the publisher's
// span → "send" → the worker's "process" → the Clerk call span(s) is one
// connected trace; a retried job shows its attempts and backoffs; no span
// anywhere holds the key or a token.
func TestTraceRunsFromPublisherToClerk(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 5)
	other := emu.CreateUser()
	emu.CreateSessions(other, 3)
	tp, exp := tracedWorker(t, env)
	expired := emu.SessionToken(ids[4], -time.Minute)
	refresh := emu.RefreshToken(ids[4])
	secrets := map[string]string{"key": emulator.DefaultSecretKey, "expired token": expired, "refresh token": refresh}
	cases := []struct {
		args  jobs.Args
		calls int // Clerk call spans under the process span (at least)
	}{
		{&jobs.ListArgs{UserID: user}, 1},
		{&jobs.GetArgs{SessionID: ids[0]}, 1},
		{&jobs.CreateArgs{UserID: user}, 1},
		{&jobs.TokenArgs{SessionID: ids[1]}, 1},
		{&jobs.RefreshArgs{SessionID: ids[4], ExpiredToken: expired, RefreshToken: refresh, RequestOrigin: "https://a.example"}, 1},
		{&jobs.RevokeArgs{SessionID: ids[2]}, 1},
		{&jobs.RevokeAllArgs{UserID: other}, 1},
	}
	for _, c := range cases {
		r, service := tracedRequest(t, env, tp, c.args)
		if r.Outcome != jobs.Succeeded {
			t.Fatalf("%s: %+v", c.args.Op(), r)
		}
		if r.Secret != nil {
			var tok clerkapi.Token
			testenv.DecodeJSON(t, r.Secret, &tok)
			secrets[string(c.args.Op())+" answer"] = tok.JWT
		}
		testenv.Eventually(t, 5*time.Second, "the spans exported", func() bool {
			sends := named(children(exp.GetSpans(), service), "send ")
			return len(sends) == 1 && len(named(children(exp.GetSpans(), sends[0].SpanContext), "process ")) == 1
		})
		spans := exp.GetSpans()
		send := named(children(spans, service), "send ")[0]
		process := named(children(spans, send.SpanContext), "process ")[0]
		calls := children(spans, process.SpanContext)
		if len(named(calls, "GET "))+len(named(calls, "POST ")) < c.calls {
			t.Errorf("%s: %d Clerk call spans under %q", c.args.Op(), len(calls), process.Name)
		}
		if process.SpanKind != trace.SpanKindConsumer || send.SpanKind != trace.SpanKindProducer {
			t.Errorf("%s: kinds %s, %s", c.args.Op(), send.SpanKind, process.SpanKind)
		}
		attrs := map[string]string{}
		for _, a := range process.Attributes {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["messaging.system"] != "nats" || attrs["clerkjobs.outcome"] != "succeeded" || attrs["clerkjobs.job.op"] != string(c.args.Op()) || attrs["messaging.message.id"] != r.JobID {
			t.Errorf("%s: process span attributes %v", c.args.Op(), attrs)
		}
		if c.args.Op() == jobs.OpRevokeAll {
			if n := len(named(calls, "POST")); n != 0 {
				t.Errorf("revoke_all: %d revoke spans; want none (events and totals instead)", n)
			}
			if len(process.Events) == 0 || attrs["clerkjobs.bulk.revoked"] != "3" {
				t.Errorf("revoke_all: events %v, attributes %v", process.Events, attrs)
			}
		}
	}

	// A retried job shows its attempts, with a backoff between them.
	// Clerk fails until the job has been tried twice (a fixed time was too
	// short on a loaded machine, or too long: the job ran out of retries).
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	go func() {
		for tries := 0; tries < 2; time.Sleep(time.Millisecond) {
			tries = 0
			for _, c := range emu.Calls() {
				if c.SessionID == ids[3] && c.Method == "GET" && c.Status >= 500 {
					tries++
				}
			}
		}
		emu.SetFaults(emulator.Faults{})
	}()
	r, service := tracedRequest(t, env, tp, &jobs.GetArgs{SessionID: ids[3]})
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("retried get: %+v", r)
	}
	testenv.Eventually(t, 5*time.Second, "the retried job's spans", func() bool {
		var calls, backoffs int
		for _, s := range named(children(exp.GetSpans(), service), "send ") {
			for _, p := range children(exp.GetSpans(), s.SpanContext) {
				calls += len(named(children(exp.GetSpans(), p.SpanContext), "GET "))
				backoffs += len(named(children(exp.GetSpans(), p.SpanContext), "backoff"))
			}
		}
		return calls >= 2 && backoffs >= 1
	})

	for _, s := range exp.GetSpans() {
		all := fmt.Sprintf("%s %v %v %v %v", s.Name, s.Attributes, s.Events, s.Links, s.Status)
		for name, secret := range secrets {
			if strings.Contains(all, secret) {
				t.Errorf("the %s appears in span %q", name, s.Name)
			}
		}
	}
	if logs := env.Logs.String(); !strings.Contains(logs, `"trace_id":"`) || !strings.Contains(logs, `"span_id":"`) {
		t.Errorf("job log lines carry no trace_id and span_id")
	}
	// The stored results carry the trace too, not only the replies.
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		if tp := m.Header.Get("traceparent"); len(tp) != 55 || !strings.HasPrefix(tp, "00-") {
			t.Errorf("result %s stored with traceparent %q", m.Subject, tp)
		}
	}
	spansDocumented(t, exp.GetSpans())
}

// spansDocumented checks that every span name, attribute and event the worker's and
// the Clerk client's spans carry is named in docs/tracing.md, the contract
// of what a tracing backend sees. The totals of a revoke_all may be
// written there as `clerkjobs.bulk.revoked`, `already_gone`, ….
func spansDocumented(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	b, err := os.ReadFile("../docs/tracing.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	documented := func(key string) bool {
		if strings.Contains(doc, "`"+key+"`") {
			return true
		}
		short, ok := strings.CutPrefix(key, "clerkjobs.bulk.")
		return ok && strings.Contains(doc, "`"+short+"`")
	}
	seen := map[string]bool{}
	check := func(what, key, span string) {
		if !seen[what+key] && !documented(key) {
			t.Errorf("%s %q (on span %q) is not in docs/tracing.md", what, key, span)
		}
		seen[what+key] = true
	}
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "service ") {
			continue // the test's own
		}
		// A span's name is what a backend lists and searches: each is
		// written there, with its subject or route as an example
		// (`process sessions.revoke`), or, for a Clerk call, as its method
		// and route template.
		verb, _, _ := strings.Cut(s.Name, " ")
		clerkCall := strings.Contains(s.Name, " /") // "named after the method and route template"
		if !seen["span"+s.Name] && !clerkCall && !strings.Contains(doc, "`"+s.Name+"`") && !strings.Contains(doc, "`"+verb+" ") {
			t.Errorf("span %q is not in docs/tracing.md", s.Name)
		}
		seen["span"+s.Name] = true
		for _, a := range s.Attributes {
			check("attribute", string(a.Key), s.Name)
		}
		for _, e := range s.Events {
			check("event", e.Name, s.Name)
			for _, a := range e.Attributes {
				check("event attribute", string(a.Key), s.Name)
			}
		}
	}
}

// replayAsOperator replays dead letter seq inside an operator's span of tp,
// as publish dlq replay does, and returns the send spans exp holds under
// that span.
func replayAsOperator(t *testing.T, env *testenv.Env, tp trace.TracerProvider, exp *tracetest.InMemoryExporter, seq uint64) tracetest.SpanStubs {
	t.Helper()
	q, err := dlq.Open(context.Background(), env.JS, env.Topology)
	if err != nil {
		t.Fatal(err)
	}
	ctx, operator := tp.Tracer("operator").Start(context.Background(), "publish dlq replay")
	if _, err := q.Replay(ctx, []uint64{seq}); err != nil {
		t.Fatal(err)
	}
	operator.End()
	return named(children(exp.GetSpans(), operator.SpanContext()), "send ")
}

// TestReplayIsLinkedToTheDeadLetter: a dead letter carries the trace of
// the delivery that failed, and its replay is a new span linked to it.
func TestReplayIsLinkedToTheDeadLetter(t *testing.T) {
	env := testenv.New(t)
	tp, exp := tracedWorker(t, env)
	r, _ := tracedRequest(t, env, tp, &jobs.RevokeArgs{SessionID: "sess_missing"})
	if r.Outcome != jobs.Failed {
		t.Fatalf("revoke of a missing session: %+v", r)
	}
	testenv.Eventually(t, 5*time.Second, "a dead letter", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	dl := env.StreamMsgs(t, env.Topology.DeadLetterStream)[0]
	if dl.Header.Get("traceparent") == "" {
		t.Fatalf("the dead letter carries no traceparent: %v", dl.Header)
	}
	// The delivery's span ends after its reply and its ack, which the
	// requester can see first.
	var failed trace.SpanContext
	testenv.Eventually(t, 5*time.Second, "the span of the failed delivery", func() bool {
		for _, s := range named(exp.GetSpans(), "process ") {
			for _, a := range s.Attributes {
				if a.Key == "clerkjobs.outcome" && a.Value.AsString() == "dead_lettered" {
					failed = s.SpanContext
				}
			}
		}
		return failed.IsValid()
	})
	replay := replayAsOperator(t, env, tp, exp, dl.Sequence)
	if len(replay) != 1 || len(replay[0].Links) != 1 || replay[0].Links[0].SpanContext.SpanID() != failed.SpanID() {
		t.Fatalf("replay spans %+v; want one send span linked to the failed delivery %s", replay, failed.SpanID())
	}
	testenv.Eventually(t, 10*time.Second, "the replayed delivery, a child of the replay", func() bool {
		return len(named(children(exp.GetSpans(), replay[0].SpanContext), "process ")) == 1
	})
	spansDocumented(t, exp.GetSpans())
}

// TestRetryAfterIsASpan: a job held by a 429's Retry-After (the pause every
// call of the fleet observes) shows the wait as a "retry_after" span in its
// trace, with how long it was told to wait.
func TestRetryAfterIsASpan(t *testing.T) {
	env := testenv.New(t, emulator.WithRateLimit(1, 2*time.Second))
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 3)
	tp, exp := tracedWorker(t, env, func(c *worker.Config) { c.RateLimit = worker.RateLimit{N: 100, Per: time.Second} })
	if r, _ := tracedRequest(t, env, tp, &jobs.GetArgs{SessionID: ids[0]}); r.Outcome != jobs.Succeeded {
		t.Fatalf("get: %+v", r)
	}
	// The second is refused 429: its own retry waits (a backoff span), and
	// the pause holds every other call meanwhile, such as the third's.
	env.Publish(t, &jobs.GetArgs{SessionID: ids[1]})
	testenv.Eventually(t, 5*time.Second, "a 429", func() bool {
		return slices.ContainsFunc(emu.Calls(), func(c emulator.Call) bool { return c.Status == 429 })
	})
	if r, _ := tracedRequest(t, env, tp, &jobs.GetArgs{SessionID: ids[2]}); r.Outcome != jobs.Succeeded {
		t.Fatalf("get during the pause: %+v", r)
	}
	testenv.Eventually(t, 5*time.Second, "a retry_after span", func() bool { return len(named(exp.GetSpans(), "retry_after")) > 0 })
	span := named(exp.GetSpans(), "retry_after")[0]
	waited := false
	for _, a := range span.Attributes {
		waited = waited || (a.Key == "clerkjobs.retry_after_ms" && a.Value.AsInt64() > 0)
	}
	if !waited || span.EndTime.Sub(span.StartTime) < 100*time.Millisecond {
		t.Errorf("retry_after span %v lasting %s; want the wait Clerk asked for", span.Attributes, span.EndTime.Sub(span.StartTime))
	}
	spansDocumented(t, exp.GetSpans())
}

// TestSpansNeverHoldASecretFromTheSubject: a job published on a subject
// that holds a secret (a Clerk key pasted where an op belongs: the jobs
// stream captures every sessions.* subject) is dead-lettered as invalid,
// and the span of its delivery says which subject it came on without the
// key in it.
func TestSpansNeverHoldASecretFromTheSubject(t *testing.T) {
	env := testenv.New(t)
	_, exp := tracedWorker(t, env)
	key := "sk_" + "live_SubjectPastedKey0123456789"
	cookie := "__" + "session=SubjectPastedCookieValue0123"
	env.PublishRaw(t, env.Topology.Subjects.Prefix+"."+key, []byte(`{"session_id":"sess_1"}`))
	env.PublishRaw(t, env.Topology.Subjects.Prefix+"."+cookie, []byte(`{"session_id":"sess_1"}`))
	testenv.Eventually(t, 10*time.Second, "two finished deliveries", func() bool {
		n := 0
		for _, s := range named(exp.GetSpans(), "process ") {
			for _, a := range s.Attributes {
				if a.Key == "clerkjobs.outcome" {
					n++
				}
			}
		}
		return n == 2
	})
	for _, s := range exp.GetSpans() {
		var b strings.Builder
		fmt.Fprintf(&b, "%s|%s|", s.Name, s.Status.Description)
		for _, a := range s.Attributes {
			fmt.Fprintf(&b, "%s=%s;", a.Key, a.Value.Emit())
		}
		for _, ev := range s.Events {
			b.WriteString(ev.Name)
			for _, a := range ev.Attributes {
				fmt.Fprintf(&b, "%s=%s;", a.Key, a.Value.Emit())
			}
		}
		for _, secret := range []string{"SubjectPastedKey0123456789", "SubjectPastedCookieValue0123"} {
			if strings.Contains(b.String(), secret) {
				t.Errorf("span %q holds the secret of its job's subject: %s", s.Name, b.String())
			}
		}
	}
}

// TestHeldJobShowsCircuitOpenEvent: docs/tracing.md says a job held while
// the circuit is open shows it as an event (circuit_open) on its delivery
// span.
func TestHeldJobShowsCircuitOpenEvent(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	emu.SetFaults(emulator.Faults{RejectKey: true})
	tp, exp := tracedWorker(t, env, func(c *worker.Config) { c.Concurrency = 1 })
	go func() {
		// The key is accepted again once the job is held: the circuit's
		// probe calls Clerk.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if slices.ContainsFunc(emu.Calls(), func(c emulator.Call) bool { return c.SessionID == "sess_circuitprobe" }) {
				break
			}
		}
		emu.SetFaults(emulator.Faults{})
	}()
	r, service := tracedRequest(t, env, tp, &jobs.RevokeArgs{SessionID: id})
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("result %+v", r)
	}
	var process tracetest.SpanStub
	testenv.Eventually(t, 5*time.Second, "the process span exported", func() bool {
		sends := named(children(exp.GetSpans(), service), "send ")
		if len(sends) != 1 {
			return false
		}
		ps := named(children(exp.GetSpans(), sends[0].SpanContext), "process ")
		if len(ps) != 1 {
			return false
		}
		process = ps[0]
		return true
	})
	for _, e := range process.Events {
		if e.Name == "circuit_open" {
			spansDocumented(t, exp.GetSpans())
			return
		}
	}
	t.Errorf("held job's span %q has events %v, want circuit_open", process.Name, process.Events)
}
