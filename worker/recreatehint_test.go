package worker_test

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestRecordStreamNotCreatedAgainSaysWhy: a dead-letter stream deleted by
// hand whose cap JetStream can no longer reserve (another stream took the
// room in max_file_store) cannot be created again. The worker said only
// that, in its log and on /readyz, dropping jobs.Ensure's error, which
// names the cap, its setting and the limit to raise.
func TestRecordStreamNotCreatedAgainSaysWhy(t *testing.T) {
	env := testenv.New(t)
	w := env.StartWorker(t)
	ctx := t.Context()
	if err := env.JS.DeleteStream(ctx, env.Topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	ai, err := env.JS.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Half the dead-letter stream's cap left free: too little to reserve it.
	free := env.NATS.JetStreamConfig().MaxStore - int64(ai.ReservedStore)
	other := jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}, Storage: jetstream.FileStorage,
		MaxBytes: free - env.Topology.DeadLetterMaxBytes/2}
	if _, err := env.JS.CreateStream(ctx, other); err != nil {
		t.Fatal(err)
	}
	env.PublishRaw(t, env.Topology.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":`)) // invalid: dead-lettered
	testenv.Eventually(t, 30*time.Second, "the dead letter refused, and retried", func() bool {
		return w.Worker.Ready() != nil && recordFailures(t, w.Worker, env.Topology.DeadLetterStream) >= 2
	})
	err = w.Worker.Ready()
	if err == nil {
		t.Fatal("ready with the dead letter not stored")
	}
	for _, s := range []string{"could not be created", "stream " + env.Topology.DeadLetterStream, "--dlq-max-bytes", "WORKER_DLQ_MAX_BYTES", "max_file_store", "insufficient storage"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("not ready: %v\nwant it to say %q", err, s)
		}
		if !strings.Contains(env.Logs.String(), s) {
			t.Errorf("the worker's log does not say %q", s)
		}
	}
}

// recordFailures is clerkjobs_record_publish_failures_total of stream, as
// /metrics says it.
func recordFailures(t *testing.T, w *worker.Worker, stream string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	w.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	prefix := `clerkjobs_record_publish_failures_total{stream="` + stream + `"} `
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	return 0
}
