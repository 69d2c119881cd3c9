package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestJobsStreamDenyingDeletesIsSaidOnce: an operator sets deny_delete on
// the jobs stream while the workers run. The backstop dead-lettered a job
// past max deliveries, could not delete it from the jobs stream, and said
// "could not dead-letter a job past max deliveries; trying again" at Error
// level every 30 s for ever, of a job that was dead-lettered. It now says
// once, at Warn, that the job is recorded and stays in the stream.
func TestJobsStreamDenyingDeletesIsSaidOnce(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	ctx := context.Background()
	env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_crashloop"}`))
	crashLoop(t, env, 1)
	env.StartWorker(t) // its first sweep notes the job; its rescue waits an ack wait
	st, err := env.JS.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.DenyDelete = true
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	const kept = "stays in the jobs stream"
	testenv.Eventually(t, 20*time.Second, "the job dead-lettered, and said to stay", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 && strings.Contains(env.Logs.String(), kept)
	})
	time.Sleep(6 * time.Second) // sweeps find it again meanwhile
	logs := env.Logs.String()
	if strings.Contains(logs, "could not dead-letter") {
		t.Errorf("a dead-lettered job said not to be:\n%s", logs)
	}
	if n := strings.Count(logs, kept); n != 1 {
		t.Errorf("said %d times, want once:\n%s", n, logs)
	}
}
