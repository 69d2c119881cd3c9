package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
	t.Parallel() // a server of its own
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

// TestBackstopSaysNoFailureForADeletedStream: the jobs stream is deleted
// after the backstop noted a job in it, and cannot be created again (a
// stream an operator made captures its subjects). The job went with the
// stream, yet the backstop said at Error level, every 30 s, that it could
// not dead-letter it ("stream not found").
func TestBackstopSaysNoFailureForADeletedStream(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	ctx := context.Background()
	env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_crashloop"}`))
	crashLoop(t, env, 1)
	pastMaxDeliveries(t, env)
	env.StartWorker(t) // its first sweep notes the job; its rescue waits an ack wait
	if err := env.JS.DeleteStream(ctx, env.Topology.JobsStream); err != nil {
		t.Fatal(err)
	}
	if _, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BLOCKER", Subjects: []string{"sessions.revoke"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the worker failing to create the stream again", func() bool {
		return strings.Contains(env.Logs.String(), "taking jobs failed")
	})
	time.Sleep(3 * env.Topology.AckWait) // past the rescue's grace
	if strings.Contains(env.Logs.String(), "could not dead-letter") {
		t.Errorf("a job gone with its stream said not dead-lettered:\n%s", env.Logs.String())
	}
}

// pastMaxDeliveries moves the consumer's ack floor past the jobs crashLoop
// took, as a fleet at work does: JetStream gives up on a job at the next
// pull after its last ack wait, and the floor passes it once a later job is
// acked (one more job, acked here).
func pastMaxDeliveries(t *testing.T, env *testenv.Env) {
	t.Helper()
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		c, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		return c.CachedInfo().NumAckPending
	}
	testenv.Eventually(t, 20*time.Second, "JetStream giving up on the jobs", func() bool {
		if _, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
			t.Fatal(err)
		}
		return pending() == 0
	})
	env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_acked"}`))
	testenv.Eventually(t, 10*time.Second, "a later job acked", func() bool {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		acked := false
		for m := range b.Messages() {
			acked = m.DoubleAck(ctx) == nil
		}
		return acked
	})
}

// TestBackstopTakesOnlyJetStreamsAdvisories: a max-deliveries advisory
// names a job by its sequence. Two that do not come from JetStream about
// that job are ignored, each checked beside a true one for a job stored
// before it (which shows the backstop read both):
//   - older than its job: sent before the job was stored, it names another
//     job at the same sequence, of a stream created again, which the
//     stream's creation time may not show in a cluster whose servers'
//     clocks differ;
//   - relayed: a stored message (a dead letter whose body is any JSON)
//     sent to the advisory subject as the reply to an operator's direct
//     get, which NATS permissions never check; JetStream's advisories
//     carry no headers.
//
// Either named a job not delivered yet (here the consumer is paused), or
// one another worker runs, which was dead-lettered as max_deliveries.
func TestBackstopTakesOnlyJetStreamsAdvisories(t *testing.T) {
	for _, tt := range []struct {
		name   string
		at     func(stored time.Time) time.Time
		header nats.Header
		// delivered: the job the false advisory names was delivered
		// (else it waits its first delivery, as a stream's created again)
		delivered bool
	}{
		{name: "older than its job", at: func(stored time.Time) time.Time { return stored.Add(-time.Millisecond) }},
		{name: "relayed", at: func(stored time.Time) time.Time { return stored.Add(time.Minute) },
			header: nats.Header{"Nats-Stream": {"SESSION_DLQ"}, "Nats-Sequence": {"1"}}, delivered: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := testenv.New(t)
			ctx := context.Background()
			topo := env.Topology
			cons, err := env.JS.Consumer(ctx, topo.JobsStream, topo.Consumer)
			if err != nil {
				t.Fatal(err)
			}
			// A job JetStream gives up on was delivered: taken here,
			// never settled.
			deliver := func() {
				t.Helper()
				b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for range b.Messages() {
					n++
				}
				if n != 1 {
					t.Fatalf("delivered %d jobs, want 1", n)
				}
			}
			stuck := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_stuck"}`))
			deliver()
			named := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_named"}`))
			if tt.delivered {
				deliver()
			}
			if _, err := env.JS.PauseConsumer(ctx, topo.JobsStream, topo.Consumer, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			env.StartWorker(t)
			msgs := env.StreamMsgs(t, topo.JobsStream)
			if len(msgs) != 2 {
				t.Fatalf("jobs stream holds %d jobs, want 2", len(msgs))
			}
			subject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", topo.JobsStream, topo.Consumer)
			advise := func(seq uint64, at time.Time, h nats.Header) {
				t.Helper()
				m := &nats.Msg{Subject: subject, Header: h, Data: fmt.Appendf(nil, `{"stream_seq":%d,"deliveries":%d,"timestamp":%q}`,
					seq, topo.MaxDeliver, at.UTC().Format(time.RFC3339Nano))}
				if err := env.NC.PublishMsg(m); err != nil {
					t.Fatal(err)
				}
			}
			advise(named.Sequence, tt.at(msgs[1].Time), tt.header)
			advise(stuck.Sequence, msgs[0].Time.Add(time.Minute), nil)
			testenv.Eventually(t, 30*time.Second, "the job the true advisory names dead-lettered", func() bool {
				for _, m := range env.StreamMsgs(t, topo.JobsStream) {
					if m.Sequence == stuck.Sequence {
						return false
					}
				}
				return true
			})
			if n := env.StreamCount(t, topo.JobsStream); n != 1 {
				t.Errorf("jobs stream holds %d jobs, want the one the false advisory names", n)
			}
			for _, m := range env.StreamMsgs(t, topo.DeadLetterStream) {
				if strings.Contains(string(m.Data), "sess_named") {
					t.Errorf("the job a false advisory names was dead-lettered as %s", m.Header.Get(jobs.HeaderClass))
				}
			}
			// The given-up stream kept both: each deleted, the false one
			// read there not taken either.
			testenv.Eventually(t, 10*time.Second, "the kept advisories deleted", func() bool {
				return env.StreamCount(t, topo.GivenUpStream()) == 0
			})
			if n := env.StreamCount(t, topo.JobsStream); n != 1 {
				t.Errorf("jobs stream holds %d jobs after the kept advisories were read, want the one the false advisory names", n)
			}
			for _, m := range env.StreamMsgs(t, topo.DeadLetterStream) {
				if strings.Contains(string(m.Data), "sess_named") {
					t.Errorf("the job a false advisory names was dead-lettered as %s, from the given-up stream", m.Header.Get(jobs.HeaderClass))
				}
			}
		})
	}
}

