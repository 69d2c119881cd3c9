package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestPullLimitsSetWhileRunningAreReported: an operator sets a
// max_batch (max_request_batch) below the workers' prefetch, or a max_request_expires
// below their pull's expiry, on the consumer while they run (nats consumer
// edit). JetStream then refuses every pull request: no job was taken, while
// /readyz said ready and the log said only "no heartbeat received". The
// worker now says why on /readyz and in its log while its pull is refused.
// A max_batch its next pull keeps to (see
// TestServerPullBatchLimitBelowThePrefetch); a max_expires holds the jobs
// until it goes, and is a drift a worker's start sets back.
func TestPullLimitsSetWhileRunningAreReported(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*jetstream.ConsumerConfig)
	}{
		{"max_batch", func(c *jetstream.ConsumerConfig) { c.MaxRequestBatch = 1 }},
		{"max_expires", func(c *jetstream.ConsumerConfig) { c.MaxRequestExpires = 100 * time.Millisecond }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			env := testenv.New(t)
			ctx := context.Background()
			emu := env.Clerk.Emulator
			id := emu.CreateSessions(emu.CreateUser(), 1)[0]
			w := env.StartWorker(t)
			cfg := env.Topology.ConsumerConfig()
			tc.edit(&cfg)
			if _, err := env.JS.UpdateConsumer(ctx, env.Topology.JobsStream, cfg); err != nil {
				t.Fatal(err)
			}
			if tc.field == "max_batch" {
				// The pull requests made before the edit expire; those
				// after it are refused until the worker asks for one job.
				time.Sleep(2 * time.Second)
				env.Publish(t, &jobs.RevokeArgs{SessionID: id})
				testenv.Eventually(t, 15*time.Second, "the job run at max_batch 1", func() bool { return len(env.Results(t)) == 1 })
				testenv.Eventually(t, 5*time.Second, "ready", func() bool { return w.Worker.Ready() == nil })
				return
			}
			env.Publish(t, &jobs.RevokeArgs{SessionID: id})
			testenv.Eventually(t, 10*time.Second, "not ready, saying why", func() bool {
				err := w.Worker.Ready()
				return err != nil && strings.Contains(err.Error(), tc.field)
			})
			if !strings.Contains(env.Logs.String(), "refuses the workers' pull requests") {
				t.Errorf("the log does not say why no job is taken:\n%s", env.Logs.String())
			}
			if _, err := env.JS.UpdateConsumer(ctx, env.Topology.JobsStream, env.Topology.ConsumerConfig()); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 15*time.Second, "the job run once the limit goes", func() bool { return len(env.Results(t)) == 1 })
			testenv.Eventually(t, 5*time.Second, "ready again", func() bool { return w.Worker.Ready() == nil })
		})
	}
}

// TestServerPullBatchLimitBelowThePrefetch: a server whose JetStream
// limits cap pull requests (jetstream { limits { max_request_batch: N } })
// gives every consumer that max_batch, and refuses every pull asking for
// more. A worker whose prefetch (a quarter of its concurrency) is larger
// asked for more at every pull: no job ran, for ever, and the worker said
// a start would remove a limit no start can.
func TestServerPullBatchLimitBelowThePrefetch(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(conf, []byte("jetstream: { limits: { max_request_batch: 4 } }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testenv.StartConfiguredServer(t, conf)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	cfg.Concurrency = 32 // a prefetch of 8
	emu := runWorkerOn(t, nc, cfg)
	c, err := clerkjobs.NewClient(nc, clerkjobs.WithTopology(cfg.Topology))
	if err != nil {
		t.Fatal(err)
	}
	ids := emu.Emulator.CreateSessions(emu.Emulator.CreateUser(), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := c.Request(ctx, &jobs.RevokeArgs{SessionID: id}); err != nil {
			t.Fatalf("revoke on a server capping pull batches at 4: %v", err)
		}
	}
}
