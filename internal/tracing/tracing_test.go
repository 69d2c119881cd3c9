package tracing_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
)

// otelVars are every variable these tests set. Each test starts from all
// of them empty (t.Setenv restores them afterwards), so a developer's own
// OTEL_* settings cannot change a result.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES", "OTEL_PROPAGATORS",
}

func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range otelVars {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func newProvider(t *testing.T, opts ...tracing.Option) *tracing.Provider {
	t.Helper()
	p, err := tracing.New(context.Background(), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

// sdkGoroutines counts the goroutines running OpenTelemetry SDK code (the
// batch span processor's export loop).
func sdkGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "go.opentelemetry.io/otel/sdk/trace.") {
			n++
		}
	}
	return n
}

func TestOffStartsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		why  string
	}{
		{"nothing set", nil, "no OTEL_TRACES_EXPORTER or OTLP endpoint"},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, "OTEL_TRACES_EXPORTER=none"},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp,console"}, "OTEL_SDK_DISABLED=true"},
		{"only a sampler", map[string]string{"OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "x"}, "no OTEL_TRACES_EXPORTER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			// Providers of earlier tests (-count) may still be exiting.
			testenv.Eventually(t, 30*time.Second, "no SDK goroutine before the test", func() bool { return sdkGoroutines() == 0 })
			p := newProvider(t)
			if p.Enabled() {
				t.Fatal("Enabled() = true")
			}
			if _, ok := p.TracerProvider().(noop.TracerProvider); !ok {
				t.Errorf("TracerProvider() is a %T, want the no-op provider", p.TracerProvider())
			}
			if !strings.Contains(p.String(), tc.why) {
				t.Errorf("String() = %q, want it to say %q", p.String(), tc.why)
			}
			_, span := p.TracerProvider().Tracer("t").Start(context.Background(), "s")
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Error("a span of the off provider records or has ids")
			}
			span.End()
			if n := sdkGoroutines(); n != 0 {
				t.Errorf("%d SDK goroutines run with tracing off", n)
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		varName string
		hint    string
	}{
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER", "otlp, console or none"},
		{"none with another", map[string]string{"OTEL_TRACES_EXPORTER": "none,otlp"}, "OTEL_TRACES_EXPORTER", "none alone"},
		{"sdk disabled not boolean", map[string]string{"OTEL_SDK_DISABLED": "yes"}, "OTEL_SDK_DISABLED", "true"},
		{"json protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"},
		{"signal protocol wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"},
		{"endpoint without scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4318"},
		{"grpc endpoint without scheme", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://otel-collector:4317"},
		{"unknown sampler", map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
		{"ratio above 1", map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG", "between 0 and 1"},
		{"ratio not a number", map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1%"}, "OTEL_TRACES_SAMPLER_ARG", "0.01"},
		{"ratio NaN", map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "NaN"}, "OTEL_TRACES_SAMPLER_ARG", "between 0 and 1"},
		{"bad resource attributes", map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_RESOURCE_ATTRIBUTES": "team"}, "OTEL_RESOURCE_ATTRIBUTES", "key=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			p, err := tracing.New(context.Background(), tracing.WithConsoleWriter(io.Discard))
			var ce *tracing.ConfigError
			if !errors.As(err, &ce) {
				if p != nil {
					_ = p.Shutdown(context.Background())
				}
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Variable != tc.varName || !strings.HasPrefix(err.Error(), tc.varName+": ") || !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("err = %q (variable %s), want it to name %s and say %q", err, ce.Variable, tc.varName, tc.hint)
			}
		})
	}
}

// TestConfigErrorHidesCredentials: an endpoint with user info may carry a
// password; the error names the variable but does not repeat the value.
func TestConfigErrorHidesCredentials(t *testing.T) {
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "user:hunter2@collector:4318"})
	_, err := tracing.New(context.Background())
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v, want one naming the variable without the password", err)
	}
}

