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
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
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

// TestLockRefusalAdviceFitsTheCode: every 403 to the lock was advised as
// the instance's lockout settings ("allow user lockout"), though Clerk's
// 403 authorization_invalid says that the request is not authorised: a key
// of another instance, or one without the permission to lock users. The
// advice now follows the code: for authorization_invalid, the key first;
// as the spec gives that one 403 for the lock (no code of its own for an
// instance that does not allow lockout), the lockout settings come after,
// as the other cause; a 403 with another code is the lockout settings
// alone; another refusal is the request's, which Clerk's message explains.
// Whatever the code, every session is revoked (the revokes use other
// endpoints, which the key may be allowed) and the job fails as permanent.
func TestLockRefusalAdviceFitsTheCode(t *testing.T) {
	key := []string{"check the worker's secret key", "key of this user's Clerk instance", "permissions allow locking users"}
	lockout := []string{"allow user lockout", "restrictions settings"}
	request := []string{"Clerk's message says why", "would be refused again"}
	for _, tc := range []struct {
		name   string
		status int
		code   string
		// want, in this order.
		want, notWant []string
	}{
		{"403 authorization_invalid", 403, "authorization_invalid", append(append([]string{}, key...), lockout...), request},
		{"403 another code", 403, "user_lockout_disabled", lockout, append(append([]string{}, key...), request...)},
		{"403 without a code", 403, "", lockout, append(append([]string{}, key...), request...)},
		{"400 malformed_request_parameters", 400, "malformed_request_parameters", request, append(append([]string{}, key...), lockout...)},
		{"409 conflict", 409, "conflict", request, append(append([]string{}, key...), lockout...)},
		{"422 form_param_value_invalid", 422, "form_param_value_invalid", request, append(append([]string{}, key...), lockout...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := clerkFor(t)
			emu := srv.Emulator
			user := emu.CreateUser()
			emu.CreateSessions(user, 3)
			c := clerkWith(t, emu, "/lock", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"errors":[{"code":"` + tc.code + `","message":"refused"}],"clerk_trace_id":"t1"}`))
			})
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{},
				DeadLetter: func(context.Context, string, string, error) error { return nil }}
			_, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "j"}})
			var lr *handlers.LockRefusedError
			if !errors.As(err, &lr) || clerkapi.ClassOf(err) != clerkapi.Permanent {
				t.Fatalf("error %v (%s); want a permanent LockRefusedError", err, clerkapi.ClassOf(err))
			}
			if n := len(emu.ActiveSessionIDs(user)); n != 0 {
				t.Errorf("%d of 3 sessions active; want every session revoked whatever the refusal's code", n)
			}
			msg := err.Error()
			if prefix := "user NOT locked (Clerk refused the lock, HTTP " + strconv.Itoa(tc.status) + "): revoked 3 sessions"; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			at := 0
			for _, want := range append(tc.want, "without --lock") {
				i := strings.Index(msg[at:], want)
				if i < 0 {
					t.Errorf("error %q does not say %q (after what comes before it)", msg, want)
					continue
				}
				at += i
			}
			for _, wrong := range tc.notWant {
				if strings.Contains(msg, wrong) {
					t.Errorf("error %q says %q: not what to do for a %s", msg, wrong, tc.name)
				}
			}
			if hdr := text.Line(msg, 1024); !strings.Contains(hdr, "without --lock") {
				t.Errorf("the advice does not fit the Dlq-Error header (1024 bytes of %d): %q", len(msg), hdr)
			}
		})
	}
}

// TestLockRefusalAtItsLongestFitsTheHeader: the refusal's error at its
// longest, as valid input allows (a 128-character job id and user id, a
// 64-character first code of Clerk's before authorization_invalid, a
// 64-character trace id, six-digit counts), must still keep what to do in
// the dead letter's 1024-byte Dlq-Error header. The error was 1,057 bytes long with the key's advice,
// and the header lost "without --lock".
func TestLockRefusalAtItsLongestFitsTheHeader(t *testing.T) {
	emu := emulator.New()
	user := "user_" + strings.Repeat("U", 123)
	jobID := strings.Repeat("j", jobs.MaxJobIDLen)
	code, trace := strings.Repeat("c", 64), strings.Repeat("t", 64)
	c := clerkWith(t, emu, "/lock", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"m"},{"code":"authorization_invalid","message":"m"}],"clerk_trace_id":"` + trace + `"}`))
	})
	h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{},
		DeadLetter: func(context.Context, string, string, error) error { return nil }}
	_, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: jobID}})
	var lr *handlers.LockRefusedError
	if !errors.As(err, &lr) {
		t.Fatalf("error %v; want a LockRefusedError", err)
	}
	// And counts of a user with some 100,000 sessions, some still active.
	s := &lr.Summary
	s.Revoked, s.AlreadyGone, s.Failed, s.Excepted, s.Remaining = 123456, 123456, 123456, 123456, 123456
	full := lr.Error()
	hdr := text.Line(full, 1024)
	for _, want := range []string{"NOT locked", "check the worker's secret key", "allow user lockout", "replay this letter", "without --lock"} {
		if !strings.Contains(hdr, want) {
			t.Errorf("the Dlq-Error header (1024 of the error's %d bytes) lost %q", len(full), want)
		}
	}
}
