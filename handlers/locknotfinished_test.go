package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestLockNotMadeAndRevokesUnfinished: a lock_user job whose lock Clerk
// refuses or does not confirm, and whose revokes then fail (the listing
// answered 503), failed with the listing's error alone: the last
// delivery's dead letter read "gave up after 5 deliveries: revoke_all …
// list …", the user's lock nowhere, where the README promises "user NOT
// locked" first. It now says so first, and is still retried as the
// listing's failure is (a refusal's permanence would dead-letter it with
// sessions left to revoke).
func TestLockNotMadeAndRevokesUnfinished(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
		lock         func(emu *emulator.Emulator, user string, w http.ResponseWriter, r *http.Request)
	}{
		{"refused", "user NOT locked (Clerk refused the lock, HTTP 403)", func(emu *emulator.Emulator, user string, w http.ResponseWriter, r *http.Request) {
			emu.FailUser(user, http.StatusForbidden)
			emu.ServeHTTP(w, r)
		}},
		{"unconfirmed", "user NOT locked (Clerk did not confirm the lock, HTTP 200)", func(_ *emulator.Emulator, user string, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"object":"user","id":"` + user + `","locked":false,"banned":false,"created_at":1,"updated_at":1}`))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := emulator.New()
			user := emu.CreateUser()
			emu.CreateSessions(user, 3)
			// Every request through one handler (a suffix every path has).
			c := clerkWith(t, emu, "", func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.HasSuffix(r.URL.Path, "/lock"):
					tc.lock(emu, user, w, r)
				case strings.HasSuffix(r.URL.Path, "/sessions"):
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte(`{"errors":[{"code":"service_unavailable","message":"down","long_message":"down"}]}`))
				default:
					emu.ServeHTTP(w, r)
				}
			})
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{},
				DeadLetter: func(context.Context, string, string, error) error { return nil }}
			_, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "j1"}})
			if err == nil {
				t.Fatal("the job succeeded; want it to fail: the listing answered 503")
			}
			if !strings.HasPrefix(err.Error(), tc.prefix) {
				t.Errorf("error %q does not start with %q", err, tc.prefix)
			}
			if !strings.Contains(err.Error(), "the revokes did not finish") || !strings.Contains(err.Error(), "503") {
				t.Errorf("error %q does not say the revokes did not finish, nor why (the listing's 503)", err)
			}
			if got := clerkapi.ClassOf(err); got != clerkapi.Retryable {
				t.Errorf("error is %s; want retryable, as the listing's 503 is: the revokes must be resumed", got)
			}
			var lr *handlers.LockRefusedError
			var ce *clerkapi.Error
			if !errors.As(err, &lr) || !errors.As(err, &ce) || ce.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("error %v; want a LockRefusedError unwrapping to the listing's 503", err)
			}
			if n := len(emu.ActiveSessionIDs(user)); n != 3 {
				t.Errorf("%d of 3 sessions active; the listing failed, so none can have been revoked", n)
			}
		})
	}
}