// TestConfigErrorHidesAPastedKey: a Clerk key pasted into an OTEL_*
// variable by mistake is not repeated by the error that refuses it (the
// worker prints it to its log); the variable is still named.
func TestConfigErrorHidesAPastedKey(t *testing.T) {
	key := "sk_" + "live_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		env := map[string]string{v: key}
		if strings.HasPrefix(v, "OTEL_TRACES_SAMPLER") || strings.HasSuffix(v, "PROTOCOL") {
			env["OTEL_TRACES_EXPORTER"] = "console"
			if strings.HasSuffix(v, "PROTOCOL") {
				env["OTEL_TRACES_EXPORTER"] = "otlp"
			}
			if v == "OTEL_TRACES_SAMPLER_ARG" {
				env["OTEL_TRACES_SAMPLER"] = "traceidratio"
			}
		}
		setEnv(t, env)
		_, err := tracing.New(context.Background())
		if err == nil || !strings.Contains(err.Error(), v) || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(key[8:20])) {
			t.Errorf("%s holding a Clerk key: err = %v; want one naming the variable without the key", v, err)
		}
	}
}

// TestConfigErrorHidesAPastedURLPassword: a URL with a password pasted
// into an OTEL_* variable that is not an endpoint was quoted by the error
// that refuses it (lower-cased, but the password all the same), and a long
// one was cut before its @, where nothing recognised it as a URL's.
func TestConfigErrorHidesAPastedURLPassword(t *testing.T) {
	for _, pw := range []string{"pw" + "9xq4vlm2kzt7", "pw" + strings.Repeat("9xq4vlm2kzt7", 6)} {
		u := "nats://alice:" + pw + "@nats.example:4222"
		for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
			env := map[string]string{v: u}
			if strings.HasPrefix(v, "OTEL_TRACES_SAMPLER") || strings.HasSuffix(v, "PROTOCOL") {
				env["OTEL_TRACES_EXPORTER"] = "console"
				if strings.HasSuffix(v, "PROTOCOL") {
					env["OTEL_TRACES_EXPORTER"] = "otlp"
				}
				if v == "OTEL_TRACES_SAMPLER_ARG" {
					env["OTEL_TRACES_SAMPLER"] = "traceidratio"
				}
			}
			setEnv(t, env)
			_, err := tracing.New(context.Background())
			if err == nil || !strings.Contains(err.Error(), v) || strings.Contains(strings.ToLower(err.Error()), pw[:8]) {
				t.Errorf("%s holding a URL with a password of %d characters: err = %v; want one naming the variable without the password", v, len(pw), err)
			}
		}
	}
	// A traceparent (TRACEPARENT, --traceparent) likewise.
	u := "nats://alice:" + "pw" + strings.Repeat("9xq4vlm2kzt7", 6) + "@h"
	if _, err := tracing.ContextWithTraceparent(context.Background(), u, ""); err == nil || strings.Contains(err.Error(), "pw9xq4vl") {
		t.Errorf("a traceparent holding a URL with a password: err = %v; want one without the password", err)
	}
}

// TestSecretInSpansIsRefused: the service name and resource attributes go
// into every span exported, the collector's address into the start-up log
// line. A Clerk key pasted into one of them was exported with every span
// (and shown as "service sk_live_…"); it is refused now, the variable
// named and the key not repeated.
func TestSecretInSpansIsRefused(t *testing.T) {
	key := "sk_" + "live_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"
	for _, tc := range []struct{ name, value string }{
		{"OTEL_SERVICE_NAME", key},
		{"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,note=" + key},
		{"OTEL_RESOURCE_ATTRIBUTES", "note=Bearer%20" + strings.Repeat("A1b2", 8)},
		{"OTEL_RESOURCE_ATTRIBUTES", "note=sk%5F" + key[3:]},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://" + key + ":4318"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/" + key},
	} {
		setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console", tc.name: tc.value})
		var buf testenv.SyncBuffer
		p, err := tracing.New(context.Background(), tracing.WithConsoleWriter(&buf))
		if err == nil {
			_, span := p.TracerProvider().Tracer("t").Start(context.Background(), "s")
			span.End()
			_ = p.Shutdown(context.Background())
			t.Errorf("%s=%q: accepted; described as %q", tc.name, tc.value, p.String())
			continue
		}
		if !strings.Contains(err.Error(), tc.name) || strings.Contains(err.Error(), key[8:20]) || strings.Contains(err.Error(), "A1b2") {
			t.Errorf("%s=%q: err = %v; want one naming the variable without the value", tc.name, tc.value, err)
		}
	}
	// A password or token in the collector's URL is one by design.
	setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://alice:" + key + "@collector:4318"})
	p := newProvider(t)
	if strings.Contains(p.String(), key[8:20]) {
		t.Errorf("described as %q", p.String())
	}
}