// TestBackstopTakesAnAdvisoryStampedBeforeItsJob: in a cluster the jobs
// stream's leader stamps a job, the consumer's leader its max-deliveries
// advisory; with the first's clock ahead, a job given up on soon after it
// was stored (each delivery handed back at once: a shutdown, a pause)
// seems stored after its advisory. The backstop took that for another job
// and dropped the advisory, saying nothing; JetStream sends it once and
// the ack floor never passes a job given up on, so the sweep never found
// it: never delivered again nor dead-lettered. Played here with the only
// advisory heard before the worker starts, sent again stamped before its job.
func TestBackstopTakesAnAdvisoryStampedBeforeItsJob(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	topo := env.Topology
	subject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", topo.JobsStream, topo.Consumer)
	sub, err := env.NC.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	stuck := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_skewed"}`))
	crashLoop(t, env, 1)
	// JetStream gives up at the pull after the last ack wait.
	cons, err := env.JS.Consumer(context.Background(), topo.JobsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := cons.Fetch(1, jetstream.FetchMaxWait(topo.AckWait+5*time.Second)); err != nil {
		t.Fatal(err)
	} else {
		for m := range b.Messages() {
			t.Fatalf("job delivered again: %s", m.Data())
		}
	}
	adv, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("JetStream's advisory: %v", err)
	}
	var real map[string]any
	if err := json.Unmarshal(adv.Data, &real); err != nil || real["stream_seq"] != float64(stuck.Sequence) {
		t.Fatalf("advisory %s (%v): want stream_seq %d", adv.Data, err, stuck.Sequence)
	}
	msgs := env.StreamMsgs(t, topo.JobsStream)
	if len(msgs) != 1 {
		t.Fatalf("jobs stream holds %d jobs, want 1", len(msgs))
	}
	// The consumer leader's clock behind the stream leader's: the
	// advisory seems sent before the job was stored (not before the
	// stream was created, which is another case: ofStream).
	stream, err := env.JS.Stream(context.Background(), topo.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	created := stream.CachedInfo().Created
	if !msgs[0].Time.After(created) {
		t.Fatalf("job stored at %s, stream created at %s", msgs[0].Time, created)
	}
	real["timestamp"] = created.Add(msgs[0].Time.Sub(created) / 2).UTC().Format(time.RFC3339Nano)
	skewed, err := json.Marshal(real)
	if err != nil {
		t.Fatal(err)
	}
	// The given-up stream's copy of the real one goes: only the skewed
	// one tells of the job.
	if kept, err := env.JS.Stream(context.Background(), topo.GivenUpStream()); err != nil {
		t.Fatal(err)
	} else if err := kept.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.StartWorker(t)
	testenv.Eventually(t, 10*time.Second, "the worker listening", func() bool {
		// Its subscription, and ours, on the subject.
		return env.NC.Publish(subject, nil) == nil && strings.Contains(env.Logs.String(), "unreadable max-deliveries advisory")
	})
	if err := env.NC.Publish(subject, skewed); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the job JetStream gave up on dead-lettered", func() bool {
		return env.StreamCount(t, topo.JobsStream) == 0 && env.StreamCount(t, topo.DeadLetterStream) == 1
	})
	if m := env.StreamMsgs(t, topo.DeadLetterStream)[0]; m.Header.Get(jobs.HeaderClass) != string(jobs.ClassMaxDeliveries) {
		t.Errorf("dead-lettered as %q, want max_deliveries", m.Header.Get(jobs.HeaderClass))
	}
	// Kept too, with the empty message: each deleted.
	testenv.Eventually(t, 10*time.Second, "the given-up stream emptied", func() bool {
		return env.StreamCount(t, topo.GivenUpStream()) == 0
	})
}
