package worker_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/worker"
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

// TestOldAckDoesNotSettleANewJobAtItsSequence: the jobs stream is created
// again while a job of the old one runs, and a new job gets its sequence
// and fails once. An ack names only the consumer and the sequence, so the
// old job's ack, sent when it ended, settled the new job between its
// failure and its retry: the new job was never run again, and lost.
func TestOldAckDoesNotSettleANewJobAtItsSequence(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(3*time.Second, 0))
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 2)
	w := env.StartWorker(t, func(c *worker.Config) {
		c.Retry.DeliveryBudget = 0 // one attempt per delivery: the failure is a nak
		c.Retry.NakDelay, c.Retry.NakDelayMax = 2*time.Second, 2*time.Second
	})
	old := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+ids[0]+`"}`))
	testenv.Eventually(t, 5*time.Second, "the old job in flight", func() bool { return w.Worker.Status().InFlight == 1 })
	time.Sleep(1100 * time.Millisecond) // a generation is a second: the next stream's differs
	testenv.RecreateStream(t, env.JS, env.Topology.JobsStream)
	emu.FailSession(ids[1], 503)
	ack := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+ids[1]+`"}`))
	if ack.Sequence != old.Sequence {
		t.Fatalf("the new job is stored at %d, the old one was at %d: the test needs them equal", ack.Sequence, old.Sequence)
	}
	testenv.Eventually(t, 30*time.Second, "the new job's first attempt failed", func() bool {
		for _, c := range emu.Calls() {
			if c.SessionID == ids[1] && c.Status == 503 {
				return true
			}
		}
		return false
	})
	emu.FailSession(ids[1], 0)
	testenv.Eventually(t, 30*time.Second, "the new job retried and its session revoked", func() bool {
		s, _ := emu.Session(ids[1])
		return s.Status == clerkapi.StatusRevoked
	})
}
