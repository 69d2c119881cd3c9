package clerkjobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRecordOfAnEarlierStreamIsNotThisJobs: a job's records are named by
// its id and its place in the jobs stream, the stream's generation and
// the sequence. The client looked its job's record up with any
// generation: once the jobs stream was created again (its sequences start
// at 1 again, README "another job's there means the jobs stream was
// created again"), a Request whose answer did not come took the record
// of the earlier job of the same id and sequence for its own, and
// RevokeSession reported session B revoked with session A's answer while
// no worker had run it. Now a record counts only when its Job-Digest is
// the job's.
func TestRecordOfAnEarlierStreamIsNotThisJobs(t *testing.T) {
	env := clerkjobstest.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 2)
	ctx := testContext(t, 60*time.Second)

	rev, err := env.Client.RevokeSession(ctx, ids[0], &clerkjobs.RevokeOptions{JobID: "canary"})
	if err != nil || rev.Session.ID != ids[0] {
		t.Fatalf("RevokeSession = %+v, %v", rev, err)
	}
	// The workers stop, and the jobs stream is created again (in another
	// second: another generation); its records stay.
	env.Worker.Stop(t)
	time.Sleep(1100 * time.Millisecond)
	testenv.RecreateStream(t, env.JetStream, env.Topology.JobsStream)

	// The same id for another session, at the same sequence: no worker
	// runs it, so no answer comes.
	c := newClient(t, env)
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rev, err = c.RevokeSession(rctx, ids[1], &clerkjobs.RevokeOptions{JobID: "canary"})
	if !errors.Is(err, clerkjobs.ErrNoResult) {
		t.Errorf("RevokeSession of %s = %+v, %v; want no result: no worker ran it", ids[1], rev, err)
	}
	// WaitSubmitted of the job, submitted again (the same job: a
	// duplicate of the one waiting at that sequence).
	s, err := c.Submit(ctx, &jobs.RevokeArgs{SessionID: ids[1], Common: jobs.Common{JobID: "canary"}})
	if err != nil || !s.Duplicate {
		t.Fatalf("Submit again = %+v, %v; want the harmless duplicate", s, err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	defer wcancel()
	if r, err := c.WaitSubmitted(wctx, s); !errors.Is(err, clerkjobs.ErrNoResult) {
		t.Errorf("WaitSubmitted = %+v, %v; want no result: no worker ran it", r, err)
	}
	if s, _ := emu.Session(ids[1]); s.Status == clerkapi.StatusRevoked {
		t.Fatalf("session %s was revoked: a worker ran", ids[1])
	}

}
