package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestLockAnswersAsDocumented: which answers to a lock_user job's lock are
// a refusal for good, after which every session is revoked and the job
// dead-lettered as permanent (a LockRefusedError), and which stop the job
// before any revoke. README, docs/publish.md and the schema listed 409
// among the refusals, while Clerk's 409 to a lock (resource_locked, the
// user being changed meanwhile; what the emulator answers) is retryable:
// retried, nothing revoked. The docs now name it retried; a 409 with
// another code is refused for good, as any other 4xx that is the job's.
// A 200 whose user is not locked is no lock, and does not stop the revokes
// either, but fails retryably (the lock is sent again); the docs said it
// was retried before any revoke. A 403 may be the key's (it may not lock
// users), which the docs now say too.
func TestLockAnswersAsDocumented(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		code    string // "" for the emulator's own answer to status
		class   clerkapi.Class
		refused bool
	}{
		{"403", 403, "", clerkapi.Permanent, true},
		{"400", 400, "", clerkapi.Permanent, true},
		{"422", 422, "", clerkapi.Permanent, true},
		{"409 resource_locked", 409, "", clerkapi.Retryable, false},
		{"200 not locked", 200, "", clerkapi.Retryable, true},
		{"409 other", 409, "conflict", clerkapi.Permanent, true},
		{"404", 404, "", clerkapi.Permanent, false},
		{"401", 401, "", clerkapi.Systemic, false},
		{"429", 429, "", clerkapi.Retryable, false},
		{"503", 503, "", clerkapi.Retryable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := clerkFor(t)
			emu := srv.Emulator
			user := emu.CreateUser()
			emu.CreateSessions(user, 4)
			switch {
			case tc.status == http.StatusOK:
				c = clerkWith(t, emu, "/lock", func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"object":"user","id":"` + user + `","locked":false,"banned":false,"created_at":1,"updated_at":1}`))
				})
			case tc.code == "":
				emu.FailUser(user, tc.status)
			default:
				c = clerkWith(t, emu, "/lock", func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte(`{"errors":[{"code":"` + tc.code + `","message":"refused"}]}`))
				})
			}
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{},
				DeadLetter: func(context.Context, string, string, error) error { return nil }}
			_, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "j"}})
			var lr *handlers.LockRefusedError
			active := len(emu.ActiveSessionIDs(user))
			if got := clerkapi.ClassOf(err); got != tc.class || errors.As(err, &lr) != tc.refused {
				t.Errorf("lock answered %s: error %v is %s, refused for good %t; want %s, %t", tc.name, err, got, errors.As(err, &lr), tc.class, tc.refused)
			}
			if want := map[bool]int{true: 0, false: 4}[tc.refused]; active != want {
				t.Errorf("lock answered %s: %d of 4 sessions active; want %d", tc.name, active, want)
			}
		})
	}

	// What the docs say of it: a 409 resource_locked is retried.
	for _, file := range []string{"../README.md", "../docs/publish.md", "../schemas/revoke_all.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc := strings.Join(strings.Fields(string(b)), " ")
		if !strings.Contains(doc, "a 409 `resource_locked`") && !strings.Contains(doc, "a 409 resource_locked") {
			t.Errorf("%s does not say that a lock answered 409 resource_locked is retried", file)
		}
		// What they say of the answers the handler now revokes after: a
		// 403 that is the key's, a 200 that is no lock.
		for _, want := range []string{"may not lock users", "NOT locked", "exhausted"} {
			if !strings.Contains(doc, want) {
				t.Errorf("%s does not say %q of a lock that is refused or not confirmed", file, want)
			}
		}
		for _, wrong := range []string{"or is another user: retried", "a 200 whose user is not `locked` or is another user: retried"} {
			if strings.Contains(doc, wrong) {
				t.Errorf("%s says that a lock answered 200 without the user locked is retried before any revoke (%q)", file, wrong)
			}
		}
		for _, wrong := range []string{"400, 409 or 422", "400, 409, 422", "a 400, 409 or 422"} {
			if strings.Contains(doc, wrong) {
				t.Errorf("%s lists 409 among the refusals for good (%q): a 409 resource_locked is retried", file, wrong)
			}
		}
	}
}
