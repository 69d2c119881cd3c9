package worker_test

import (
	"testing"
	"time"

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
