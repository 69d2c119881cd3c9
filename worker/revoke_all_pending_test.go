package worker_test

import (
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAllRevokesPendingSessions: a pending session (signed in, with
// a task such as choosing an organization left to do) becomes active once
// its task is done. Listing with status=active, which cannot select
// pending ones (the list's status filter has no "pending"), left it alive
// while the job said every session was revoked: a taken-over account kept
// its way back in.
func TestRevokeAllRevokesPendingSessions(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 5)
	for _, id := range ids[:2] {
		if err := emu.SetSessionStatus(id, clerkapi.StatusPending); err != nil {
			t.Fatal(err)
		}
	}
	ended := emu.CreateSessions(user, 1)[0]
	if err := emu.SetSessionStatus(ended, clerkapi.StatusEnded); err != nil {
		t.Fatal(err)
	}
	env.StartWorker(t, bulkWorker)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("outcome %s: %+v", r.Outcome, r.Error)
	}
	for _, id := range ids {
		if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Errorf("session %s is %s after the job", id, s.Status)
		}
	}
	if s, _ := emu.Session(ended); s.Status != clerkapi.StatusEnded || emu.RevokeCount(ended) != 0 {
		t.Errorf("an ended session was revoked: %s, %d revokes", s.Status, emu.RevokeCount(ended))
	}
	if sum.Revoked != 5 || sum.AlreadyGone != 0 || sum.Remaining != 0 {
		t.Errorf("summary %+v; want 5 revoked", sum)
	}
}
