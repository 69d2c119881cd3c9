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
