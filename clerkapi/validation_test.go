package clerkapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// badIDs are ids the client must refuse before sending anything: they
// would reach another path or query if pasted into a URL.
var badIDs = []string{
	"",
	"../x",
	"sess_1/revoke",
	"a?b",
	"sess_1#frag",
	"sess_1%2Frevoke",
	"sess_ 1",
	"sess_1\n",
	"SESS_1",
	"sess_",
	"_abc",
	"sess_" + strings.Repeat("a", 200),
}

// TestInvalidInputSendsNothing checks that every invalid argument yields
// ErrInvalidInput (Permanent) and that not a single request reaches the
// emulator.
func TestInvalidInputSendsNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.c
	refresh := clerkapi.RefreshParams{ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "https://o"}
	type call struct {
		name string
		do   func() error
	}
	var calls []call
	for _, id := range badIDs {
		calls = append(calls,
			call{fmt.Sprintf("GetSession(%q)", id), func() error { _, err := c.GetSession(ctx, id); return err }},
			call{fmt.Sprintf("RevokeSession(%q)", id), func() error { _, err := c.RevokeSession(ctx, id); return err }},
			call{fmt.Sprintf("RefreshSession(%q)", id), func() error { _, err := c.RefreshSession(ctx, id, refresh); return err }},
			call{fmt.Sprintf("CreateSessionToken(%q)", id), func() error {
				_, err := c.CreateSessionToken(ctx, id, clerkapi.TokenParams{})
				return err
			}},
			call{fmt.Sprintf("CreateSessionTokenFromTemplate(%q)", id), func() error {
				_, err := c.CreateSessionTokenFromTemplate(ctx, id, "tpl", clerkapi.TokenParams{})
				return err
			}},
			call{fmt.Sprintf("LockUser(%q)", id), func() error { _, err := c.LockUser(ctx, id); return err }},
			call{fmt.Sprintf("UnlockUser(%q)", id), func() error { _, err := c.UnlockUser(ctx, id); return err }},
			call{fmt.Sprintf("CreateSession(user %q)", id), func() error {
				_, err := c.CreateSession(ctx, clerkapi.CreateParams{UserID: id})
				return err
			}},
		)
		if id != "" { // "" means "no filter" for these
			calls = append(calls,
				call{fmt.Sprintf("ListSessions(user %q)", id), func() error {
					_, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: id})
					return err
				}},
				call{fmt.Sprintf("ListSessions(client %q)", id), func() error {
					_, err := c.ListSessions(ctx, clerkapi.ListParams{ClientID: id, UserID: "user_ok"})
					return err
				}},
				call{fmt.Sprintf("CreateSession(org %q)", id), func() error {
					_, err := c.CreateSession(ctx, clerkapi.CreateParams{UserID: "user_ok", ActiveOrganizationID: id})
					return err
				}},
			)
		}
	}
	const ok = "sess_ok"
	for _, tpl := range []string{"", "a/b", "../x", "a?b", "a b", "é", strings.Repeat("t", 129)} {
		calls = append(calls, call{fmt.Sprintf("template %q", tpl), func() error {
			_, err := c.CreateSessionTokenFromTemplate(ctx, ok, tpl, clerkapi.TokenParams{})
			return err
		}})
	}
	list := func(p clerkapi.ListParams) func() error {
		return func() error { _, err := c.ListSessions(ctx, p); return err }
	}
	calls = append(calls,
		call{"list without filters", list(clerkapi.ListParams{})},
		call{"list status pending", list(clerkapi.ListParams{UserID: "user_ok", Status: clerkapi.StatusPending})},
		call{"list status bogus", list(clerkapi.ListParams{UserID: "user_ok", Status: "bogus"})},
		call{"list limit 501", list(clerkapi.ListParams{UserID: "user_ok", Limit: 501})},
		call{"list limit -1", list(clerkapi.ListParams{UserID: "user_ok", Limit: -1})},
		call{"list offset -1", list(clerkapi.ListParams{UserID: "user_ok", Offset: -1})},
	)
	for _, n := range []int64{-1, 1, 29, 315360001} {
		calls = append(calls,
			call{fmt.Sprintf("token lifetime %d", n), func() error {
				_, err := c.CreateSessionToken(ctx, ok, clerkapi.TokenParams{ExpiresInSeconds: n})
				return err
			}},
			call{fmt.Sprintf("template token lifetime %d", n), func() error {
				_, err := c.CreateSessionTokenFromTemplate(ctx, ok, "tpl", clerkapi.TokenParams{ExpiresInSeconds: n})
				return err
			}},
		)
	}
	for _, tc := range []struct {
		name string
		mut  func(*clerkapi.RefreshParams)
	}{
		{"no expired_token", func(p *clerkapi.RefreshParams) { p.ExpiredToken = "" }},
		{"blank refresh_token", func(p *clerkapi.RefreshParams) { p.RefreshToken = "  " }},
		{"no request_origin", func(p *clerkapi.RefreshParams) { p.RequestOrigin = "" }},
		{"format xml", func(p *clerkapi.RefreshParams) { p.Format = "xml" }},
	} {
		p := refresh
		tc.mut(&p)
		calls = append(calls, call{"refresh " + tc.name, func() error { _, err := c.RefreshSession(ctx, ok, p); return err }})
	}

	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, clerkapi.ErrInvalidInput) {
				t.Fatalf("err %v, want ErrInvalidInput", err)
			}
			if clerkapi.ClassOf(err) != clerkapi.Permanent {
				t.Errorf("class %v", clerkapi.ClassOf(err))
			}
			var apiErr *clerkapi.Error
			if errors.As(err, &apiErr) {
				t.Errorf("an input error is an *Error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "clerk ") {
				t.Errorf("error %q does not name the operation", err)
			}
			noSecret(t, "error", err.Error())
		})
	}
	if calls := e.emu.Calls(); len(calls) != 0 {
		t.Errorf("%d requests reached the emulator, want none; first: %+v", len(calls), calls[0])
	}
}

