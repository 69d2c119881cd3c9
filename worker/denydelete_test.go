package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestUndeletableDeadLetterBesideAResult: a dead-letter stream set to
// deny_delete while the workers ran (nats stream edit --deny-delete, which
// cannot be undone) refuses to remove a dead letter beside a job's result.
// The job, its result stored, was parked and retried for ever: a slot held,
// the worker not ready, and with Concurrency such jobs no job taken at all.
// The job is done: it is acked, and the letter that cannot go is said, as
// when a redelivery finds a result beside a letter.
func TestUndeletableDeadLetterBesideAResult(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	ctx := context.Background()
	s, err := env.JS.Stream(ctx, env.Topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.DenyDelete = true
	ack := env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: "rival-1"}, SessionID: id})
	key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: "rival-1", Gen: generation(t, env), Seq: ack.Sequence}
	env.PublishRaw(t, env.Topology.Subjects.DeadLetter(key), []byte(`{"session_id":"`+id+`","job_id":"rival-1"}`))
	// Waited past half the ack wait: a rival delivery may have run.
	time.Sleep(clerkjobstest.Topology().AckWait/2 + 200*time.Millisecond)
	emu.SetFaults(emulator.Faults{Latency: time.Second})
	w := env.StartWorker(t)
	// After the worker's start, which refuses a stream it cannot update.
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the job acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	if n := len(env.Results(t)); n != 1 {
		t.Errorf("%d results, want 1", n)
	}
	if n := emu.RevokeCount(id); n != 1 {
		t.Errorf("revoked %d times", n)
	}
	testenv.Eventually(t, 5*time.Second, "ready", func() bool { return w.Worker.Ready() == nil })
	if !strings.Contains(env.Logs.String(), "denies deletes") {
		t.Errorf("the worker did not say the dead letter beside the result could not be removed")
	}
}
