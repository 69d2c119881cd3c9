package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAllReportsWhileListing: a revoke_all job reported progress only
// while it revoked, never while it read the pages of the user's sessions
// (every page before the first revoke, each a rate-limited, retried Clerk
// call): a requester waiting on progress took a long listing for a dead
// worker and gave up. Each page read is reported (here every page, as
// each takes longer than the report interval) with pages_read moving, done
// still 0, before anything is revoked; a resumed job's recount listing too.
func TestRevokeAllReportsWhileListing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		resumed bool
	}{
		{"fresh", false},
		{"resumed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := emulator.New()
			user := emu.CreateUser()
			emu.CreateSessions(user, 600) // two pages of 500
			for _, id := range emu.UserSessionIDs(user)[3:] {
				if err := emu.SetSessionStatus(id, clerkapi.StatusEnded); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			var reports []jobs.Progress
			pagesBefore, revoked := 0, false // pages served before the first revoke
			c := clerkWith(t, emu, "", func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/sessions") {
					// Longer than the report interval (its 50 ms floor):
					// every page read is reported.
					time.Sleep(60 * time.Millisecond)
				}
				mu.Lock()
				switch {
				case strings.HasSuffix(r.URL.Path, "/revoke"):
					revoked = true
				case r.Method == http.MethodGet && !revoked:
					pagesBefore++
				}
				mu.Unlock()
				emu.ServeHTTP(w, r)
			})
			store := &memStore{}
			if tc.resumed {
				store.m = map[string]handlers.BulkProgress{"j1": {JobID: "j1", UserID: user, StartedAt: time.Now().Add(-time.Minute)}}
			}
			h := handlers.RevokeAll{Clerk: c, Users: c, Store: store,
				DeadLetter: func(context.Context, string, string, error) error { return nil },
				Report: func(_ context.Context, _ string, p jobs.Progress) {
					mu.Lock()
					defer mu.Unlock()
					// A report with a total is the revoke phase's (sent as
					// it starts, maybe before its first revoke arrives).
					if !revoked && p.Total == 0 {
						reports = append(reports, p)
					}
				}}
			if _, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, Common: jobs.Common{JobID: "j1"}}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			want := 2 // the two pages of the listing
			if tc.resumed {
				want = 3 // and the one page of the recount of revoked sessions
			}
			if pagesBefore != want || len(reports) != want {
				t.Fatalf("%d pages read and %d progress reports before the first revoke; want %d of each: %+v", pagesBefore, len(reports), want, reports)
			}
			for i, p := range reports {
				if p.PagesRead != i+1 || p.Done != 0 || p.JobID != "j1" || p.Outcome != jobs.InProgress {
					t.Errorf("report %d before any revoke: %+v; want pages_read %d, done 0", i, p, i+1)
				}
			}
		})
	}
}
