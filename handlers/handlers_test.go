package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

func clerkFor(t *testing.T, opts ...emulator.Option) (*emulator.Server, *clerkapi.Client) {
	t.Helper()
	srv := emulator.NewServer(opts...)
	t.Cleanup(srv.Close)
	c, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

// clerkWith is a client of emu through a server that answers the requests
// whose path ends in suffix with answer, in Clerk's place: a Clerk, or a
// proxy, that answers one operation wrongly.
func clerkWith(t *testing.T, emu *emulator.Emulator, suffix string, answer http.HandlerFunc) *clerkapi.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, suffix) {
			answer(w, r)
			return
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(srv.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSessionsHandler(t *testing.T) {
	srv, c := clerkFor(t, emulator.WithTemplate("hasura", nil, time.Minute))
	emu := srv.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 3)
	h := handlers.Sessions{Clerk: c}
	cases := []struct {
		name       string
		args       jobs.Args
		wantSecret bool
		op         string // the Clerk operation the job must call
		ttl        int64  // a token's lifetime in seconds (exp - iat), 0 for any
	}{
		{"list", &jobs.ListArgs{UserID: user}, false, emulator.OpGetSessionList, 0},
		{"create", &jobs.CreateArgs{UserID: user}, false, emulator.OpCreateSession, 0},
		{"get", &jobs.GetArgs{SessionID: ids[0]}, false, emulator.OpGetSession, 0},
		{"revoke", &jobs.RevokeArgs{SessionID: ids[0]}, false, emulator.OpRevokeSession, 0},
		// Lifetimes other than the defaults (60 s, and the template's 1 min):
		// a job whose expires_in_seconds was dropped gets those.
		{"token", &jobs.TokenArgs{SessionID: ids[1], ExpiresInSeconds: 90}, true, emulator.OpCreateSessionToken, 90},
		{"template token", &jobs.TokenArgs{SessionID: ids[1], TemplateName: "hasura", ExpiresInSeconds: 90}, true, emulator.OpCreateSessionTokenFromTemplate, 90},
		{"refresh", &jobs.RefreshArgs{SessionID: ids[2], ExpiredToken: emu.SessionToken(ids[2], -time.Minute), RefreshToken: emu.RefreshToken(ids[2]), RequestOrigin: "https://a.example"}, true, emulator.OpRefreshSession, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emu.ResetCalls()
			out, err := h.Handle(context.Background(), tc.args)
			if err != nil {
				t.Fatal(err)
			}
			var ops []string
			for _, call := range emu.Calls() {
				ops = append(ops, call.Op)
			}
			if len(ops) != 1 || ops[0] != tc.op {
				t.Errorf("Clerk calls %v; want one %s", ops, tc.op)
			}
			if tc.ttl != 0 {
				if got := tokenLifetime(t, out.Secret); got != tc.ttl {
					t.Errorf("token lifetime %d s; want the job's expires_in_seconds, %d", got, tc.ttl)
				}
			}
			if tc.wantSecret != (out.Secret != nil) || tc.wantSecret == (out.Result != nil) {
				t.Errorf("secret set %v, result set %v: a secret answer goes only to Secret, any other only to Result", out.Secret != nil, out.Result != nil)
			}
			for _, v := range []any{out.Result, out.Secret} {
				if _, err := json.Marshal(v); err != nil {
					t.Errorf("answer does not encode: %v", err)
				}
			}
		})
	}
	if _, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{UserID: user}); !errors.Is(err, handlers.ErrUnsupported) {
		t.Errorf("revoke_all on the single-call handler: %v, want ErrUnsupported", err)
	}
}

// Clerk does not document what revoking a revoked session answers; if it
// refuses, the session's status decides, and a session already ended is a
// success.
func TestRevokeOfAnEndedSessionSucceeds(t *testing.T) {
	srv, c := clerkFor(t, emulator.WithStrictRevoke())
	id := srv.Emulator.CreateSessions(srv.Emulator.CreateUser(), 1)[0]
	h := handlers.Sessions{Clerk: c}
	if _, err := h.Handle(context.Background(), &jobs.RevokeArgs{SessionID: id}); err != nil {
		t.Fatal(err)
	}
	out, err := h.Handle(context.Background(), &jobs.RevokeArgs{SessionID: id})
	if err != nil || !out.AlreadyRevoked {
		t.Errorf("second revoke: %v, already revoked %v; want success, already revoked", err, out.AlreadyRevoked)
	}
	// An unknown session is not "already revoked": the job is wrong.
	_, err = h.Handle(context.Background(), &jobs.RevokeArgs{SessionID: "sess_nosuch"})
	if clerkapi.ClassOf(err) != clerkapi.Permanent {
		t.Errorf("revoke of an unknown session: %v, want a permanent error", err)
	}
}

// tokenLifetime is exp - iat of the JWT in a token answer. The signature
// is not checked: the emulator signed it, and only its times matter here.
func tokenLifetime(t *testing.T, secret any) int64 {
	t.Helper()
	b, err := json.Marshal(secret)
	if err != nil {
		t.Fatal(err)
	}
	var tok clerkapi.Token
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.JWT, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Iat, Exp int64 }
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Exp - claims.Iat
}
