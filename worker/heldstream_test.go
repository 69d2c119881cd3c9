package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestHeldJobsOfADeletedStreamAreNotRun: a worker paused by an open
// circuit holds its prefetched jobs; meanwhile the jobs stream is deleted
// (an operator discarding a backlog), and perhaps created again. The held
// jobs were never started, and their stream is gone: a job of a deleted
// stream is dropped (see delivery.void). The worker ran them when it
// resumed, before it took anything from the consumer and so before it read
// the stream again: each called Clerk, and an ack of one would have
// reached the new stream's job at its sequence. The job in the slot had
// started, and runs to its end.
func TestHeldJobsOfADeletedStreamAreNotRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		recreate bool
	}{
		{"deleted", false},
		{"deleted and created again", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			emu := env.Clerk.Emulator
			faults := func(rejectKey bool) emulator.Faults {
				return emulator.Faults{RejectKey: rejectKey, Latency: 300 * time.Millisecond}
			}
			w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 1 }) // a prefetch of 2
			emu.SetFaults(faults(true))
			ids := emu.CreateSessions(emu.CreateUser(), 3)
			for _, id := range ids {
				env.Publish(t, &jobs.RevokeArgs{SessionID: id})
			}
			testenv.Eventually(t, 10*time.Second, "the circuit open, a job in the slot and one held", func() bool {
				st := w.Worker.Status()
				return st.CircuitOpen && st.InFlight >= 2
			})
			if err := env.JS.DeleteStream(t.Context(), env.Topology.JobsStream); err != nil {
				t.Fatal(err)
			}
			if tc.recreate {
				if _, err := env.Topology.Ensure(t.Context(), env.JS); err != nil {
					t.Fatal(err)
				}
			}
			emu.SetFaults(faults(false))
			testenv.Eventually(t, 10*time.Second, "the circuit closed", func() bool { return !w.Worker.Status().CircuitOpen })
			testenv.Eventually(t, 10*time.Second, "no job in flight", func() bool { return w.Worker.Status().InFlight == 0 })
			revokes := 0
			for _, id := range ids {
				revokes += emu.RevokeCount(id)
			}
			if revokes != 1 {
				t.Errorf("%d sessions revoked; want 1, the started job's: the held jobs of the deleted stream must not run", revokes)
			}
		})
	}
}

// TestHeldJobsOfADeletedConsumerAreNotRun: a worker whose key Clerk
// rejects (its own Clerk here) pauses and holds its prefetched jobs; the
// consumer is deleted meanwhile and created again by another worker, which
// runs every job in the stream, the held ones too. When the first resumes,
// the jobs it held were delivered by a consumer that is gone, and the one
// now delivers them anew: it ran them all the same, a second call to Clerk
// for each (a create would make a second session: its first delivery
// looks for no record). The job in its slot had started, and runs to its
// end.
func TestHeldJobsOfADeletedConsumerAreNotRun(t *testing.T) {
	env := testenv.New(t)
	paused, own, ids := startPaused(t, env)
	if err := env.JS.DeleteConsumer(t.Context(), env.Topology.JobsStream, env.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	env.StartWorker(t, func(c *worker.Config) { c.Instance = "other" }) // creates the consumer again
	testenv.Eventually(t, 10*time.Second, "every job done by the other worker", func() bool { return len(env.Results(t)) == len(ids) })
	own.Emulator.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 10*time.Second, "the circuit closed", func() bool { return !paused.Worker.Status().CircuitOpen })
	testenv.Eventually(t, 10*time.Second, "no job in flight", func() bool { return paused.Worker.Status().InFlight == 0 })
	handled := 0
	for _, c := range own.Emulator.Calls() {
		if c.Op == "RevokeSession" && c.Fault == "" {
			handled++
		}
	}
	if handled != 1 {
		t.Errorf("the resumed worker called Clerk for %d revokes; want 1, its started job's: the held jobs of a deleted consumer must not run", handled)
	}
}

