package dlq_test

import (
	"slices"
	"testing"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestOpFilterMatchesTheOpShown: a letter's op is the one its subject
// names or, on a subject that names none (a letter written some other
// way), its Dlq-Op header; every listing shows that op. The op filter
// selected on the server by subject alone: such a letter, listed as a
// revoke, was not among the revokes (list, replay or purge --op revoke),
// and one listed as unknown was not among the unknowns either. A filter
// must select what the listing shows under it.
func TestOpFilterMatchesTheOpShown(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "normal"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "foreign", stored: "sessions.dlq.foreign.revoke"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "headerless", stored: "sessions.dlq.odd.x",
			header: map[string]string{jobs.HeaderOp: ""}},
	)
	all, err := e.q.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	shown := map[jobs.Op][]uint64{}
	for _, en := range all {
		shown[en.Op] = append(shown[en.Op], en.Seq)
	}
	if !slices.Equal(shown[jobs.OpRevoke], seqs[:2]) || !slices.Equal(shown[jobs.OpUnknown], seqs[2:]) {
		t.Fatalf("ops shown %v", shown)
	}
	for op, want := range shown {
		got, err := e.q.List(t.Context(), dlq.Filter{Ops: []jobs.Op{op}}, dlq.WithoutPayload())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dlq.Seqs(got), want) {
			t.Errorf("--op %s selects %v; the listing shows %v as %s", op, dlq.Seqs(got), want, op)
		}
	}
}
