package clerkjobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestResultWinsOverADeadLetterBesideIt: two deliveries of a job may store
// its result and a dead letter at once; the worker then deletes the dead
// letter (the README: "a result wins over a dead letter"), within a sweep.
// Until then the client read whichever record was stored last, and Wait,
// WaitSubmitted and a Request's look at the records reported the job
// failed (a *JobError) although it had succeeded. Now a job's result wins
// over a dead letter of the same job, whatever their order.
func TestResultWinsOverADeadLetterBesideIt(t *testing.T) {
	env, ctx, s := racedRecords(t)
	for name, wait := range map[string]func() (*clerkjobs.Result, error){
		"Wait":          func() (*clerkjobs.Result, error) { return env.Client.Wait(ctx, s.JobID) },
		"WaitSubmitted": func() (*clerkjobs.Result, error) { return env.Client.WaitSubmitted(ctx, s) },
	} {
		r, err := wait()
		var failed *clerkjobs.JobError
		switch {
		case errors.As(err, &failed):
			t.Errorf("%s = %v; want the job's result: it succeeded", name, err)
		case err != nil || r.Outcome != jobs.Succeeded:
			t.Errorf("%s = %+v, %v; want the job's result", name, r, err)
		}
	}
}

// racedRecords submits a revoke and stores, as two deliveries would, its
// result and then a dead letter beside it.
func racedRecords(t *testing.T) (*clerkjobstest.Env, context.Context, clerkjobs.Submitted) {
	t.Helper()
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	ctx := testContext(t, 30*time.Second)
	s, err := env.Client.Submit(ctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{JobID: "raced-1"}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stream.GetMsg(ctx, s.Seq)
	if err != nil {
		t.Fatal(err)
	}
	digest := jobs.Digest(stored.Subject, stored.Data)
	key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: s.JobID, Gen: jobs.Generation(stream.CachedInfo().Created), Seq: s.Seq}

	// The first delivery stores the result...
	rec, err := json.Marshal(jobs.Result{JobID: s.JobID, Op: jobs.OpRevoke, Outcome: jobs.Succeeded, StreamSeq: s.Seq, Attempts: 1, Deliveries: 1, FinishedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(env.Topology.Subjects.Result(key))
	m.Header.Set(jobs.HeaderJobDigest, digest)
	m.Data = rec
	if _, err := env.JetStream.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	// ...and a second one, which did not see it, a dead letter after it.
	now := time.Now()
	d := jobs.DeadLetter{Subject: stored.Subject, StreamSeq: s.Seq, JobID: s.JobID, Op: jobs.OpRevoke,
		Error:    jobs.ErrorInfo{Class: jobs.ClassExhausted, Message: "gave up after 3 deliveries"},
		Attempts: 3, Deliveries: 3, FirstFailure: now, LastFailure: now, Worker: "w2"}
	m = nats.NewMsg(env.Topology.Subjects.DeadLetter(key))
	m.Header = d.Header()
	m.Header.Set(jobs.HeaderJobDigest, digest)
	m.Data = stored.Data
	if _, err := env.JetStream.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	return env, ctx, s
}

// TestDeadLetterIsNotTheOutcomeWhileResultsAreUnread: a job's result and a
// dead letter beside it are both stored (the worker deletes the letter
// within a sweep), and the results stream cannot be read (it answers no
// direct get; a user not allowed to read it). The client took the dead
// letter for the job's outcome, a result it could not see would have won,
// and Wait reported the job failed although it had succeeded. Now it
// waits on, and says why.
func TestDeadLetterIsNotTheOutcomeWhileResultsAreUnread(t *testing.T) {
	env, ctx, s := racedRecords(t)
	cfg := env.Topology.ResultsStreamConfig()
	cfg.AllowDirect = false
	if _, err := env.JetStream.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := env.Client.Wait(wctx, s.JobID)
	var failed *clerkjobs.JobError
	if errors.As(err, &failed) || err == nil {
		t.Fatalf("Wait = %+v, %v; want no outcome while the results cannot be read", r, err)
	}
	if !strings.Contains(err.Error(), env.Topology.ResultsStream) {
		t.Errorf("Wait's error %q does not name the results stream it could not read", err)
	}
}
