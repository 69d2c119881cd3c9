package worker_test

import (
	"testing"
	"time"

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
	own := emulator.NewServer()
	t.Cleanup(own.Close)
	own.Emulator.SetFaults(emulator.Faults{RejectKey: true, Latency: 300 * time.Millisecond})
	cfg := env.WorkerConfig()
	cfg.Instance, cfg.Concurrency = "paused", 1 // a prefetch of 2
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(own.URL))
	if err != nil {
		t.Fatal(err)
	}
	paused := env.StartWorkerWith(t, clerk, cfg)
	ids := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 3)
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 10*time.Second, "the circuit open, a job in the slot and one held", func() bool {
		st := paused.Worker.Status()
		return st.CircuitOpen && st.InFlight >= 2
	})
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