// TestConfigErrorIsBounded: a value of any length in an OTEL_* variable is
// quoted cut short by the error that refuses it, which goes to the log.
func TestConfigErrorIsBounded(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		env := map[string]string{v: long}
		switch v {
		case "OTEL_EXPORTER_OTLP_PROTOCOL":
			env["OTEL_TRACES_EXPORTER"] = "otlp"
		case "OTEL_TRACES_SAMPLER":
			env["OTEL_TRACES_EXPORTER"] = "console"
		case "OTEL_TRACES_SAMPLER_ARG":
			env["OTEL_TRACES_EXPORTER"], env["OTEL_TRACES_SAMPLER"] = "console", "traceidratio"
		}
		setEnv(t, env)
		_, err := tracing.New(context.Background(), tracing.WithConsoleWriter(io.Discard))
		if err == nil || !strings.Contains(err.Error(), v) || len(err.Error()) > 400 {
			t.Errorf("%s holding 10,000 bytes: err (%d bytes) = %.200v…; want one naming the variable, at most 400 bytes", v, len(fmt.Sprint(err)), err)
		}
	}
}

func TestSampler(t *testing.T) {
	// TraceIDRatioBased samples a trace when the low 63 bits of its id's
	// last 8 bytes fall below ratio × 2^63, so these two ids decide any
	// ratio strictly between 0 and 1 the same way every run.
	low := trace.TraceID{15: 1}
	high := trace.TraceID{8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
	parent := func(id trace.TraceID, sampled bool) trace.SpanContext {
		cfg := trace.SpanContextConfig{TraceID: id, SpanID: trace.SpanID{7: 1}, Remote: true}
		if sampled {
			cfg.TraceFlags = trace.FlagsSampled
		}
		return trace.NewSpanContext(cfg)
	}
	for _, tc := range []struct {
		name, sampler, arg, desc string
		parent                   trace.SpanContext // zero: a root span
		want                     bool
	}{
		{"default samples roots", "", "", "parentbased_always_on", trace.SpanContext{}, true},
		{"default follows an unsampled parent", "", "", "parentbased_always_on", parent(low, false), false},
		{"always_off", "always_off", "", "always_off", trace.SpanContext{}, false},
		{"always_on ignores the parent", "always_on", "", "always_on", parent(low, false), true},
		{"ratio 1 by default", "traceidratio", "", "traceidratio 1", trace.SpanContext{}, true},
		{"ratio 0", "traceidratio", "0", "traceidratio 0", trace.SpanContext{}, false},
		{"ratio 0.01 keeps a low id", "traceidratio", "0.01", "traceidratio 0.01", parent(low, false), true},
		{"ratio 0.01 drops a high id", "traceidratio", "0.01", "traceidratio 0.01", parent(high, true), false},
		{"parent-based ratio follows a sampled parent", "parentbased_traceidratio", "0", "parentbased_traceidratio 0", parent(high, true), true},
		{"parent-based ratio decides roots", "PARENTBASED_TRACEIDRATIO", " 0 ", "parentbased_traceidratio 0", trace.SpanContext{}, false},
		{"parentbased_always_off", "parentbased_always_off", "", "parentbased_always_off", trace.SpanContext{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": tc.sampler, "OTEL_TRACES_SAMPLER_ARG": tc.arg})
			p := newProvider(t, tracing.WithConsoleWriter(io.Discard))
			if !p.Enabled() || !strings.Contains(p.String(), "sampler "+tc.desc+",") {
				t.Errorf("Enabled() = %v, String() = %q, want sampler %s", p.Enabled(), p.String(), tc.desc)
			}
			ctx := context.Background()
			if tc.parent.IsValid() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, tc.parent)
			}
			for range 20 { // roots get random ids: several, so ratio 0 and 1 mean it
				_, span := p.TracerProvider().Tracer("t").Start(ctx, "s")
				span.End()
				if got := span.SpanContext().IsSampled(); got != tc.want {
					t.Fatalf("sampled = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestConsoleExporter(t *testing.T) {
	setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "console-test"})
	var buf testenv.SyncBuffer
	p := newProvider(t, tracing.WithConsoleWriter(&buf))
	if want := "console, sampler parentbased_always_on, service console-test"; p.String() != want {
		t.Errorf("String() = %q, want %q", p.String(), want)
	}
	_, span := p.TracerProvider().Tracer("t").Start(context.Background(), "console-span")
	span.End()
	// The goroutine count TestOffStartsNothing relies on sees the SDK when
	// it runs (a goroutine started with sync.WaitGroup.Go shows SDK frames
	// only once it runs, hence the polling), and Shutdown stops it.
	testenv.Eventually(t, 30*time.Second, "an SDK goroutine while tracing is on", func() bool { return sdkGoroutines() > 0 })
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the SDK goroutines end after Shutdown", func() bool { return sdkGoroutines() == 0 })
	if out := buf.String(); !strings.Contains(out, `"Name":"console-span"`) || !strings.Contains(out, "console-test") {
		t.Errorf("console output lacks the span: %s", out)
	}
}

// TestOTLPExport sends a job span and a real Clerk call span over OTLP, by
// HTTP and by gRPC, to an in-process receiver, and decodes what arrived.
func TestOTLPExport(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			rcv := &receiver{}
			var endpoint, wantDesc string
			if protocol == "grpc" {
				endpoint = rcv.serveGRPC(t)
				wantDesc = "otlp (grpc) to " + endpoint + ", "
			} else {
				endpoint = rcv.serveHTTP(t)
				wantDesc = "otlp (http/protobuf) to " + endpoint + "/v1/traces, "
			}
			// No OTEL_TRACES_EXPORTER: an endpoint alone turns OTLP on.
			setEnv(t, map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
				"OTEL_EXPORTER_OTLP_HEADERS":  "x-tenant=acme",
				"OTEL_SERVICE_NAME":           "otlp-test",
				"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment.name=test,service.name=overridden-by-OTEL_SERVICE_NAME",
			})
			p := newProvider(t, tracing.WithServiceName("clerkjobs-default"), tracing.WithServiceVersion("v9.9.9"))
			if !p.Enabled() || !strings.HasPrefix(p.String(), wantDesc) {
				t.Fatalf("Enabled() = %v, String() = %q, want prefix %q", p.Enabled(), p.String(), wantDesc)
			}

			clerk := emulator.NewServer()
			t.Cleanup(clerk.Close)
			sess := clerk.Emulator.CreateSessions("user_otlp", 1)[0]
			c, err := clerkapi.New(clerkapi.WithBaseURL(clerk.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey),
				clerkapi.WithTracerProvider(p.TracerProvider()))
			if err != nil {
				t.Fatal(err)
			}
			ctx, job := p.TracerProvider().Tracer("test").Start(context.Background(), "job",
				trace.WithSpanKind(trace.SpanKindConsumer))
			if _, err := c.RevokeSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			job.End()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.Shutdown(shutdownCtx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}

			reqs, md := rcv.received()
			if len(reqs) == 0 {
				t.Fatal("the receiver got nothing")
			}
			if md != "acme" {
				t.Errorf("x-tenant header = %q: OTEL_EXPORTER_OTLP_HEADERS not sent", md)
			}
			spans := map[string]*tracepb.Span{}
			for _, req := range reqs {
				for _, rs := range req.GetResourceSpans() {
					res := attrs(rs.GetResource().GetAttributes())
					for k, want := range map[string]string{
						"service.name": "otlp-test", "service.version": "v9.9.9",
						"deployment.environment.name": "test", "telemetry.sdk.language": "go",
					} {
						if res[k] != want {
							t.Errorf("resource %s = %q, want %q", k, res[k], want)
						}
					}
					for _, ss := range rs.GetScopeSpans() {
						for _, s := range ss.GetSpans() {
							spans[s.GetName()] = s
						}
					}
				}
			}
			jobSpan, call := spans["job"], spans["POST /v1/sessions/{session_id}/revoke"]
			if jobSpan == nil || call == nil || len(spans) != 2 {
				t.Fatalf("spans %v, want job and the revoke call", keys(spans))
			}
			if !bytes.Equal(call.GetTraceId(), jobSpan.GetTraceId()) || !bytes.Equal(call.GetParentSpanId(), jobSpan.GetSpanId()) {
				t.Error("the Clerk call span is not a child of the job span")
			}
			if call.GetKind() != tracepb.Span_SPAN_KIND_CLIENT || jobSpan.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER {
				t.Errorf("kinds %v %v", call.GetKind(), jobSpan.GetKind())
			}
			got := attrs(call.GetAttributes())
			for k, want := range map[string]string{
				"http.request.method": "POST", "url.template": "/v1/sessions/{session_id}/revoke",
				"http.response.status_code": "200", "clerk.operation": "RevokeSession", "server.address": "127.0.0.1",
			} {
				if got[k] != want {
					t.Errorf("attribute %s = %q, want %q", k, got[k], want)
				}
			}
			for _, req := range reqs {
				b, _ := proto.Marshal(req)
				if bytes.Contains(b, []byte(emulator.DefaultSecretKey)) || bytes.Contains(b, []byte(sess)) {
					t.Error("an exported request holds the secret key or the session id")
				}
			}
		})
	}
}

