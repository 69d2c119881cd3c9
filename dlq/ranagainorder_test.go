package dlq_test

import (
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayNewerLetterFirstSendsTheJobOnce: two letters of the same job
// (a replay whose delete failed, then its job failed again) given newest
// first (`dlq replay 9 5`): the newer was sent and deleted, so the older
// found no newer letter, nor a result (its job not yet run), and was sent
// too: the job ran twice.
func TestReplayNewerLetterFirstSendsTheJobOnce(t *testing.T) {
	e := newEnv(t)
	subject := e.topo.Subjects.Job(jobs.OpRevoke)
	body := `{"job_id":"twice-1","session_id":"sess_1"}`
	header := map[string]string{jobs.HeaderJobDigest: jobs.Digest(subject, []byte(body))}
	older := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "twice-1", body: body, header: header})[0]
	newer := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "twice-1", body: body, header: header, replays: 1})[0]

	rep, err := e.q.Replay(t.Context(), []uint64{newer, older})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.jobsMsgs(t)); n != 1 {
		t.Errorf("the jobs stream holds %d jobs, want the job once (report %+v)", n, rep)
	}
	if rep.Replayed != 2 || rep.Duplicates != 1 {
		t.Errorf("replay: %+v; want both letters gone, the older as a duplicate", rep)
	}
	if left := e.dlqSeqs(t); len(left) != 0 {
		t.Errorf("dead letters left: %v", left)
	}
}
