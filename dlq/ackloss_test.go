package dlq_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayAckLostSaysTheJobMayBeStored: when the republish gets no
// acknowledgement (a timeout, a connection lost while waiting), the jobs
// stream may have stored the job all the same. The report said only "the
// dead letter is kept: fix the cause and run the replay again": an
// operator who did so after the deduplication window (fixing NATS takes
// longer than 2 minutes) ran the job twice. It must say the job may be
// stored, and until when running again is safe.
func TestReplayAckLostSaysTheJobMayBeStored(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "ackless"})
	// A stream that stores without acknowledging: the ack is lost.
	s, err := e.js.Stream(t.Context(), e.topo.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.NoAck = true
	if _, err := e.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	rep, err := e.q.Replay(t.Context(), seqs, dlq.WithTimeout(time.Second))
	if err == nil || rep.Failed != 1 {
		t.Fatalf("replay without an ack: %+v, %v", rep, err)
	}
	if n := len(e.jobsMsgs(t)); n != 1 {
		t.Fatalf("%d jobs stored; the test wants the job stored without an ack", n)
	}
	r := rep.Problems[0].Reason
	if !contains(r, "may have been stored") || !contains(r, e.topo.DedupWindow.String()) {
		t.Errorf("reason %q: want it to say the job may be stored, and to run again within %s", r, e.topo.DedupWindow)
	}
	if left := e.dlqSeqs(t); len(left) != 1 {
		t.Errorf("dead letters left %v, want it kept", left)
	}
}