// TestValidInputAtTheLimits checks the other side of each boundary: values
// just inside the limits are sent.
func TestValidInputAtTheLimits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	user := e.emu.CreateUser()
	sess := e.emu.CreateSessions(user, 1)[0]
	for _, p := range []clerkapi.ListParams{{UserID: user, Limit: 1}, {UserID: user, Limit: 500}, {UserID: user, Offset: 0}, {UserID: user, Status: clerkapi.StatusReplaced}} {
		if _, err := e.c.ListSessions(ctx, p); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	for _, n := range []int64{0, 30, 315360000} {
		if _, err := e.c.CreateSessionToken(ctx, sess, clerkapi.TokenParams{ExpiresInSeconds: n}); err != nil {
			t.Errorf("lifetime %d: %v", n, err)
		}
	}
	if got := len(e.emu.Calls()); got != 7 {
		t.Errorf("%d calls, want 7", got)
	}
}

// TestInvalidIDNeverQuotesASecret: an argument refused before any request
// is quoted in the error, so that the caller sees what was wrong. A secret
// given in its place (the key, a session token: the wrong variable passed)
// must not be: the error is logged. Before, the first 61 bytes were
// quoted, the whole of a Clerk key; and a key given as a template name,
// which Clerk's template names allow, was quoted in the URL of the error
// a call without an answer returns.
func TestInvalidIDNeverQuotesASecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a template name passes: its call gets no answer
	c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL("http://"+addr+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "sk_" + "live_" + "Abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzaWQiOiJzZXNzXzEifQ.c2lnbmF0dXJlcw"
	for _, secret := range []string{key, jwt, "Bearer " + key} {
		for name, call := range map[string]func() error{
			"session id": func() error { _, err := c.GetSession(ctx, secret); return err },
			"user id":    func() error { _, err := c.LockUser(ctx, secret); return err },
			"list":       func() error { _, err := c.ListSessions(ctx, clerkapi.ListParams{ClientID: secret}); return err },
			"template": func() error {
				_, err := c.CreateSessionTokenFromTemplate(ctx, "sess_1", secret, clerkapi.TokenParams{})
				return err
			},
			"status": func() error {
				_, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: "user_1", Status: clerkapi.SessionStatus(secret)})
				return err
			},
			"format": func() error {
				_, err := c.RefreshSession(ctx, "sess_1", clerkapi.RefreshParams{ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "https://a.example", Format: clerkapi.RefreshFormat(secret)})
				return err
			},
			"api version": func() error {
				_, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithAPIVersion(secret))
				return err
			},
		} {
			err := call()
			if err == nil {
				t.Fatalf("%s %.10s…: no error", name, secret)
			}
			if s := err.Error(); strings.Contains(s, secret[:20]) || strings.Contains(s, "Abcdefghijkl") {
				t.Errorf("%s: the error quotes the secret: %s", name, s)
			}
		}
	}
}
