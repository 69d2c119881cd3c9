package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAnsweredWithAnotherSessionIsNoSuccess: a proxy in front of
// Clerk (a cache keyed wrongly) answers a revoke, or the GetSession that
// checks a refused revoke, with another session, itself revoked. The job
// succeeded on it, and the session asked for stayed active. Only an answer
// about the session asked for is Clerk's word on it: any other is retried,
// as a 2xx that is not the answer asked for.
func TestRevokeAnsweredWithAnotherSessionIsNoSuccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		// refuse: the revoke is refused 400 and the GetSession that checks
		// it answers the other session; else the revoke answers it 200.
		refuse bool
	}{{"revoke answered 200", false}, {"refusal checked with GetSession", true}} {
		t.Run(tc.name, func(t *testing.T) {
			emu := emulator.New()
			ids := emu.CreateSessions(emu.CreateUser(), 2)
			target, other := ids[0], ids[1]
			if err := emu.SetSessionStatus(other, clerkapi.StatusRevoked); err != nil {
				t.Fatal(err)
			}
			answerOther := func(w http.ResponseWriter) {
				s, _ := emu.Session(other)
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(s)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.HasSuffix(r.URL.Path, "/revoke") && tc.refuse:
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_, _ = w.Write([]byte(`{"errors":[{"code":"session_not_active","message":"Session not active","long_message":"x"}],"clerk_trace_id":"t1"}`))
				case strings.HasSuffix(r.URL.Path, "/revoke"),
					tc.refuse && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/sessions/"+target):
					answerOther(w)
				default:
					emu.ServeHTTP(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			c, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(srv.URL+"/v1"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := handlers.Sessions{Clerk: c}.Handle(context.Background(), &jobs.RevokeArgs{SessionID: target})
			if err == nil {
				s, _ := emu.Session(target)
				t.Fatalf("revoke answered with another session: success %+v, while %s is %s", out, target, s.Status)
			}
			if clerkapi.ClassOf(err) != clerkapi.Retryable {
				t.Errorf("error %v is %s; want retryable", err, clerkapi.ClassOf(err))
			}
		})
	}
}
