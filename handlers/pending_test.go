package handlers_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeRefusedForAPendingSessionFails: a Clerk that refuses to revoke
// a pending session (signed in, a task left to do) with a 4xx, while
// GetSession says it is still pending. The refusal was taken for "already
// revoked" because the session was not active, and the job succeeded
// while the session stayed, to become active once its task is done.
func TestRevokeRefusedForAPendingSessionFails(t *testing.T) {
	emu := emulator.New()
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	if err := emu.SetSessionStatus(id, clerkapi.StatusPending); err != nil {
		t.Fatal(err)
	}
	c := clerkWith(t, emu, "/revoke", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"errors":[{"code":"session_not_active","message":"not active"}],"clerk_trace_id":"t"}`))
	})
	out, err := handlers.Sessions{Clerk: c}.Handle(context.Background(), &jobs.RevokeArgs{SessionID: id})
	if err == nil || out.AlreadyRevoked {
		t.Fatalf("revoke refused for a pending session: error %v, already revoked %v; want the refusal", err, out.AlreadyRevoked)
	}
	if s, _ := emu.Session(id); s.Status != clerkapi.StatusPending {
		t.Fatalf("session is %s; the test expects it still pending", s.Status)
	}
}