// receiver is an OTLP trace receiver: what a collector would get.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu     sync.Mutex
	reqs   []*coltracepb.ExportTraceServiceRequest
	tenant string
}

func (r *receiver) add(req *coltracepb.ExportTraceServiceRequest, tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	r.tenant = tenant
}

func (r *receiver) received() ([]*coltracepb.ExportTraceServiceRequest, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs, r.tenant
}

func (r *receiver) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.add(req, strings.Join(md.Get("x-tenant"), ","))
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) serveGRPC(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, r)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return "http://" + ln.Addr().String()
}

func (r *receiver) serveHTTP(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("receiver got %s %s (%s)", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msg := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, msg); err != nil {
			t.Errorf("receiver: not an ExportTraceServiceRequest: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(msg, req.Header.Get("X-Tenant"))
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// attrs flattens OTLP attributes to strings (ints in decimal).
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
		default:
			out[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSDKReportsHideCredentials: the OpenTelemetry exporters report a
// malformed OTEL_EXPORTER_OTLP_HEADERS entry quoting it whole, API key
// included, and export errors quote the endpoint's URL. By default the SDK
// printed them to standard error as they came; RouteSDKReports gives the
// message and the names of the values, cleared of credentials.
func TestSDKReportsHideCredentials(t *testing.T) {
	const apiKey, password = "hny3secretTeamKey0", "c0llectorPassw0rd"
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team "+apiKey)
	var mu sync.Mutex
	var lines []string
	tracing.RouteSDKReports(func(l string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, l)
	})
	tp, err := tracing.New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	otel.Handle(errors.New(`Post "http://ops:` + password + `@collector:4318/v1/traces": connection refused`))
	otel.Handle(errors.New("bad endpoint \x1b[31m\nforged line"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = tp.Shutdown(ctx)

	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	if !strings.Contains(all, "parse headers: missing '=") || !strings.Contains(all, "collector:4318") {
		t.Errorf("the SDK's reports did not come through: %q", all)
	}
	if strings.Contains(all, apiKey) || strings.Contains(all, password) {
		t.Errorf("a credential in the SDK's reports: %q", all)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\n\x1b") {
			t.Errorf("a report with a line break or an escape: %q", l)
		}
	}
}

// TestDescriptionHidesEndpointToken: the worker logs String() at start. An
// endpoint may carry a collector's token as its user information
// (https://TOKEN@collector), which url.URL.Redacted shows as it is (it
// hides only a password). Before, the token was in the description.
func TestDescriptionHidesEndpointToken(t *testing.T) {
	const token = "c0llectorT0kenValue"
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		for _, endpoint := range []string{"https://" + token + "@collector.example:4318", "https://user:" + token + "@collector.example:4318"} {
			setEnv(t, map[string]string{v: endpoint, "OTEL_TRACES_EXPORTER": "otlp"})
			p := newProvider(t)
			if !p.Enabled() || strings.Contains(p.String(), token) || !strings.Contains(p.String(), "collector.example") {
				t.Errorf("%s=%s: String() = %q; want the endpoint without its credentials", v, strings.ReplaceAll(endpoint, token, "<token>"), p.String())
			}
		}
	}
}

// TestHostileTraceIDHeaderDoesNotLoseSpans: Clerk's trace id header is
// upstream text put in a span attribute. Bytes that are not UTF-8 there
// (allowed in an HTTP header) made the OTLP exporter's protobuf encoding
// fail, and with it the export of the whole batch: every span of every job
// exported with it was lost, not only the call's.
func TestHostileTraceIDHeaderDoesNotLoseSpans(t *testing.T) {
	rcv := &receiver{}
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.serveHTTP(t), "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
	p := newProvider(t)
	clerk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Clerk-Trace-Id", "trace-\xff\xfe-id")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"session","id":"sess_1","status":"revoked"}`)
	}))
	t.Cleanup(clerk.Close)
	c, err := clerkapi.New(clerkapi.WithBaseURL(clerk.URL+"/v1"), clerkapi.WithSecretKey(emulator.DefaultSecretKey),
		clerkapi.WithTracerProvider(p.TracerProvider()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, job := p.TracerProvider().Tracer("test").Start(context.Background(), "job")
	if _, err := c.RevokeSession(ctx, "sess_1"); err != nil {
		t.Fatal(err)
	}
	job.End()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.Shutdown(shutdownCtx) // its error is the failed export, checked below
	n := 0
	reqs, _ := rcv.received()
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
		}
	}
	if n != 2 {
		t.Fatalf("the collector got %d spans, want the job's and the call's", n)
	}
}

