package dlq_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayRefusedWhenTheQueueDeniesDeletes: a dead-letter stream set to
// deny_delete (nats stream edit --deny-delete, which cannot be undone)
// keeps every letter. Replay published the job, failed to delete its
// letter, and told the operator to run it again once that is fixed: run
// again past the jobs stream's deduplication window, it sent the same job
// a second time, and every replay after that once more. Nothing is sent.
func TestReplayRefusedWhenTheQueueDeniesDeletes(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t, letter{op: jobs.OpCreate, class: jobs.ClassExhausted, jobID: "onboard-1"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "offboard-1"})
	s, err := e.js.Stream(t.Context(), e.topo.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.DenyDelete = true
	if _, err := e.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{false, true} {
		var opts []dlq.Option
		if dry {
			opts = append(opts, dlq.WithDryRun())
		}
		rep, err := e.q.Replay(t.Context(), seqs, opts...)
		if err == nil || rep.Replayed != 0 || rep.NotAttempted != 2 {
			t.Fatalf("dry run %v: replay from a queue that denies deletes: %+v, %v; want nothing attempted, and an error", dry, rep, err)
		}
		if !strings.Contains(err.Error(), "deny_delete") {
			t.Errorf("dry run %v: error %q: want it to name deny_delete", dry, err)
		}
	}
	if n := len(e.jobsMsgs(t)); n != 0 {
		t.Fatalf("the jobs stream holds %d jobs: sent, with letters that stay to be replayed again", n)
	}
	if left := e.dlqSeqs(t); !slices.Equal(left, seqs) {
		t.Fatalf("dead letters left: %v; want %v", left, seqs)
	}
}