// TestHeldJobsOfARecreatedConsumerAreNotHandedBack: a worker whose key
// Clerk rejects holds its prefetched jobs, and hands them back after a
// pause of three ack waits, or when it stops. Meanwhile the consumer was
// deleted and created again (same name), and delivered every job anew to
// another taker, which still runs them. A nak names only the consumer and
// the sequences, so the paused worker's nak reached the new consumer's
// delivery of the job and handed it out a second time while the other
// taker ran it: the job ran twice. The same held for the job in the slot,
// naked when the worker stopped, and for the jobs a busy worker (not
// paused) had prefetched and not taken when it stopped.
func TestHeldJobsOfARecreatedConsumerAreNotHandedBack(t *testing.T) {
	t.Parallel() // a server of its own
	for _, tc := range []struct {
		name  string
		start func(*testing.T, *testenv.Env) (*testenv.Running, *emulator.Server, []string)
		stop  bool
	}{
		{"a pause of three ack waits", startPaused, false},
		{"a stopping worker", startPaused, true},
		{"a busy worker stopping", startBusy, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			paused, _, ids := tc.start(t, env)
			ctx := t.Context()
			if err := env.JS.DeleteConsumer(ctx, env.Topology.JobsStream, env.Topology.Consumer); err != nil {
				t.Fatal(err)
			}
			cons, err := env.Topology.Ensure(ctx, env.JS)
			if err != nil {
				t.Fatal(err)
			}
			// The other taker: every job, kept alive for the rest of the test.
			batch, err := cons.Fetch(len(ids), jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			var taken []jetstream.Msg
			for m := range batch.Messages() {
				taken = append(taken, m)
			}
			if len(taken) != len(ids) {
				t.Fatalf("the new consumer delivered %d jobs; want %d", len(taken), len(ids))
			}
			go func() {
				tick := time.NewTicker(env.Topology.AckWait / 4)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					for _, m := range taken {
						_ = m.InProgress()
					}
				}
			}()
			// The paused worker reads the consumer every second: once it has
			// seen the new one, none of its jobs, held or in the slot, is
			// handed back to it.
			testenv.Eventually(t, 5*time.Second, "the paused worker seeing the consumer created again", func() bool {
				return strings.Contains(env.Logs.String(), "the consumer was created again")
			})
			if tc.stop {
				paused.Stop(t)
			} else {
				testenv.Eventually(t, 3*env.Topology.AckWait+5*time.Second, "the held jobs handed back", func() bool {
					return paused.Worker.Status().InFlight == 1
				})
			}
			// A held job delivered again now is one handed out while the
			// other taker runs it. The nak is on its way once in_flight
			// drops, so look for a while.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				again, err := cons.FetchNoWait(len(ids))
				if err != nil {
					t.Fatal(err)
				}
				for m := range again.Messages() {
					meta, _ := m.Metadata()
					t.Errorf("job %d delivered again while the new consumer's taker runs it: the paused worker's hand-back reached the new consumer", meta.Sequence.Stream)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// startPaused starts a worker (concurrency 1, a prefetch of 2) on an
// emulator of its own that rejects the key, publishes three revoke jobs,
// and waits until its circuit is open with a job in its slot and one held.
// The env's emulator, which accepts the key, holds the jobs' sessions.
func startPaused(t *testing.T, env *testenv.Env) (*testenv.Running, *emulator.Server, []string) {
	t.Helper()
	return startOwn(t, env, emulator.Faults{RejectKey: true, Latency: 300 * time.Millisecond},
		"the circuit open, a job in the slot and one held", func(st worker.Status) bool {
			return st.CircuitOpen && st.InFlight >= 2
		})
}

// startBusy is startPaused with a Clerk that accepts the key but answers
// after a minute: the worker runs the job in its slot, the next ones
// prefetched in its pull and not yet taken (its pull asks for no more).
func startBusy(t *testing.T, env *testenv.Env) (*testenv.Running, *emulator.Server, []string) {
	t.Helper()
	return startOwn(t, env, emulator.Faults{Latency: time.Minute}, "a job in the slot", func(st worker.Status) bool {
		return st.InFlight >= 1
	})
}

// startOwn starts a worker (concurrency 1, a prefetch of 2) on an emulator
// of its own with faults, publishes three revoke jobs, and waits until
// ready says the worker is in the state what names.
func startOwn(t *testing.T, env *testenv.Env, faults emulator.Faults, what string, ready func(worker.Status) bool) (*testenv.Running, *emulator.Server, []string) {
	t.Helper()
	own := emulator.NewServer()
	t.Cleanup(own.Close)
	own.Emulator.SetFaults(faults)
	cfg := env.WorkerConfig()
	cfg.Instance, cfg.Concurrency = "paused", 1
	if faults.Latency > cfg.DrainTimeout {
		cfg.DrainTimeout = time.Second // a stop need not wait out the slow answer
	}
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(own.URL))
	if err != nil {
		t.Fatal(err)
	}
	paused := env.StartWorkerWith(t, clerk, cfg)
	ids := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 3)
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 10*time.Second, what, func() bool { return ready(paused.Worker.Status()) })
	return paused, own, ids
}
