package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestJobKeptByDenyDeleteIsNotRescuedAgain: with deny_delete set on the
// jobs stream while the workers run, a job past max deliveries is
// dead-lettered and stays in the stream. Every sweep (a minute apart; here
// half a second) found it again and rescued it again: a stream read, two
// record look-ups and a delete the stream refuses, for each such job, every
// minute, on every worker, until the stream is created again. The backstop
// now leaves alone a job it knows the stream keeps.
func TestJobKeptByDenyDeleteIsNotRescuedAgain(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	ctx := context.Background()
	var deletes atomic.Int64
	sub, err := env.NC.Subscribe("$JS.API.STREAM.MSG.DELETE."+env.Topology.JobsStream, func(*nats.Msg) { deletes.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_crashloop"}`))
	crashLoop(t, env, 1)
	pastMaxDeliveries(t, env) // the sweeps find it too
	env.StartWorker(t)
	st, err := env.JS.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.DenyDelete = true
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the job dead-lettered, and said to stay", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 && strings.Contains(env.Logs.String(), "stays in the jobs stream")
	})
	time.Sleep(6 * time.Second) // a dozen sweeps find it again meanwhile
	if n := deletes.Load(); n != 1 {
		t.Errorf("%d deletes of the job asked of a stream that denies them, want 1", n)
	}
}
