package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDuplicateOfAJobWhoseRecordCannotBeReadIsNotGone: a job that ran
// and left the jobs stream is Gone only when no record of it is found.
// One that could not be read (a stream this user may not read, a
// cluster's election) is not that: CheckDuplicate said Gone, "this job was
// not queued: publish it again with another job id", and the client gave
// up at once on a job that may have run as asked, its record waiting.
func TestDuplicateOfAJobWhoseRecordCannotBeReadIsNotGone(t *testing.T) {
	top := jobs.DefaultTopology()
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["$JS.API.DIRECT.GET.`+top.ResultsStream+`.>"]}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := jetstream.New(testenv.ConnectAs(t, s, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := top.Ensure(ctx, admin); err != nil {
		t.Fatal(err)
	}
	a := &jobs.RevokeArgs{Common: jobs.Common{JobID: "ran-1"}, SessionID: "sess_1"}
	m, err := jobs.NewMessage(top.Subjects, a)
	if err != nil {
		t.Fatal(err)
	}
	first, err := admin.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	// It ran: its result is stored, and it left the jobs stream.
	stream, err := admin.Stream(ctx, top.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	rec := nats.NewMsg(top.Subjects.Result(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "ran-1", Gen: jobs.Generation(stream.CachedInfo().Created), Seq: first.Sequence}))
	rec.Header.Set(jobs.HeaderJobDigest, jobs.Digest(m.Subject, m.Data))
	rec.Data = []byte(`{}`)
	if _, err := admin.PublishMsg(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, first.Sequence); err != nil {
		t.Fatal(err)
	}

	// The same job again, from a user who may not read the results.
	js, err := jetstream.New(testenv.ConnectAs(t, s, "worker"))
	if err != nil {
		t.Fatal(err)
	}
	m, err = jobs.NewMessage(top.Subjects, a)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, m)
	if err != nil || !ack.Duplicate {
		t.Fatalf("published again: %v (ack %+v); want a duplicate", err, ack)
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	defer ccancel()
	err = jobs.CheckDuplicate(cctx, js, top.Subjects, m, ack)
	var de *jobs.DuplicateError
	if !errors.Is(err, jobs.ErrDuplicateUnverified) || !errors.As(err, &de) || de.Gone {
		t.Fatalf("CheckDuplicate = %v (%+v); want ErrDuplicateUnverified, not Gone: its record could not be read", err, de)
	}
}
