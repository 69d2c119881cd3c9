package worker_test

import (
	"context"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestLockedRevokeAllRunsWhenProgressCannotBeSaved: a revoke_all with
// lock_user saved its progress right after the lock, and failed when the
// progress bucket refused the write (sealed by an operator here; full, or a
// value larger than it takes, alike). Every attempt locked the user again
// and revoked nothing, until the job was dead-lettered as exhausted: an
// account takeover left with every session active. A checkpoint that cannot
// be saved costs only a second lock if the job runs again, as after a crash
// before the save; the job revokes every session.
func TestLockedRevokeAllRunsWhenProgressCannotBeSaved(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 50)
	env.StartWorker(t, bulkWorker)
	ctx := context.Background()
	s, err := env.JS.Stream(ctx, "KV_"+env.Topology.ProgressBucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Sealed = true
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, LockUser: true})
	if r.Outcome != jobs.Succeeded || !sum.Locked || sum.Revoked != 50 {
		t.Fatalf("result %+v, summary %+v; want every session revoked, the user locked", r, sum)
	}
	if n := len(emu.ActiveSessionIDs(user)); n != 0 {
		t.Errorf("%d sessions of the user still active", n)
	}
	if n := emu.LockCount(user); n != 1 {
		t.Errorf("user locked %d times, want once", n)
	}
}
