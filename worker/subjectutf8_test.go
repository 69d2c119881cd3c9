package worker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestSubjectNotUTF8DoesNotLoseSpans: a job's subject is the publisher's
// text, and NATS takes any bytes in it but spaces: the jobs stream captures
// sessions.\xff as it does any other subject under the prefix. The
// delivery span copied it into messaging.destination.name as it came, and
// OTLP's protobuf encoding refuses a string that is not UTF-8, so the
// exporter failed to encode the batch and dropped it whole: one such
// message lost the spans of every job exported with it (the failure
// af371b1 fixed for the Clerk-Trace-Id header).
func TestSubjectNotUTF8DoesNotLoseSpans(t *testing.T) {
	var mu sync.Mutex
	var got []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					got = append(got, s.GetName())
				}
			}
		}
	}))
	t.Cleanup(collector.Close)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(collector.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	// One batch, sent at the end: the bad span and the good ones together.
	// The in-memory copy says when the spans have ended.
	ended := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Hour)), sdktrace.WithSyncer(ended))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(env.Clerk.URL), clerkapi.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.WorkerConfig()
	cfg.TracerProvider = tp
	env.StartWorkerWith(t, clerk, cfg)

	env.PublishRaw(t, env.Topology.Subjects.Prefix+".\xff\xfe", []byte(`{"session_id":"sess_1"}`))
	testenv.Eventually(t, 10*time.Second, "the job on the bad subject dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	if r := request(t, env, &jobs.RevokeArgs{SessionID: id}); r.Outcome != jobs.Succeeded {
		t.Fatalf("revoke: %+v", r)
	}
	testenv.Eventually(t, 10*time.Second, "both delivery spans ended", func() bool {
		return len(named(ended.GetSpans(), "process ")) == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flushErr := tp.ForceFlush(ctx)
	mu.Lock()
	defer mu.Unlock()
	var revoke, unknown bool
	for _, name := range got {
		revoke = revoke || name == "process "+env.Topology.Subjects.Job(jobs.OpRevoke)
		unknown = unknown || name == "process (unknown subject)"
	}
	if !revoke || !unknown {
		t.Fatalf("the collector got spans %q (export: %v); want both jobs' delivery spans", got, flushErr)
	}
}
