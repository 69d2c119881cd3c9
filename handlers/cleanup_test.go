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

// TestRevokeAllSurvivesACleanUpBetweenPages: Clerk cleans up old inactive
// sessions on its own, and a cleaned-up session leaves the listing. When
// that happens between two pages of a revoke_all's listing, every session
// after it moves up one place, and the first one of the next page lands on
// the page already read: a job that ended on that listing would leave it
// active and report nothing remaining.
func TestRevokeAllSurvivesACleanUpBetweenPages(t *testing.T) {
	tests := []struct {
		name string
		// live reports whether the session at index i of the user's 600
		// (newest first) stays active; the others end before the job.
		live       func(i int) bool
		wantPasses int
	}{
		// The first listing misses one and revokes the rest: the next
		// pass's listing finds it.
		{"many active", func(i int) bool { return i != 10 }, 2},
		// The first listing finds nothing to revoke: only the drop in
		// total_count between its pages says that it missed one.
		{"the only active one moves onto the page read", func(i int) bool { return i == 500 }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := emulator.New()
			user := emu.CreateUser()
			emu.CreateSessions(user, 600) // two pages of 500
			newest := emu.UserSessionIDs(user)
			want := 0
			for i, id := range newest {
				if tc.live(i) {
					want++
				} else if err := emu.SetSessionStatus(id, clerkapi.StatusEnded); err != nil {
					t.Fatal(err)
				}
			}
			cleaned := newest[10] // ended, on the first page
			var once sync.Once
			c := clerkWith(t, emu, "/sessions", func(w http.ResponseWriter, r *http.Request) {
				emu.ServeHTTP(w, r)
				if r.Method == http.MethodGet && r.URL.Query().Get("offset") == "" {
					once.Do(func() {
						if err := emu.CleanUpSession(cleaned); err != nil {
							t.Error(err)
						}
					})
				}
			})
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{}, MaxPasses: 3,
				DeadLetter: func(context.Context, string, string, error) error { return nil }}
			out, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, Common: jobs.Common{JobID: "j1"}})
			if err != nil {
				t.Fatal(err)
			}
			var active []string
			for _, id := range newest {
				if s, _ := emu.Session(id); s.Status == clerkapi.StatusActive {
					active = append(active, id)
				}
			}
			if len(active) > 0 {
				t.Errorf("sessions still active after revoke_all: %v", active)
			}
			sum := out.Result.(jobs.RevokeAllSummary)
			if sum.Revoked != want || sum.Remaining != 0 || sum.Failed != 0 {
				t.Errorf("summary %+v; want %d revoked, none remaining or failed", sum, want)
			}
			if sum.Passes != tc.wantPasses {
				t.Errorf("%d passes, want %d: the clean-up no longer shifts the pages as this test means it to", sum.Passes, tc.wantPasses)
			}
		})
	}
}
