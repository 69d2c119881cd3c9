package worker_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestBackstopReadsAnAdvisoryNoWorkerHeard: JetStream gave up on a job
// while no worker listened (a crash loop, every worker restarting), and
// sends its MAX_DELIVERIES advisory once. Another job stays pending (a
// busy system), so the consumer's ack floor stays below the job given up
// on, and the sweep, which reads up to it, never found the job: it stayed
// in the work queue for good, never delivered again nor dead-lettered. The
// given-up stream keeps the advisory for the next worker, which
// dead-letters the job and deletes the advisory. So does the given-up
// stream a worker's sweep created again after an operator deleted it (one
// made while the deletion is under way stores nothing:
// TestGivenUpStreamCreatedAgainStores).
func TestBackstopReadsAnAdvisoryNoWorkerHeard(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before runs ahead of the crash loop; it returns the creation
		// time of the given-up stream that must keep the advisory (zero:
		// the one the env made).
		before func(t *testing.T, env *testenv.Env) time.Time
	}{
		{name: "kept"},
		{name: "in the given-up stream a worker created again", before: func(t *testing.T, env *testenv.Env) time.Time {
			ctx := t.Context()
			name := env.Topology.GivenUpStream()
			w := env.StartWorker(t)
			if err := env.JS.DeleteStream(ctx, name); err != nil {
				t.Fatal(err)
			}
			var created time.Time
			testenv.Eventually(t, 10*time.Second, "the worker creating the given-up stream again", func() bool {
				s, err := env.JS.Stream(ctx, name)
				if err != nil {
					return false
				}
				created = s.CachedInfo().Created
				return strings.Contains(env.Logs.String(), "given-up stream missing: created")
			})
			w.Stop(t) // JetStream gives up on the job with no worker listening
			return created
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each on a server of its own, mostly waiting out ack waits
			env := testenv.New(t)
			ctx := context.Background()
			topo := env.Topology
			var created time.Time
			if tc.before != nil {
				created = tc.before(t, env)
			}
			stuck, pending := giveUpUnheard(t, env)
			testenv.Eventually(t, 10*time.Second, "the advisory kept in the given-up stream", func() bool {
				s, err := env.JS.Stream(ctx, topo.GivenUpStream())
				if err != nil {
					t.Fatalf("given-up stream: %v", err)
				}
				if !created.IsZero() && !s.CachedInfo().Created.Equal(created) {
					t.Fatalf("the given-up stream was created again at %v, not kept from %v", s.CachedInfo().Created, created)
				}
				return s.CachedInfo().State.Msgs == 1
			})

			env.StartWorker(t)
			testenv.Eventually(t, 30*time.Second, "the job JetStream gave up on dead-lettered", func() bool {
				return env.StreamCount(t, topo.DeadLetterStream) == 1
			})
			if m := env.StreamMsgs(t, topo.DeadLetterStream)[0]; m.Header.Get(jobs.HeaderClass) != string(jobs.ClassMaxDeliveries) {
				t.Errorf("dead-lettered as %q, want max_deliveries", m.Header.Get(jobs.HeaderClass))
			}
			// Deleted from the jobs stream once its dead letter is stored:
			// looked for until then.
			testenv.Eventually(t, 10*time.Second, "the job given up on deleted from the jobs stream", func() bool {
				return !slices.ContainsFunc(env.StreamMsgs(t, topo.JobsStream), func(m *jetstream.RawStreamMsg) bool {
					return m.Sequence == stuck.Sequence
				})
			})
			testenv.Eventually(t, 10*time.Second, "its advisory deleted", func() bool {
				return env.StreamCount(t, topo.GivenUpStream()) == 0
			})
			if err := pending.Ack(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// giveUpUnheard has JetStream give up on a job while no worker listens
// (a crash loop), with another job kept pending (a busy system), so that
// the consumer's ack floor stays below the job given up on and only its
// kept advisory tells a worker of it. It returns the job given up on and
// the pending one, kept in progress until the test ends: ack it to let it
// go.
func giveUpUnheard(t *testing.T, env *testenv.Env) (stuck *jetstream.PubAck, pending jetstream.Msg) {
	t.Helper()
	ctx := context.Background()
	topo := env.Topology
	cons, err := env.JS.Consumer(ctx, topo.JobsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	stuck = env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_given_up"}`))
	env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_pending"}`))
	fetch := func(n int) []jetstream.Msg {
		t.Helper()
		b, err := cons.Fetch(n, jetstream.FetchMaxWait(topo.AckWait+3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var out []jetstream.Msg
		for m := range b.Messages() {
			out = append(out, m)
		}
		return out
	}
	first := fetch(2)
	if len(first) != 2 {
		t.Fatalf("delivered %d jobs, want 2", len(first))
	}
	pending = first[1]
	// The second job stays pending: taken by a worker that works on it.
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(held)
		tick := time.NewTicker(topo.AckWait / 4)
		defer tick.Stop()
		for {
			select {
			case <-hold:
				return
			case <-tick.C:
				_ = pending.InProgress()
			}
		}
	}()
	t.Cleanup(func() { close(hold); <-held })
	// The first never settled: delivered until JetStream gives up, at the
	// pull after the last ack wait, no one listening for its advisory.
	for i := 1; i < topo.MaxDeliver+jobs.BackstopMargin; i++ {
		if got := fetch(1); len(got) != 1 {
			t.Fatalf("delivery %d: %d jobs, want the first again", i+1, len(got))
		}
	}
	if got := fetch(1); len(got) != 0 {
		t.Fatalf("delivered again after the last delivery: %s", got[0].Data())
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 1 || info.AckFloor.Stream >= stuck.Sequence {
		t.Fatalf("consumer: %d pending, ack floor %d; want the second job pending, the floor below the first", info.NumAckPending, info.AckFloor.Stream)
	}
	return stuck, pending
}

// TestWorkerWithoutItsGivenUpStream: the given-up stream deleted while the
// workers run is created again at the next sweep, so that advisories are
// kept again; one another stream's subjects leave no room for (an
// operator's stream of every advisory) leaves the worker running without
// it, said once, not at every sweep.
func TestWorkerWithoutItsGivenUpStream(t *testing.T) {
	t.Run("deleted", func(t *testing.T) {
		env := testenv.New(t)
		topo := env.Topology
		env.StartWorker(t)
		if err := env.JS.DeleteStream(context.Background(), topo.GivenUpStream()); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "the given-up stream created again", func() bool {
			_, err := env.JS.Stream(context.Background(), topo.GivenUpStream())
			return err == nil && strings.Contains(env.Logs.String(), "given-up stream missing: created")
		})
	})
	t.Run("its subject taken", func(t *testing.T) {
		env := testenv.New(t)
		ctx := context.Background()
		topo := env.Topology
		if err := env.JS.DeleteStream(ctx, topo.GivenUpStream()); err != nil {
			t.Fatal(err)
		}
		if _, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "ADVISORIES", Subjects: []string{"$JS.EVENT.>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		env.StartWorker(t)
		const said = "cannot keep max-deliveries advisories"
		testenv.Eventually(t, 10*time.Second, "the worker saying it runs without the given-up stream", func() bool {
			return strings.Contains(env.Logs.String(), said)
		})
		time.Sleep(3 * env.WorkerConfig().SweepInterval)
		if n := strings.Count(env.Logs.String(), said); n != 1 {
			t.Errorf("said %d times in three sweeps, want once", n)
		}
		if !strings.Contains(env.Logs.String(), "stream ADVISORIES captures its subject") {
			t.Errorf("the log does not name the stream that takes the advisories:\n%s", env.Logs.String())
		}
		// Not said to be created, either: a line that the next one
		// contradicts.
		if created := "created stream " + topo.GivenUpStream(); strings.Contains(env.Logs.String(), created) {
			t.Errorf("the log says %q of a stream not made:\n%s", created, env.Logs.String())
		}
		// It runs jobs all the same.
		emu := env.Clerk.Emulator
		id := emu.CreateSessions(emu.CreateUser(), 1)[0]
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
		testenv.Eventually(t, 10*time.Second, "the job run", func() bool { return len(env.Results(t)) == 1 })
	})
}

// TestBackstopKeptAdvisoryOfAConsumerCreatedSince: JetStream gave up on a
// job with no worker listening, and an operator deleted the consumer
// before any worker came back; the worker made it again at its start, and
// the new consumer delivers the job afresh: Clerk failed it once, and it
// waits its nak delay. The given-up stream still keeps the old consumer's
// advisory, which the worker never heard: taken as the new consumer's, it
// dead-lettered the job as max_deliveries, never run again.
func TestBackstopKeptAdvisoryOfAConsumerCreatedSince(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	ctx := context.Background()
	topo := env.Topology
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	crashLoop(t, env, 1)
	cons, err := env.JS.Consumer(ctx, topo.JobsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "JetStream giving up on the job, its advisory kept", func() bool {
		if _, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
			t.Fatal(err)
		}
		return env.StreamCount(t, topo.GivenUpStream()) == 1
	})
	if err := env.JS.DeleteConsumer(ctx, topo.JobsStream, topo.Consumer); err != nil {
		t.Fatal(err)
	}
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	w := env.StartWorker(t, func(c *worker.Config) {
		c.Retry.NakDelay, c.Retry.NakDelayMax, c.Retry.Jitter = 10*time.Second, 10*time.Second, 0
	})
	testenv.Eventually(t, 20*time.Second, "the job delivered afresh, failed and handed back", func() bool {
		return callsTo(emu, emulator.OpRevokeSession) > 0 && w.Worker.Status().InFlight == 0
	})
	time.Sleep(2 * topo.AckWait) // past the rescue's grace, within the nak delay
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 30*time.Second, "the job settled", func() bool {
		return env.StreamCount(t, topo.JobsStream) == 0
	})
	if r := env.Results(t); len(r) != 1 {
		t.Errorf("%d results; want the job run again and recorded", len(r))
	}
	for _, dl := range deadLetters(t, env) {
		t.Errorf("the job the new consumer delivered was dead-lettered: %+v", dl)
	}
	testenv.Eventually(t, 10*time.Second, "the old consumer's advisory deleted", func() bool {
		return env.StreamCount(t, topo.GivenUpStream()) == 0
	})
}
