package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestHeadersOnlyConsumerLosesNoJob: an operator sets headers_only on the
// workers' consumer while they run (nats consumer edit). JetStream then
// delivers every job without its body; the worker dead-lettered each as
// invalid (not JSON) with an empty body and acked it, so the job was gone
// from the stream and its dead letter could not be replayed: the revoke
// was lost. The worker now reads the body from the stream, runs the job,
// and says that the consumer differs from its configuration.
func TestHeadersOnlyConsumerLosesNoJob(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t)
	cfg := env.Topology.ConsumerConfig()
	cfg.HeadersOnly = true
	if _, err := env.JS.UpdateConsumer(ctx, env.Topology.JobsStream, cfg); err != nil {
		t.Fatal(err)
	}
	env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	testenv.Eventually(t, 15*time.Second, "the job settled", func() bool {
		return env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
			t.Logf("dead letter %s: %q (%s)", m.Subject, m.Data, m.Header.Get(jobs.HeaderError))
		}
		t.Fatalf("%d dead letters, want the job run", n)
	}
	if res := env.Results(t); len(res) != 1 || res[0].Outcome != jobs.Succeeded {
		t.Fatalf("results %+v, want the revoke's success", res)
	}
	testenv.Eventually(t, 10*time.Second, "the drift logged", func() bool {
		return strings.Contains(env.Logs.String(), "headers_only is true, want false")
	})
}
