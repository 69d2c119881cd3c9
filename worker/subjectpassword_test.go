package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestURLPasswordInTheSubjectIsNotTraced: a NATS server's URL with its
// password pasted as a job subject's op is stored hidden in the dead
// letter (TestSecretInTheSubjectIsNeverStored), but the delivery span's
// messaging.destination.name took the subject cleared of key shapes only:
// the password went to the trace collector.
func TestURLPasswordInTheSubjectIsNotTraced(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	env := testenv.New(t)
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(env.Clerk.URL), clerkapi.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.WorkerConfig()
	cfg.TracerProvider = tp
	env.StartWorkerWith(t, clerk, cfg)

	env.PublishRaw(t, env.Topology.Subjects.Prefix+".nats://alice:"+urlPassword+"@nats-internal:4222", []byte(`{"session_id":"sess_1"}`))
	testenv.Eventually(t, 10*time.Second, "the job dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	testenv.Eventually(t, 10*time.Second, "the delivery span ended", func() bool {
		for _, s := range spans.GetSpans() {
			if s.Name == "process (unknown subject)" {
				return true
			}
		}
		return false
	})
	for _, s := range spans.GetSpans() {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), urlPassword) {
				t.Errorf("span %q attribute %s holds the URL's password", s.Name, a.Key)
			}
		}
		for _, e := range s.Events {
			for _, a := range e.Attributes {
				if strings.Contains(a.Value.Emit(), urlPassword) {
					t.Errorf("span %q event %q attribute %s holds the URL's password", s.Name, e.Name, a.Key)
				}
			}
		}
		if strings.Contains(s.Status.Description, urlPassword) {
			t.Errorf("span %q status holds the URL's password", s.Name)
		}
	}
}
