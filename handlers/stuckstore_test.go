package handlers_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// unansweredStore is a progress store whose first save gets no answer
// until its context ends: a progress bucket whose writes the server
// refuses by permissions (no reply comes), or one without a leader.
type unansweredStore struct {
	memStore
	saves atomic.Int32
}

func (s *unansweredStore) Save(ctx context.Context, id string, p *handlers.BulkProgress) error {
	if s.saves.Add(1) == 1 {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.memStore.Save(ctx, id, p)
}

// TestRevokeAllDoesNotWaitOnAnUnansweredSave: the progress saved before
// the first revoke (and after a lock) is worth a recount if the job is
// cut, not the revokes themselves: a save without an answer held every
// revoke_all's first revoke for as long as the job's context allowed (no
// deadline: JetStream's default timeout, 5 s, in production; here, for
// ever). During an account takeover, that is live sessions for longer.
func TestRevokeAllDoesNotWaitOnAnUnansweredSave(t *testing.T) {
	for _, lock := range []bool{false, true} {
		srv, c := clerkFor(t)
		emu := srv.Emulator
		user := emu.CreateUser()
		emu.CreateSessions(user, 3)
		h := handlers.RevokeAll{Clerk: c, Users: c, Store: &unansweredStore{}, MaxPasses: 2, CheckpointEvery: time.Hour,
			DeadLetter: func(context.Context, string, string, error) error { return nil }}
		done := make(chan error, 1)
		go func() {
			_, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, LockUser: lock, Common: jobs.Common{JobID: "j1"}})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("lock %v: %v", lock, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("lock %v: the job still waits for a save that gets no answer", lock)
		}
		if n := len(emu.ActiveSessionIDs(user)); n != 0 {
			t.Errorf("lock %v: %d sessions still active", lock, n)
		}
	}
}
