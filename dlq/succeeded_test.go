package dlq_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplaySkipsALetterWhoseJobSucceeded: a result wins over a dead
// letter, and the workers remove a letter beside its job's result, but
// one stored while every worker was down (or whose writer died before
// looking, until the sweep comes) stays, and the docs send operators to
// it. Replay sent it again all the same: its job, which had succeeded,
// ran a second time (a create makes a second session), under a new
// sequence where the worker finds no record to stop it.
func TestReplaySkipsALetterWhoseJobSucceeded(t *testing.T) {
	e := newEnv(t)
	body := testenv.JobBody(jobs.OpCreate, "onboard-7")
	digest := jobs.Digest(e.topo.Subjects.Job(jobs.OpCreate), []byte(body))
	key := jobs.RecordKey{Op: jobs.OpCreate, JobID: "onboard-7", Gen: "seed", Seq: 7}
	seq := e.seed(t, letter{op: jobs.OpCreate, class: jobs.ClassMaxDeliveries, jobID: "onboard-7", body: body,
		stored: e.topo.Subjects.DeadLetter(key), header: map[string]string{jobs.HeaderJobDigest: digest}})[0]
	res := nats.NewMsg(e.topo.Subjects.Result(key))
	res.Header.Set(jobs.HeaderJobDigest, digest)
	res.Data = []byte(`{"job_id":"onboard-7","op":"create","outcome":"succeeded"}`)
	if _, err := e.js.PublishMsg(t.Context(), res); err != nil {
		t.Fatal(err)
	}

	for _, dry := range []bool{true, false} {
		var opts []dlq.Option
		if dry {
			opts = append(opts, dlq.WithDryRun())
		}
		rep, err := e.q.Replay(t.Context(), []uint64{seq}, opts...)
		if err != nil || rep.Replayed != 0 || rep.Skipped != 1 {
			t.Fatalf("dry run %v: replay of a letter beside its job's result: %+v, %v; want it skipped", dry, rep, err)
		}
		if r := rep.Problems[0].Reason; !strings.Contains(r, "has a result") || !strings.Contains(r, "purge") {
			t.Errorf("dry run %v: reason %q: want it to say the job has a result, and to purge the letter", dry, r)
		}
	}
	if n := len(e.jobsMsgs(t)); n != 0 {
		t.Fatalf("the jobs stream holds %d jobs: the job that succeeded was sent again", n)
	}
	if left := e.dlqSeqs(t); !slices.Equal(left, []uint64{seq}) {
		t.Fatalf("dead letters left: %v; want %d kept", left, seq)
	}

	// Another job's result beside it (a jobs stream created again, its
	// sequences from 1) does not stop the replay.
	other := jobs.RecordKey{Op: jobs.OpCreate, JobID: "onboard-8", Gen: "seed", Seq: 8}
	body8 := testenv.JobBody(jobs.OpCreate, "onboard-8")
	seq8 := e.seed(t, letter{op: jobs.OpCreate, class: jobs.ClassExhausted, jobID: "onboard-8", body: body8,
		stored: e.topo.Subjects.DeadLetter(other),
		header: map[string]string{jobs.HeaderJobDigest: jobs.Digest(e.topo.Subjects.Job(jobs.OpCreate), []byte(body8))}})[0]
	res = nats.NewMsg(e.topo.Subjects.Result(other))
	res.Header.Set(jobs.HeaderJobDigest, "another-job")
	res.Data = []byte(`{}`)
	if _, err := e.js.PublishMsg(t.Context(), res); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.q.Replay(t.Context(), []uint64{seq8}); err != nil || rep.Replayed != 1 {
		t.Fatalf("replay of a letter beside another job's result: %+v, %v; want it replayed", rep, err)
	}
}
