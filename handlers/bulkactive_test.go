package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAllAnsweredActiveIsNotGone: Clerk (or a proxy's cached copy)
// answers one session's revoke 200 with the session still active. The job
// counted it already gone (ended before the job got to it), and, as every
// later listing still found it, remaining too: a session counted twice,
// and the one that is still live among those the summary calls ended.
func TestRevokeAllAnsweredActiveIsNotGone(t *testing.T) {
	emu := emulator.New()
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 3)
	stuck := ids[1]
	c := clerkWith(t, emu, "/revoke", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, stuck) {
			emu.ServeHTTP(w, r)
			return
		}
		s, _ := emu.Session(stuck)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	})
	h := handlers.RevokeAll{Clerk: c, Users: c, Store: &memStore{}, MaxPasses: 2,
		DeadLetter: func(context.Context, string, string, error) error { return nil }}
	out, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user, Common: jobs.Common{JobID: "j1"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := out.Result.(jobs.RevokeAllSummary)
	if sum.Revoked != 2 || sum.AlreadyGone != 0 || sum.Remaining != 1 {
		t.Errorf("summary %+v; want 2 revoked and the stuck session remaining, not already gone", sum)
	}
}
