package clerkapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkapi/internal/spectest"
)

// recorder is a tracer provider whose spans the test reads back at once.
type recorder struct {
	exp *tracetest.InMemoryExporter
	tp  *sdktrace.TracerProvider
}

func newRecorder(t *testing.T) *recorder {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &recorder{exp: exp, tp: tp}
}

// parent starts the caller's span (the worker's delivery span, say).
func (r *recorder) parent() (context.Context, trace.Span) {
	return r.tp.Tracer("test").Start(context.Background(), "job")
}

// calls returns the client spans recorded since the last call.
func (r *recorder) calls() tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.exp.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			out = append(out, s)
		}
	}
	r.exp.Reset()
	return out
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.Emit()
	}
	return m
}

// TestSpanPerCall runs every operation through a traced client and checks
// its span: one per call, a child of the caller's span, named and
// attributed by the HTTP client conventions with the route template.
func TestSpanPerCall(t *testing.T) {
	f := newFixture(t, spectest.Optional(t))
	rec := newRecorder(t)
	c := f.e.client(clerkapi.WithTracerProvider(rec.tp))
	u, _ := url.Parse(f.e.srv.URL)
	routes := map[string]string{
		"GetSessionList":                 "/v1/sessions",
		"createSession":                  "/v1/sessions",
		"GetSession":                     "/v1/sessions/{session_id}",
		"RefreshSession":                 "/v1/sessions/{session_id}/refresh",
		"RevokeSession":                  "/v1/sessions/{session_id}/revoke",
		"LockUser":                       "/v1/users/{user_id}/lock",
		"UnlockUser":                     "/v1/users/{user_id}/unlock",
		"CreateSessionToken":             "/v1/sessions/{session_id}/tokens",
		"CreateSessionTokenFromTemplate": "/v1/sessions/{session_id}/tokens/{template_name}",
	}
	seen := map[string]bool{}
	for _, tc := range f.cases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx, job := rec.parent()
			if _, err := tc.call(ctx, c); err != nil {
				t.Fatal(err)
			}
			job.End()
			spans := rec.calls()
			if len(spans) != 1 {
				t.Fatalf("%d client spans, want 1", len(spans))
			}
			s := spans[0]
			seen[tc.op] = true
			route := routes[tc.op]
			if s.Name != tc.method+" "+route {
				t.Errorf("name %q, want %q", s.Name, tc.method+" "+route)
			}
			if s.Parent.SpanID() != job.SpanContext().SpanID() || s.SpanContext.TraceID() != job.SpanContext().TraceID() {
				t.Error("the call span is not a child of the caller's span")
			}
			want := map[attribute.Key]string{
				"http.request.method": tc.method, "url.template": route, "server.address": u.Hostname(),
				"server.port": u.Port(), "http.response.status_code": "200", "clerk.operation": tc.op,
			}
			if got := attrMap(s.Attributes); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("attributes\n got %v\nwant %v", got, want)
			}
			if s.Status.Code != codes.Unset || len(s.Events) != 0 {
				t.Errorf("status %v, events %v", s.Status, s.Events)
			}
		})
	}
	if len(seen) != len(routes) {
		t.Errorf("operations covered %v, want all of %v", seen, routes)
	}
}

