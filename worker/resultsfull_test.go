package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestFullResultsStreamKeepsTheJobs: the results stream is capped
// (Topology.ResultsMaxBytes) so that results cannot take the storage the
// jobs and dead-letter streams share with them. Full, it refuses a result:
// the worker keeps the job, says which setting to raise, takes other
// tenants' jobs into the jobs stream all the same, and records the result
// once there is room.
func TestFullResultsStreamKeepsTheJobs(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	topo := env.Topology
	topo.ResultsMaxBytes = 1 << 20
	if _, err := topo.Ensure(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	for n, size := 0, 64<<10; size >= 16; size /= 8 {
		for ; ; n++ {
			if _, err := env.JS.Publish(ctx, fmt.Sprintf("sessions.results.filler.%d", n), make([]byte, size)); err != nil {
				break
			}
			if n > 1000 {
				t.Fatal("more than 1000 fillers stored: the results stream has no cap")
			}
		}
	}
	w := env.StartWorker(t, func(c *worker.Config) { c.Topology = topo })
	publishMsg(t, env, "sessions.revoke", nats.Header{jetstream.MsgIDHeader: {"kept-1"}}, fmt.Sprintf(`{"session_id":%q}`, sess))
	testenv.Eventually(t, 10*time.Second, "not ready: the result refused", func() bool {
		err := w.Worker.Ready()
		return err != nil && strings.Contains(err.Error(), "--results-max-bytes")
	})
	// Another tenant's job is still taken into the jobs stream.
	if _, err := env.JS.Publish(ctx, "sessions.tenant.svc_b.revoke", []byte(fmt.Sprintf(`{"session_id":%q,"job_id":"other"}`, sess))); err != nil {
		t.Errorf("with the results stream full, a job was refused: %v", err)
	}
	s, err := env.JS.Stream(ctx, topo.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("sessions.results.filler.>")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "both results recorded", func() bool { return len(env.Results(t)) == 2 })
	testenv.Eventually(t, 5*time.Second, "ready again", func() bool { return w.Worker.Ready() == nil })
}

// TestUpgradeDoesNotCapTheResultsBelowWhatTheyHold: an older worker's
// results stream has no cap and may hold more than --results-max-bytes.
// A newer worker capped it in place: it then refused every result until
// enough aged out (a day), and every worker kept each job that succeeded,
// not ready, after its Clerk call. The newer worker now leaves the stream
// as it is and does not start, saying what the stream holds and which
// setting to raise; the older workers go on storing results.
func TestUpgradeDoesNotCapTheResultsBelowWhatTheyHold(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	older := env.Topology.ResultsStreamConfig()
	older.MaxBytes = -1
	if _, err := env.JS.UpdateStream(ctx, older); err != nil {
		t.Fatal(err)
	}
	for n := range 40 { // 2.4 MiB
		if _, err := env.JS.Publish(ctx, fmt.Sprintf("sessions.results.filler.%d", n), make([]byte, 60<<10)); err != nil {
			t.Fatal(err)
		}
	}
	topo := env.Topology
	topo.ResultsMaxBytes = 1 << 20
	cfg := env.WorkerConfig()
	cfg.Topology = topo
	w, err := worker.New(env.NC, env.ClerkClient(t, ""), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 10*time.Second, "the worker says why it does not start", func() bool {
		return strings.Contains(env.Logs.String(), "stream "+topo.ResultsStream+" holds")
	})
	if !strings.Contains(env.Logs.String(), "--results-max-bytes (WORKER_RESULTS_MAX_BYTES) above what it holds") {
		t.Errorf("the log does not name the setting to raise:\n%s", env.Logs.String())
	}
	if w.Ready() == nil {
		t.Error("ready, with its streams not set up")
	}
	s, err := env.JS.Stream(ctx, topo.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxBytes; got != -1 {
		t.Fatalf("the results stream holding %d bytes was capped at %d: it refuses every result", s.CachedInfo().State.Bytes, got)
	}
	if _, err := env.JS.Publish(ctx, "sessions.results.older.1", []byte("{}")); err != nil {
		t.Errorf("an older worker's result refused: %v", err)
	}
}
