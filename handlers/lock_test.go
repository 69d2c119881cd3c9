package handlers_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// memStore is a ProgressStore in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string]handlers.BulkProgress
}

func (s *memStore) Load(_ context.Context, id string) (*handlers.BulkProgress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.m[id]; ok {
		return &p, nil
	}
	return nil, nil
}

func (s *memStore) Save(_ context.Context, id string, p *handlers.BulkProgress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]handlers.BulkProgress{}
	}
	s.m[id] = *p
	return nil
}

func (s *memStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// TestLockAnsweredUnlockedIsNoLock: Clerk answers the lock 200 with a user
// who is not the job's user locked: the user, not locked (locked false: an
// instance whose lockout is off answering without refusing, or a proxy's
// stale copy), or another user, locked (a proxy's cache keyed wrongly). The
// job reported locked: true all the same, and the runbook trusts that no
// session can be created meanwhile. A lock Clerk does not confirm for this
// user fails the lock.
func TestLockAnsweredUnlockedIsNoLock(t *testing.T) {
	emu := emulator.New()
	user, other := emu.CreateUser(), emu.CreateUser()
	emu.CreateSessions(user, 2)
	for _, tt := range []struct{ name, id, locked string }{
		{"the user, not locked", user, `false,"lockout_expires_in_seconds":null`},
		{"another user, locked", other, `true,"lockout_expires_in_seconds":3600`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := clerkWith(t, emu, "/lock", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"object":"user","id":"` + tt.id + `","locked":` + tt.locked + `,"banned":false,"created_at":1,"updated_at":1}`))
			})
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{},
				DeadLetter: func(context.Context, string, string, error) error { return nil }}
			out, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "j1"}})
			if err == nil {
				t.Fatalf("lock answered with %s: the job succeeded with %+v; want the lock to fail", tt.name, out.Result)
			}
			if clerkapi.ClassOf(err) != clerkapi.Retryable {
				t.Errorf("error %v is %s; want retryable (the lock may take when sent again)", err, clerkapi.ClassOf(err))
			}
			for _, id := range emu.UserSessionIDs(user) {
				if s, _ := emu.Session(id); s.Status != clerkapi.StatusActive {
					t.Errorf("session %s is %s; want it active: nothing is revoked before the lock holds", id, s.Status)
				}
			}
		})
	}
}

// TestResumeFromProgressWithoutDone: a ProgressStore of the user's own may
// give back progress whose Done map is nil (saved as null, or built by
// hand). The run fills it in rather than panicking on its first revoke or
// checkpoint.
func TestResumeFromProgressWithoutDone(t *testing.T) {
	emu, c := clerkFor(t)
	user := emu.Emulator.CreateUser()
	emu.Emulator.CreateSessions(user, 3)
	store := &memStore{m: map[string]handlers.BulkProgress{"j1": {JobID: "j1", UserID: user}}}
	h := handlers.RevokeAll{Clerk: c, Users: c, Store: store,
		DeadLetter: func(context.Context, string, string, error) error { return nil }}
	if _, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, Common: jobs.Common{JobID: "j1"}}); err != nil {
		t.Fatalf("resume from progress without Done: %v", err)
	}
	list, err := c.ListSessions(context.Background(), clerkapi.ListParams{UserID: user, Status: clerkapi.StatusActive})
	if err != nil || len(list.Data) != 0 {
		t.Errorf("active sessions left: %v, %v; want none", list, err)
	}
}
