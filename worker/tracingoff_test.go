package worker_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestTracingOffLeavesTheCallersSpanAlone: a worker without a
// TracerProvider, run by a program that traces (Run's context holds one of
// its recording spans), records nothing on that span for a job published
// without trace headers: it neither ends it nor sets a delivery's
// attributes on it.
func TestTracingOffLeavesTheCallersSpanAlone(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	ctx, program := tp.Tracer("program").Start(ctx, "program")

	cfg := env.WorkerConfig() // no TracerProvider: tracing off
	w, err := worker.New(env.NC, env.ClerkClient(t, ""), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the worker did not stop")
		}
	})

	env.PublishRaw(t, env.Topology.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"`+id+`"}`))
	testenv.Eventually(t, 20*time.Second, "the job's record", func() bool {
		return env.StreamCount(t, env.Topology.ResultsStream) >= 1
	})
	if !program.IsRecording() {
		t.Errorf("the worker ended its caller's span")
	}
	for _, s := range exp.GetSpans() {
		t.Errorf("a worker with tracing off recorded span %q: %v", s.Name, s.Attributes)
	}
	program.End()
}
