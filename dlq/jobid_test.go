package dlq_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayKeepsAHeaderJobID: a job whose body has no job_id is named by
// its Nats-Msg-Id (the README's rule for publishers such as `nats pub`).
// Its replay carries a Nats-Msg-Id of its own (replay-<stream>-<seq>-<n>), so the
// job must not be renamed by it: the requester looks its outcome up by
// the id it chose, and the dead letter that held that id is deleted.
func TestReplayKeepsAHeaderJobID(t *testing.T) {
	kit := clerkjobstest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m := nats.NewMsg(kit.Topology.Subjects.Job(jobs.OpGet))
	m.Data = []byte(`{"session_id":"sess_missing"}`)
	m.Header.Set(jetstream.MsgIDHeader, "offboard-42")
	if _, err := kit.JetStream.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	q, err := dlq.Open(ctx, kit.JetStream, kit.Topology)
	if err != nil {
		t.Fatal(err)
	}
	letter := func(not uint64) dlq.Entry {
		var found dlq.Entry
		testenv.Eventually(t, 20*time.Second, "a dead letter", func() bool {
			entries, err := q.List(ctx, dlq.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Seq != not {
					found = e
					return true
				}
			}
			return false
		})
		return found
	}
	first := letter(0)
	if first.DeadLetter.JobID != "offboard-42" {
		t.Fatalf("dead letter of job %q, want offboard-42", first.DeadLetter.JobID)
	}
	if rep, err := q.Replay(ctx, []uint64{first.Seq}); err != nil || rep.Replayed != 1 {
		t.Fatalf("replay: %+v, %v", rep, err)
	}
	// The session is still missing: the replayed job fails again.
	again := letter(first.Seq)
	if again.DeadLetter.JobID != "offboard-42" {
		t.Errorf("the replayed job failed as job %q: the requester's id offboard-42 is gone", again.DeadLetter.JobID)
	}
	entries, err := q.List(ctx, dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if seqs := dlq.Seqs(entries); slices.Contains(seqs, first.Seq) || len(seqs) != 1 {
		t.Errorf("dead letters %v after the replay; want only the replayed job's, %d deleted", seqs, first.Seq)
	}
	if _, err := jobs.Decode(jobs.OpGet, again.Payload); err != nil {
		t.Errorf("the replayed payload is not a valid job: %v", err)
	}
}
