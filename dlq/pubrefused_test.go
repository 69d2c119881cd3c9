package dlq_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayRefusedByPermissionsSaysNotStored: an operator's NATS user
// may not publish some job subjects (deploy/nats's ops user: no token job
// outside tenants). The server drops such a publish and says so apart;
// replay waited for the acknowledgement, said the job "may have been
// stored" and to find out whether it ran before replaying it, and stopped
// there: every later letter, which it could replay, not attempted, at
// each run. The job was refused, not stored: the letter is kept, said so,
// and the replay goes on.
func TestReplayRefusedByPermissionsSaysNotStored(t *testing.T) {
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["sessions.token.request"]}}`)
	admin, err := jetstream.New(testenv.ConnectAs(t, s, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topo := jobs.DefaultTopology()
	if _, err := topo.Ensure(ctx, admin); err != nil {
		t.Fatal(err)
	}
	e := &env{js: admin, topo: topo}
	seqs := e.seed(t, letter{op: jobs.OpToken, class: jobs.ClassExhausted, jobID: "tok-1"},
		letter{op: jobs.OpToken, class: jobs.ClassExhausted, jobID: "tok-2"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "rev-1"})
	ops, err := jetstream.New(testenv.ConnectAs(t, s, "worker"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := dlq.Open(ctx, ops, topo)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := q.Replay(ctx, seqs, dlq.WithTimeout(2*time.Second))
	if err != nil || rep.Replayed != 1 || rep.Skipped != 2 || len(rep.Problems) != 2 {
		t.Fatalf("replay of two letters the user may not publish, then one it may: %+v, %v; want the first two kept and said refused, the third replayed", rep, err)
	}
	for _, p := range rep.Problems {
		if r := p.Reason; !strings.Contains(r, "NOT stored") || !strings.Contains(r, "permissions violation") || strings.Contains(r, "may have been stored") {
			t.Errorf("letter %d: reason %q: want it to say the server refused the job (permissions violation), NOT stored", p.Seq, r)
		}
	}
	e.q = q
	if left := e.dlqSeqs(t); !slices.Equal(left, seqs[:2]) {
		t.Errorf("dead letters left: %v; want %v kept", left, seqs[:2])
	}
	if n := len(e.jobsMsgs(t)); n != 1 {
		t.Errorf("the jobs stream holds %d jobs, want the revoke alone", n)
	}
}