// TestSpanOfFailedCall: Clerk's refusals and transport failures mark the
// span as an error with a low-cardinality error.type, Clerk's code and
// trace id, and the retry attempt the caller passes.
func TestSpanOfFailedCall(t *testing.T) {
	e := newEnv(t)
	rec := newRecorder(t)
	c := e.client(clerkapi.WithTracerProvider(rec.tp))
	sess := e.emu.CreateSessions("user_a", 2)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + closed.Addr().String() + "/v1"
	closed.Close()

	for _, tc := range []struct {
		name      string
		setup     func() func()
		call      func(ctx context.Context) error
		attempt   int
		errorType []string // any of
		status    string   // http.response.status_code; "" for none
		clerkCode string
	}{
		{
			name:      "404 not found",
			call:      func(ctx context.Context) error { _, err := c.GetSession(ctx, "sess_missing"); return err },
			errorType: []string{"404"}, status: "404", clerkCode: "resource_not_found",
		},
		{
			name: "503 on the third attempt",
			setup: func() func() {
				e.emu.FailSession(sess[0], http.StatusServiceUnavailable)
				return func() { e.emu.FailSession(sess[0], 0) }
			},
			call:      func(ctx context.Context) error { _, err := c.RevokeSession(ctx, sess[0]); return err },
			attempt:   3,
			errorType: []string{"503"}, status: "503",
		},
		{
			name: "401 key rejected",
			setup: func() func() {
				e.emu.SetFaults(emulator.Faults{RejectKey: true})
				return func() { e.emu.SetFaults(emulator.Faults{}) }
			},
			call:      func(ctx context.Context) error { _, err := c.RevokeSession(ctx, sess[1]); return err },
			errorType: []string{"401"}, status: "401", clerkCode: "clerk_key_invalid",
		},
		{
			name: "connection dropped",
			setup: func() func() {
				e.emu.SetFaults(emulator.Faults{DropRate: 1})
				return func() { e.emu.SetFaults(emulator.Faults{}) }
			},
			call:      func(ctx context.Context) error { _, err := c.RevokeSession(ctx, sess[1]); return err },
			errorType: []string{"connection_closed", "net.read"},
		},
		{
			name: "connection refused",
			call: func(ctx context.Context) error {
				refused := e.client(clerkapi.WithTracerProvider(rec.tp), clerkapi.WithBaseURL(refusedURL))
				_, err := refused.GetSession(ctx, sess[1])
				return err
			},
			errorType: []string{"net.dial"},
		},
		{
			name: "deadline",
			setup: func() func() {
				e.emu.SetFaults(emulator.Faults{Latency: time.Second})
				return func() { e.emu.SetFaults(emulator.Faults{}) }
			},
			call: func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
				_, err := c.GetSession(ctx, sess[1])
				return err
			},
			errorType: []string{"timeout"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				defer tc.setup()()
			}
			ctx, job := rec.parent()
			if tc.attempt > 0 {
				ctx = clerkapi.ContextWithAttempt(ctx, tc.attempt)
			}
			err := tc.call(ctx)
			job.End()
			if err == nil {
				t.Fatal("the call succeeded")
			}
			spans := rec.calls()
			if len(spans) != 1 {
				t.Fatalf("%d client spans, want 1", len(spans))
			}
			s := spans[0]
			got := attrMap(s.Attributes)
			if !contains(tc.errorType, got["error.type"]) || s.Status.Code != codes.Error {
				t.Errorf("error.type %q status %v, want one of %v and Error", got["error.type"], s.Status, tc.errorType)
			}
			if got["http.response.status_code"] != tc.status {
				t.Errorf("status code %q, want %q", got["http.response.status_code"], tc.status)
			}
			var apiErr *clerkapi.Error
			if errors.As(err, &apiErr) {
				if apiErr.TraceID == "" || got["clerk.trace_id"] != apiErr.TraceID {
					t.Errorf("clerk.trace_id %q, error's trace id %q", got["clerk.trace_id"], apiErr.TraceID)
				}
				if want := "HTTP " + tc.status + " " + apiErr.Code(); s.Status.Description != want {
					t.Errorf("status description %q, want %q", s.Status.Description, want)
				}
			} else if _, ok := got["clerk.trace_id"]; ok {
				t.Error("a transport failure has a Clerk trace id")
			}
			if tc.clerkCode != "" && got["clerk.error.code"] != tc.clerkCode {
				t.Errorf("clerk.error.code %q, want %q", got["clerk.error.code"], tc.clerkCode)
			}
			if want := fmt.Sprint(tc.attempt - 1); tc.attempt > 1 && got["http.request.resend_count"] != want {
				t.Errorf("resend count %q, want %s", got["http.request.resend_count"], want)
			} else if _, ok := got["http.request.resend_count"]; tc.attempt <= 1 && ok {
				t.Error("a first attempt has a resend count")
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// jwtPattern matches any JWT (three base64url parts, the first a JSON
// object).
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

// TestSpansNeverHoldSecrets makes calls that send and receive every secret
// the client handles (the key, session JWTs, refresh tokens, cookies), and
// calls that fail every way, then scans every exported span: name,
// attributes, events, links, status, resource and scope.
func TestSpansNeverHoldSecrets(t *testing.T) {
	f := newFixture(t, spectest.Optional(t))
	e := f.e
	rec := newRecorder(t)
	c := e.client(clerkapi.WithTracerProvider(rec.tp))
	ctx, job := rec.parent()
	s := f.sessions

	var secrets []string // what the calls sent or got back
	expired, refresh := e.emu.SessionToken(s[0], -time.Minute), e.emu.RefreshToken(s[0])
	secrets = append(secrets, testSecret, expired, refresh)
	if r, err := c.RefreshSession(ctx, s[0], clerkapi.RefreshParams{ExpiredToken: expired, RefreshToken: refresh, RequestOrigin: "https://app.example.com"}); err != nil {
		t.Fatal(err)
	} else {
		secrets = append(secrets, r.Token.JWT)
	}
	if r, err := c.RefreshSession(ctx, s[1], clerkapi.RefreshParams{ExpiredToken: e.emu.SessionToken(s[1], -time.Minute),
		RefreshToken: e.emu.RefreshToken(s[1]), RequestOrigin: "https://app.example.com", Format: clerkapi.FormatCookie}); err != nil {
		t.Fatal(err)
	} else {
		secrets = append(secrets, r.Cookies.Cookies...)
	}
	if tok, err := c.CreateSessionToken(ctx, s[2], clerkapi.TokenParams{}); err != nil {
		t.Fatal(err)
	} else {
		secrets = append(secrets, tok.JWT)
	}
	if tok, err := c.CreateSessionTokenFromTemplate(ctx, s[2], "worker", clerkapi.TokenParams{}); err != nil {
		t.Fatal(err)
	} else {
		secrets = append(secrets, tok.JWT)
	}
	// Refused refresh (wrong refresh token), wrong key, faults.
	_, err := c.RefreshSession(ctx, s[3], clerkapi.RefreshParams{ExpiredToken: expired, RefreshToken: "rt_WrongRefreshSecret", RequestOrigin: "https://x"})
	if err == nil {
		t.Fatal("a refresh with a wrong refresh token succeeded")
	}
	secrets = append(secrets, "rt_WrongRefreshSecret")
	other := emulator.NewServer(emulator.WithSecretKeys("sk_test_other"))
	defer other.Close()
	if _, err := e.client(clerkapi.WithTracerProvider(rec.tp), clerkapi.WithBaseURL(other.URL)).GetSession(ctx, s[3]); err == nil {
		t.Fatal("a call with a wrong key succeeded")
	}
	for _, fl := range []emulator.Faults{{ErrorRate: 1}, {DropRate: 1}, {DropAfterRate: 1}, {RejectKey: true}} {
		e.emu.SetFaults(fl)
		_, _ = c.CreateSessionToken(ctx, s[3], clerkapi.TokenParams{})
		_, _ = c.RevokeSession(ctx, s[3])
	}
	e.emu.SetFaults(emulator.Faults{})
	job.End()

	spans := rec.exp.GetSpans()
	if len(spans) < 14 {
		t.Fatalf("%d spans: the calls were not all traced", len(spans))
	}
	for _, sp := range spans {
		dump := dumpSpan(sp)
		for _, secret := range secrets {
			if secret == "" {
				t.Fatal("a secret the scan looks for is empty")
			}
			if strings.Contains(dump, secret) {
				t.Errorf("span %q holds a secret", sp.Name)
			}
		}
		for _, bad := range []string{"ClerkapiTestSecret", "Bearer", "__session", "__client", "sess_", "user_"} {
			if strings.Contains(dump, bad) {
				t.Errorf("span %q holds %q: %s", sp.Name, bad, dump)
			}
		}
		if jwtPattern.MatchString(dump) {
			t.Errorf("span %q holds a JWT", sp.Name)
		}
	}
}

// dumpSpan is every string a span exports.
func dumpSpan(s tracetest.SpanStub) string {
	var b strings.Builder
	kv := func(kvs []attribute.KeyValue) {
		for _, a := range kvs {
			fmt.Fprintf(&b, "%s=%s;", a.Key, a.Value.Emit())
		}
	}
	fmt.Fprintf(&b, "%s|%s|%s|%s|", s.Name, s.Status.Description, s.InstrumentationScope.Name, s.SpanContext.TraceState())
	kv(s.Attributes)
	for _, ev := range s.Events {
		b.WriteString(ev.Name)
		kv(ev.Attributes)
	}
	for _, l := range s.Links {
		kv(l.Attributes)
	}
	if s.Resource != nil {
		kv(s.Resource.Attributes())
	}
	return b.String()
}

// TestContextWithoutSpans: bulk calls can opt out of their spans while
// the caller's span and other calls are still traced.
func TestContextWithoutSpans(t *testing.T) {
	e := newEnv(t)
	rec := newRecorder(t)
	c := e.client(clerkapi.WithTracerProvider(rec.tp))
	sess := e.emu.CreateSessions("user_a", 2)
	ctx, job := rec.parent()
	if _, err := c.RevokeSession(clerkapi.ContextWithoutSpans(ctx), sess[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeSession(ctx, sess[1]); err != nil {
		t.Fatal(err)
	}
	job.End()
	if spans := rec.exp.GetSpans(); len(spans) != 2 || len(rec.calls()) != 1 || job.IsRecording() {
		t.Errorf("spans %v, want the job and one call", spans)
	}
	if n := e.emu.RevokeCount(sess[0]); n != 1 {
		t.Errorf("the untraced revoke reached Clerk %d times", n)
	}
}

// TestTracingOff: a nil or no-op provider turns tracing off and the
// client works as without the option.
func TestTracingOff(t *testing.T) {
	e := newEnv(t)
	sess := e.emu.CreateSessions("user_a", 1)[0]
	for name, tp := range map[string]trace.TracerProvider{"nil": nil, "no-op": noop.NewTracerProvider()} {
		t.Run(name, func(t *testing.T) {
			c := e.client(clerkapi.WithTracerProvider(tp))
			if _, err := c.GetSession(context.Background(), sess); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetSession(context.Background(), "sess_missing"); clerkapi.ClassOf(err) != clerkapi.Permanent {
				t.Fatalf("missing session: %v", err)
			}
		})
	}
}

// TestSpanTraceIDHeaderIsUntrusted: the Clerk-Trace-Id answer header is
// upstream text like the error body (a proxy may fill it with the
// request): whatever status comes with it, the span's clerk.trace_id never
// holds the key or the request's secrets.
func TestSpanTraceIDHeaderIsUntrusted(t *testing.T) {
	key := "sk_" + "test_HeaderEchoedKey0123456789"
	const refresh = "opaque-refresh-token-in-header"
	for _, status := range []int{200, 404, 502} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var req struct {
					Expired string `json:"expired_token"`
					Refresh string `json:"refresh_token"`
				}
				_ = json.Unmarshal(body, &req)
				w.Header().Set("Clerk-Trace-Id", "t "+req.Refresh+" "+r.Header.Get("Authorization")+" "+req.Expired)
				if status == 502 {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(status)
					_, _ = io.WriteString(w, "<html>bad gateway</html>")
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				if status == 404 {
					_, _ = io.WriteString(w, `{"errors":[{"code":"resource_not_found","message":"not found"}]}`)
					return
				}
				_, _ = io.WriteString(w, `{"object":"session","id":"sess_1","status":"active","jwt":"x"}`)
			}))
			defer srv.Close()
			rec := newRecorder(t)
			c, err := clerkapi.New(clerkapi.WithSecretKey(key), clerkapi.WithBaseURL(srv.URL+"/v1"), clerkapi.WithTracerProvider(rec.tp))
			if err != nil {
				t.Fatal(err)
			}
			ctx, job := rec.parent()
			_, _ = c.RefreshSession(ctx, "sess_1", clerkapi.RefreshParams{ExpiredToken: "eyJhbGciOiJSUzI1NiJ9.eyJzaWQiOiJzZXNzXzEifQ.c2lnbmF0dXJlcw",
				RefreshToken: refresh, RequestOrigin: "https://app.example"})
			job.End()
			spans := rec.calls()
			if len(spans) != 1 {
				t.Fatalf("%d client spans, want 1", len(spans))
			}
			dump := dumpSpan(spans[0])
			for _, s := range []string{"HeaderEchoedKey0123456789", refresh, "c2lnbmF0dXJlcw"} {
				if strings.Contains(dump, s) {
					t.Errorf("the span holds %q from the Clerk-Trace-Id header: %s", s, dump)
				}
			}
		})
	}
}
