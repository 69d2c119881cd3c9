package worker_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestNewJobAtAnInFlightJobsSequenceRuns: the jobs stream is created
// again while the worker runs a job of the old one, and a new job gets
// that job's sequence. The new job was taken for a second delivery of the
// old one and handed back; the old one's ack, sent to the consumer of the
// same name, then acked the new job, which was never run nor recorded.
func TestNewJobAtAnInFlightJobsSequenceRuns(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(5*time.Second, 0))
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 2)
	w := env.StartWorker(t)
	old := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+ids[0]+`"}`))
	testenv.Eventually(t, 5*time.Second, "the old job in flight", func() bool { return w.Worker.Status().InFlight == 1 })
	time.Sleep(1100 * time.Millisecond) // a generation is a second: the next stream's differs
	testenv.RecreateStream(t, env.JS, env.Topology.JobsStream)
	ack := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+ids[1]+`"}`))
	if ack.Sequence != old.Sequence {
		t.Fatalf("the new job is stored at %d, the old one was at %d: the test needs them equal", ack.Sequence, old.Sequence)
	}
	testenv.Eventually(t, 30*time.Second, "both sessions revoked", func() bool {
		for _, id := range ids {
			if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
				return false
			}
		}
		return true
	})
}
