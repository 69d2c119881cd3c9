package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestPullLimitsSetWhileRunningAreReported: an operator sets a
// max_batch (max_request_batch) below the workers' prefetch, or a max_request_expires
// below their pull's expiry, on the consumer while they run (nats consumer
// edit). JetStream then refuses every pull request: no job was taken, while
// /readyz said ready and the log said only "no heartbeat received". The
// worker now says why on /readyz and in its log, takes the jobs once the
// limit goes, and the limit is a drift a worker's start sets back.
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