// TestDescriptionHidesEndpointQuery: a collector's token may also be given
// in the endpoint's query string (https://collector/v1/traces?api_key=…,
// as some vendors document for other SDKs). The Go exporter ignores the
// query, but the description the worker logs at start showed it whole,
// token included (and, for OTEL_EXPORTER_OTLP_ENDPOINT, with /v1/traces
// appended after it).
func TestDescriptionHidesEndpointQuery(t *testing.T) {
	const token = "c0llectorT0kenValue"
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		setEnv(t, map[string]string{v: "https://collector.example:4318/v1/traces?api_key=" + token + "#" + token, "OTEL_TRACES_EXPORTER": "otlp"})
		p := newProvider(t)
		if !p.Enabled() || strings.Contains(p.String(), token) || !strings.Contains(p.String(), "collector.example:4318/v1/traces") {
			t.Errorf("%s with a token in its query: String() = %q; want the endpoint without it", v, strings.ReplaceAll(p.String(), token, "<token>"))
		}
	}
}

// TestConfigErrorHidesEndpointQuery: an endpoint the programs refuse (no
// scheme, say) is quoted in the error, which the worker prints to its log;
// a token in its query or fragment (?api_key=…), which the description of
// a usable endpoint never shows, was quoted with it.
func TestConfigErrorHidesEndpointQuery(t *testing.T) {
	const token = "c0llectorT0kenValue"
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		for _, endpoint := range []string{"collector.example:4318/v1/traces?api_key=" + token, "ftp://collector.example/v1#" + token} {
			setEnv(t, map[string]string{v: endpoint, "OTEL_TRACES_EXPORTER": "otlp"})
			_, err := tracing.New(context.Background())
			if err == nil || !strings.Contains(err.Error(), v) || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "collector.example") {
				t.Errorf("%s=%s: err = %v; want one naming the variable and the endpoint, without the token", v, strings.ReplaceAll(endpoint, token, "<token>"), err)
			}
		}
	}
}
