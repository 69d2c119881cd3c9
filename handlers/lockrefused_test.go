package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestLockRefusedStillRevokes: Clerk refuses a lock_user job's lock for
// good (403: the instance does not allow locking; 422: the request's
// fault). The job stopped there, dead-lettered, having revoked nothing: an
// account takeover for which the operator asked "lock and revoke" was left
// with every session active. The sessions are revoked all the same, and the
// job still fails (the lock asked for was not made), with an error that
// says how many were revoked, that the user is not locked, Clerk's refusal
// and what to do. A lock that may take later (5xx) or a user that does not
// exist (404) stops the job before any revoke, as before.
func TestLockRefusedStillRevokes(t *testing.T) {
	// What to do depends on the refusal: a 403 is the instance's settings,
	// which the operator can change; a 422 is the request's, which Clerk's
	// message explains. (The 403's advice was given for a 422 too.)
	allowLockout := []string{"allow user lockout", "restrictions settings", "replay this letter"}
	for _, tc := range []struct {
		status    int
		class     clerkapi.Class
		revokes   bool
		advice    []string
		notAdvice []string
	}{
		{403, clerkapi.Permanent, true, allowLockout, nil},
		{422, clerkapi.Permanent, true, []string{"Clerk's message says why"}, allowLockout},
		{404, clerkapi.Permanent, false, nil, nil},
		{503, clerkapi.Retryable, false, nil, nil},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv, c := clerkFor(t)
			emu := srv.Emulator
			user := emu.CreateUser()
			emu.CreateSessions(user, 4)
			emu.FailUser(user, tc.status)
			var mu sync.Mutex
			var reports []jobs.Progress
			store := &memStore{}
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: store,
				DeadLetter: func(context.Context, string, string, error) error { return nil },
				Report: func(_ context.Context, _ string, p jobs.Progress) {
					mu.Lock()
					reports = append(reports, p)
					mu.Unlock()
				}}
			args := &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "j1"}}
			out, err := h.Handle(context.Background(), args)
			if err == nil {
				t.Fatalf("lock answered %d: the job succeeded with %+v; want it to fail: the user is not locked", tc.status, out.Result)
			}
			if got := clerkapi.ClassOf(err); got != tc.class {
				t.Errorf("error %q is %s; want %s", err, got, tc.class)
			}
			var apiErr *clerkapi.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status {
				t.Errorf("error %q does not carry Clerk's %d (its dead letter would lose the status and code)", err, tc.status)
			}
			active := len(emu.ActiveSessionIDs(user))
			if !tc.revokes {
				if active != 4 {
					t.Errorf("%d of 4 sessions active; want all: nothing is revoked before a lock that may take (5xx), nor for a user that does not exist", active)
				}
				return
			}
			if active != 0 {
				t.Errorf("%d sessions still active after a refused lock; want every session revoked", active)
			}
			msg := err.Error()
			// First what was not done: the lists cut the message short
			// (dlq list at 60, the console at 160), and it began with
			// "revoke_all j1: revoked 4 sessions", which reads as a success.
			if prefix := "user NOT locked (Clerk refused the lock, HTTP " + strconv.Itoa(tc.status) + "): revoked 4 sessions"; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, want := range append([]string{"revoked 4 sessions", "NOT locked", "HTTP " + strconv.Itoa(tc.status), apiErr.Code(), "without --lock"}, tc.advice...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			for _, wrong := range tc.notAdvice {
				if strings.Contains(msg, wrong) {
					t.Errorf("error %q says %q: not what to do for a %d", msg, wrong, tc.status)
				}
			}
			mu.Lock()
			seen := reports
			mu.Unlock()
			if len(seen) == 0 {
				t.Fatal("no progress reported")
			}
			for _, p := range seen {
				if p.Progress.Locked {
					t.Errorf("progress %+v says locked; the lock was refused", p.Progress)
				}
			}
			if last := seen[len(seen)-1]; last.Progress.Revoked != 4 {
				t.Errorf("last progress %+v; want revoked 4", last.Progress)
			}

			// A redelivery once locking is allowed: the progress resumes,
			// nothing is revoked twice, and the lock is made this time.
			emu.FailUser(user, 0)
			out, err = h.Handle(context.Background(), args)
			if err != nil {
				t.Fatalf("run again once locking is allowed: %v", err)
			}
			sum, _ := out.Result.(jobs.RevokeAllSummary)
			if !sum.Locked || sum.Revoked != 4 || !sum.Resumed {
				t.Errorf("summary %+v; want locked, revoked 4, resumed", sum)
			}
		})
	}
}

// TestLockRefusalFitsTheDeadLetterHeader: the dead letter's Dlq-Error
// header keeps the error's first 1024 bytes (text.Line). The error quoted
// Clerk's whole refusal, message included, before the advice: a long Clerk
// message pushed what to do out of the header. It now gives Clerk's
// status, code and trace id; the message stays reachable through the
// error (the worker stores it apart, as Dlq-Clerk-Message), and a key
// quoted in it is in no text of the error.
func TestLockRefusalFitsTheDeadLetterHeader(t *testing.T) {
	srv, _ := clerkFor(t)
	emu := srv.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 3)
	key := "sk_" + "live_" + strings.Repeat("Ab3", 15)
	msg := "lockout is disabled for this instance; request was Authorization: Bearer " + key + " " + strings.Repeat("x", 900)
	c := clerkWith(t, emu, "/lock", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":[{"code":"authorization_invalid","message":"` + msg + `"}],"clerk_trace_id":"t1"}`))
	})
	h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{},
		DeadLetter: func(context.Context, string, string, error) error { return nil }}
	_, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "j"}})
	var lr *handlers.LockRefusedError
	if !errors.As(err, &lr) {
		t.Fatalf("error %v; want a LockRefusedError", err)
	}
	full := err.Error()
	if strings.Contains(full, key) || strings.Contains(full, "Ab3Ab3Ab3") {
		t.Errorf("the error quotes the key Clerk's message held: %q", full)
	}
	hdr := text.Line(full, 1024)
	for _, want := range []string{"revoked 3 sessions", "NOT locked", "HTTP 403 authorization_invalid", "trace t1", "allow user lockout", "without --lock"} {
		if !strings.Contains(hdr, want) {
			t.Errorf("the Dlq-Error header (%d of the error's %d bytes) lost %q: %q", len(hdr), len(full), want, hdr)
		}
	}
	var apiErr *clerkapi.Error
	if !errors.As(err, &apiErr) || !strings.HasPrefix(apiErr.Message(), "lockout is disabled for this instance") {
		t.Errorf("Clerk's message is not reachable through the error (for Dlq-Clerk-Message)")
	}
}
