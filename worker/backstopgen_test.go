package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// crashLoop plays a worker that crashes on every delivery of the n jobs in
// the jobs stream: it takes them, never settles them, until JetStream
// stops delivering them.
func crashLoop(t *testing.T, env *testenv.Env, n int) {
	t.Helper()
	cons, err := env.JS.Consumer(context.Background(), env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < env.Topology.MaxDeliver+jobs.BackstopMargin; i++ {
		for got := 0; got < n; {
			b, err := cons.Fetch(n-got, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			before := got
			for range b.Messages() {
				got++
			}
			if got == before {
				t.Fatalf("delivery %d: got %d of %d jobs", i+1, got, n)
			}
		}
	}
}

// TestBackstopForgetsJobsOfADeletedStream: the backstop noted jobs that ran
// out of deliveries; before it could dead-letter them (the dead-letter
// stream full), an operator deleted the jobs stream (discarding the backlog)
// and created it again, and new jobs came, numbered from 1 again. The
// backstop's candidates were kept by sequence alone, so it dead-lettered the
// new jobs at those sequences as max_deliveries, never run, and deleted
// them from the stream.
func TestBackstopForgetsJobsOfADeletedStream(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 3)
	const stuck = 3
	for i := range stuck {
		env.PublishRaw(t, "sessions.revoke", fmt.Appendf(nil, `{"session_id":"sess_crashloop%d"}`, i))
	}
	crashLoop(t, env, stuck)
	topo := fillDeadLetters(t, env) // the rescues fail, and the candidates stay
	emu.SetFaults(emulator.Faults{RejectKey: true})
	w := env.StartWorker(t, func(c *worker.Config) { c.Topology = topo })
	testenv.Eventually(t, 20*time.Second, "the rescue refused", func() bool {
		return strings.Contains(env.Logs.String(), "could not dead-letter a job past max deliveries")
	})

	// The operator discards the backlog: the stuck jobs go with the stream.
	if err := env.JS.DeleteStream(ctx, topo.JobsStream); err != nil {
		t.Fatal(err)
	}
	if _, err := topo.Ensure(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	// New jobs, at the stuck jobs' sequences. The first opens the circuit
	// (the key rejected for a while); the others wait in the stream.
	env.Publish(t, &jobs.RevokeArgs{SessionID: ids[0]})
	testenv.Eventually(t, 10*time.Second, "circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	for _, id := range ids[1:] {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	// Room for dead letters again: the backstop retries its candidates.
	s, err := env.JS.Stream(ctx, topo.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	// Long enough for the backstop's retries (at most a few seconds apart
	// after a handful of failures).
	time.Sleep(10 * time.Second)
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 20*time.Second, "the new jobs settled", func() bool {
		return env.StreamCount(t, topo.JobsStream) == 0
	})
	time.Sleep(time.Second)
	if n := len(env.Results(t)); n != len(ids) {
		t.Errorf("%d results, want %d", n, len(ids))
	}
	for _, m := range env.StreamMsgs(t, topo.DeadLetterStream) {
		dl, err := jobs.ParseDeadLetter(m.Header)
		t.Errorf("a new job dead-lettered: %+v (%v): %s", dl, err, m.Data)
	}
}
