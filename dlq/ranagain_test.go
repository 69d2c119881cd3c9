package dlq_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayDoesNotSendAJobThatRanAgain: a replay whose delete failed (the
// connection lost after the job was acknowledged) keeps the letter, and
// the command said to run it again once that is fixed. Run again past the
// deduplication window, the letter was sent again although its job had
// run since: succeeded (a create: a second session), or failed again into
// a newer dead letter, which the same replay (--class exhausted) sent too.
// A record of the same job (its id and the digest of the job the letter
// holds, or of the one its replay sends) stored after the letter now keeps
// it from being sent (the letter goes, as an interrupted run's duplicate
// does); an older record, or another job's, does not. Older and newer are
// the jobs stream's order, which the records' subjects carry: the clocks
// of the two streams' leaders may differ.
func TestReplayDoesNotSendAJobThatRanAgain(t *testing.T) {
	e := newEnv(t)
	subject := e.topo.Subjects.Job(jobs.OpRevoke)
	digest := func(body string) map[string]string {
		return map[string]string{jobs.HeaderJobDigest: jobs.Digest(subject, []byte(body))}
	}
	result := func(jobID, body string, seq uint64) {
		t.Helper()
		m := nats.NewMsg(e.topo.Subjects.Result(jobs.RecordKey{Op: jobs.OpRevoke, JobID: jobID, Gen: "seed", Seq: seq}))
		m.Header.Set(jobs.HeaderJobDigest, jobs.Digest(subject, []byte(body)))
		m.Data = []byte(`{}`)
		if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	body := func(jobID string) string { return `{"job_id":"` + jobID + `","session_id":"sess_1"}` }

	// Failed again: a newer letter of the same job.
	failedAgain := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "again-1", body: body("again-1"), header: digest(body("again-1"))})[0]
	newer := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "again-1", body: body("again-1"), header: digest(body("again-1")), replays: 1})[0]
	// Named by its Nats-Msg-Id: its replay carried the id in its body.
	named := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "named-1", body: `{"session_id":"sess_1"}`, header: digest(`{"session_id":"sess_1"}`)})[0]
	e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "named-1", body: body("named-1"), header: digest(body("named-1")), replays: 1})
	// Succeeded since.
	succeeded := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "again-2", body: body("again-2"), header: digest(body("again-2"))})[0]
	now := func() uint64 { return uint64(time.Now().UnixNano()) } // as seed numbers the letters' jobs
	result("again-2", body("again-2"), now())
	// An older result of the same job (published again later, and failed),
	// and a newer one of another job under the same id: replayed.
	result("again-3", body("again-3"), now())
	older := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "again-3", body: body("again-3"), header: digest(body("again-3"))})[0]
	other := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "again-4", body: body("again-4"), header: digest(body("again-4"))})[0]
	result("again-4", `{"job_id":"again-4","session_id":"sess_2"}`, now())
	// A result stored after the letter, by the clock, of a run before it
	// (a slow worker's; or the results stream's leader's clock ahead of
	// the dead letters'): replayed.
	skewed := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "again-5", body: body("again-5"), header: digest(body("again-5"))})[0]
	result("again-5", body("again-5"), 1)

	reports := map[uint64]dlq.EntryReport{}
	rep, err := e.q.Replay(t.Context(), []uint64{failedAgain, named, succeeded, newer, older, other, skewed},
		dlq.WithProgress(func(r dlq.EntryReport) { reports[r.Seq] = r }))
	if err != nil {
		t.Fatal(err)
	}
	// Those whose job ran since are removed as an interrupted run's
	// duplicates are, their jobs not sent.
	ran := map[uint64]string{failedAgain: "newer dead letter", named: "newer dead letter", succeeded: "has a result"}
	if rep.Replayed != 7 || rep.Duplicates != len(ran) || rep.Skipped != 0 {
		t.Fatalf("replay: %+v; want %v only removed, the rest replayed", rep, ran)
	}
	for seq, want := range ran {
		if r := reports[seq]; !r.Duplicate || !strings.Contains(r.Reason, want) {
			t.Errorf("letter %d: %+v; want it removed without its job sent, saying %q", seq, r, want)
		}
	}
	if n := len(e.jobsMsgs(t)); n != 4 {
		t.Errorf("the jobs stream holds %d jobs, want 4", n)
	}
	if left := e.dlqSeqs(t); len(left) != 1 {
		t.Errorf("dead letters left: %v; want only the newer letter of named-1, not replayed", left)
	}
}
