package worker_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// A worker that held its first delivery past half the ack wait (paused, its
// heartbeats lost) may have seen the job given to another worker, which
// dead-lettered it. Its late result must not join that dead letter: the job
// keeps exactly one record.
func TestLateResultMeetsDeadLetter(t *testing.T) {
	// The revoke takes longer than half the test topology's 2 s ack wait.
	env := testenv.New(t, emulator.WithLatency(1500*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	w := env.StartWorker(t)
	ack := env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: "late-1"}, SessionID: id})
	testenv.Eventually(t, 5*time.Second, "the job in flight", func() bool { return w.Worker.Status().InFlight == 1 })

	// What the other worker's delivery stored meanwhile.
	key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: "late-1", Gen: generation(t, env), Seq: ack.Sequence}
	env.PublishRaw(t, env.Topology.Subjects.DeadLetter(key), []byte(`{"session_id":"`+id+`","job_id":"late-1"}`))

	testenv.Eventually(t, 10*time.Second, "the job acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	if n := env.StreamCount(t, env.Topology.ResultsStream); n != 0 {
		t.Errorf("%d results stored beside the job's dead letter; want the dead letter alone", n)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 1 {
		t.Errorf("%d dead letters; want 1", n)
	}
}
