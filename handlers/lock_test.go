package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
// session can be created meanwhile; then the lock failed retryably before
// any revoke, on every delivery, and the job ended dead-lettered as
// exhausted with every session of a taken-over account active. Such a lock
// is no lock, and does not stop the revokes: every session is revoked, and
// the job fails retryably (the lock may take on the next delivery) with a
// LockRefusedError that starts with the user NOT locked and the counts. A
// delivery whose lock takes resumes and ends locked.
func TestLockAnsweredUnlockedIsNoLock(t *testing.T) {
	emu := emulator.New()
	other := emu.CreateUser()
	for _, tt := range []struct {
		name, locked, says string
		another            bool
	}{
		{"the user, not locked", `false,"lockout_expires_in_seconds":null`, "a user who is not locked", false},
		{"another user, locked", `true,"lockout_expires_in_seconds":3600`, "another user than the one to lock", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			user := emu.CreateUser()
			ids := emu.CreateSessions(user, 2)
			answered := user
			if tt.another {
				answered = other
			}
			var unconfirmed atomic.Bool
			unconfirmed.Store(true)
			c := clerkWith(t, emu, "/lock", func(w http.ResponseWriter, r *http.Request) {
				if !unconfirmed.Load() {
					emu.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"object":"user","id":"` + answered + `","locked":` + tt.locked + `,"banned":false,"created_at":1,"updated_at":1}`))
			})
			store := &memStore{}
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: store,
				DeadLetter: func(context.Context, string, string, error) error { return nil }}
			args := &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "j1"}}
			out, err := h.Handle(context.Background(), args)
			if err == nil {
				t.Fatalf("lock answered with %s: the job succeeded with %+v; want it to fail: the user is not locked", tt.name, out.Result)
			}
			if clerkapi.ClassOf(err) != clerkapi.Retryable {
				t.Errorf("error %v is %s; want retryable (the lock may take when sent again)", err, clerkapi.ClassOf(err))
			}
			for _, id := range ids {
				if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
					t.Errorf("session %s is %s; want it revoked: a lock Clerk does not confirm must not stop the revokes", id, s.Status)
				}
			}
			var lr *handlers.LockRefusedError
			if !errors.As(err, &lr) || lr.Summary.Locked || lr.Summary.Revoked != 2 {
				t.Fatalf("error %v; want a LockRefusedError, not locked, revoked 2", err)
			}
			msg := err.Error()
			if prefix := "user NOT locked (Clerk did not confirm the lock, HTTP 200): revoked 2 sessions"; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, want := range []string{tt.says, "sends the lock again", "without --lock"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if p, _ := store.Load(context.Background(), args.JobID); p == nil || p.Locked || len(p.Done) != 2 {
				t.Errorf("progress saved %+v; want the 2 revokes, not locked (the next delivery resumes from it)", p)
			}

			// The next delivery, whose lock takes: it resumes, locks, and
			// succeeds; nothing is revoked twice.
			unconfirmed.Store(false)
			out, err = h.Handle(context.Background(), args)
			if err != nil {
				t.Fatalf("run again once the lock takes: %v", err)
			}
			sum, _ := out.Result.(jobs.RevokeAllSummary)
			if !sum.Locked || sum.Revoked != 2 || !sum.Resumed {
				t.Errorf("summary %+v; want locked, revoked 2, resumed", sum)
			}
			for _, id := range ids {
				if n := emu.RevokeCount(id); n != 1 {
					t.Errorf("session %s revoked %d times; want once", id, n)
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
