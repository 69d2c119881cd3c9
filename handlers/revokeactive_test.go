package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAnsweredActiveIsNoSuccess: Clerk (or a proxy's cached copy)
// answers the revoke 200 with the session still active. The job succeeded
// on it, reporting a revoke Clerk did not do. It is now a retryable error,
// as any 2xx that is not the answer asked for.
func TestRevokeAnsweredActiveIsNoSuccess(t *testing.T) {
	emu := emulator.New()
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	c := clerkWith(t, emu, "/revoke", func(w http.ResponseWriter, _ *http.Request) {
		s, _ := emu.Session(id)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	})
	out, err := handlers.Sessions{Clerk: c}.Handle(context.Background(), &jobs.RevokeArgs{SessionID: id})
	if err == nil {
		t.Fatalf("revoke answered with the session still active: success %+v", out)
	}
	if clerkapi.ClassOf(err) != clerkapi.Retryable {
		t.Errorf("error %v is %s; want retryable", err, clerkapi.ClassOf(err))
	}
}
