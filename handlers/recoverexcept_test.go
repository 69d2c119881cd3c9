package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestResumedRunCountsAnExceptedSessionOnce: a run resumed after a crash
// counts the sessions revoked since the job started as its own (the
// revokes after its last checkpoint). An excepted session, which the job
// never revokes, signed out meanwhile, is not one of them: counted as
// revoked and as excepted, the summary said the job revoked the session
// the operator kept, and accounted for more sessions than the user has.
func TestResumedRunCountsAnExceptedSessionOnce(t *testing.T) {
	emu, c := clerkFor(t)
	user := emu.Emulator.CreateUser()
	ids := emu.Emulator.CreateSessions(user, 3)
	kept, done, left := ids[0], ids[1], ids[2]
	// The first run listed the sessions, excepted kept, revoked done and
	// crashed before its next checkpoint; then the operator signed out of
	// the kept session.
	for _, id := range []string{done, kept} {
		if err := emu.Emulator.SetSessionStatus(id, clerkapi.StatusRevoked); err != nil {
			t.Fatal(err)
		}
	}
	store := &memStore{m: map[string]handlers.BulkProgress{"j1": {
		JobID: "j1", UserID: user, StartedAt: time.Now().Add(-time.Minute).UTC(),
		Done: map[string]string{}, Excepted: map[string]bool{kept: true},
	}}}
	h := handlers.RevokeAll{Clerk: c, Users: c, Store: store,
		DeadLetter: func(context.Context, string, string, error) error { return nil }}
	out, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, ExceptSessionIDs: []string{kept}, Common: jobs.Common{JobID: "j1"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := out.Result.(jobs.RevokeAllSummary)
	if sum.Revoked != 2 || sum.Excepted != 1 || !sum.Resumed {
		t.Errorf("summary %+v; want 2 revoked (%s, %s) and 1 excepted (%s), resumed", sum, done, left, kept)
	}
}
