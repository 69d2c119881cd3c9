package dlq_test

import (
	"testing"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayAfterTheQueueWasCreatedAgain: a dead-letter stream deleted
// and created again (the worker creates it at start) numbers its letters
// from 1 again. The replay of its letter 1 must not be taken by the jobs
// stream for the replay of the earlier stream's letter 1, sent within the
// deduplication window: the job would be dropped as a duplicate, and its
// dead letter deleted as replayed.
func TestReplayAfterTheQueueWasCreatedAgain(t *testing.T) {
	e := newEnv(t)
	first := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "before"})
	if rep, err := e.q.Replay(t.Context(), first); err != nil || rep.Replayed != 1 {
		t.Fatalf("replay: %+v, %v", rep, err)
	}
	testenv.RecreateStream(t, e.js, e.topo.DeadLetterStream)
	q, err := dlq.Open(t.Context(), e.js, e.topo)
	if err != nil {
		t.Fatal(err)
	}
	e.q = q
	second := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "after"})
	if second[0] != first[0] {
		t.Fatalf("the new stream's letter is %d, want %d like the old one's", second[0], first[0])
	}
	rep, err := e.q.Replay(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.jobsMsgs(t)); n != 2 || rep.Duplicates != 0 {
		t.Fatalf("jobs stream holds %d jobs, replay %+v: want both replayed jobs, none taken for a duplicate", n, rep)
	}
}
