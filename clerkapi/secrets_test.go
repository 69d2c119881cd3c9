package clerkapi_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// TestClientNeverPrintsSecret formats a client every way fmt can, including
// dereferenced and nested in other values.
func TestClientNeverPrintsSecret(t *testing.T) {
	c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	type byValue struct{ C clerkapi.Client }
	type unexported struct{ c clerkapi.Client }
	type byPointer struct{ c *clerkapi.Client }
	for name, s := range map[string]string{
		"pointer":          fmt.Sprintf("%v %+v %#v %s", c, c, c, c),
		"value":            fmt.Sprintf("%v %+v %#v", *c, *c, *c),
		"exported field":   fmt.Sprintf("%v %+v %#v", byValue{*c}, byValue{*c}, byValue{*c}),
		"unexported field": fmt.Sprintf("%v %+v %#v", unexported{*c}, unexported{*c}, unexported{*c}),
		"pointer field":    fmt.Sprintf("%v %+v %#v", byPointer{c}, byPointer{c}, byPointer{c}),
		"slice":            fmt.Sprintf("%v %+v", []*clerkapi.Client{c}, []clerkapi.Client{*c}),
	} {
		noSecret(t, name, s)
	}
	if got := c.String(); got != "clerkapi.Client{base: https://api.clerk.com/v1, version: 2026-05-12, key: sk_test_[REDACTED]}" {
		t.Errorf("String() = %q", got)
	}
}

// TestFailuresNeverShowSecret collects the errors of failing calls of every
// kind and checks none shows the key: wrong key, server errors, dropped
// connections, input errors.
func TestFailuresNeverShowSecret(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sess := e.emu.CreateSessions("user_a", 1)[0]
	var errs []error
	collect := func(_ any, err error) { errs = append(errs, err) }
	// The server knows another key: everything fails with 401.
	other := emulator.NewServer(emulator.WithSecretKeys("sk_test_other"))
	defer other.Close()
	wrong := e.client(clerkapi.WithBaseURL(other.URL))
	collect(wrong.GetSession(ctx, sess))
	collect(wrong.ListSessions(ctx, clerkapi.ListParams{UserID: "user_a"}))
	collect(wrong.RefreshSession(ctx, sess, clerkapi.RefreshParams{ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o"}))
	collect(wrong.LockUser(ctx, "user_a"))
	collect(wrong.UnlockUser(ctx, "user_a"))
	for _, f := range []emulator.Faults{{ErrorRate: 1}, {DropRate: 1}, {RejectKey: true}} {
		e.emu.SetFaults(f)
		collect(e.c.RevokeSession(ctx, sess))
		collect(e.c.CreateSessionToken(ctx, sess, clerkapi.TokenParams{}))
		collect(e.c.LockUser(ctx, "user_a"))
	}
	e.emu.SetFaults(emulator.Faults{})
	collect(e.c.GetSession(ctx, "../users"))
	collect(e.c.LockUser(ctx, "user_a/../../sessions"))
	collect(e.c.CreateSessionTokenFromTemplate(ctx, sess, "a/b", clerkapi.TokenParams{}))
	for _, err := range errs {
		if err == nil {
			t.Error("a call meant to fail succeeded")
			continue
		}
		noSecret(t, "error", fmt.Sprintf("%v | %+v | %#v", err, err, err))
	}
}

// TestBaseURLCredentialsNeverShown: a base URL may carry a proxy's
// credentials (user:password@, or a token as the user). Neither the
// client's String nor the error for a URL it refuses repeats them; before,
// both quoted the URL as given.
func TestBaseURLCredentialsNeverShown(t *testing.T) {
	const pass = "pr0xyPassw0rd"
	c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL("https://ops:"+pass+"@proxy.example/v1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c, c, c)} {
		if strings.Contains(s, pass) {
			t.Errorf("the client prints the base URL's password: %s", s)
		}
	}
	for _, raw := range []string{"ftp://ops:" + pass + "@proxy.example/v1", "proxy.example:" + pass + "@x", "https://" + pass + "@:bad:port/v1"} {
		_, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(raw))
		if err == nil || strings.Contains(err.Error(), pass) {
			t.Errorf("base URL %s: error %v; want one that does not repeat the password", strings.ReplaceAll(raw, pass, "<pass>"), err)
		}
	}
}

// TestTransportErrorHidesBaseURLCredentials: when no answer comes, the
// error quotes the request's URL (net/http's *url.Error). net/http hides a
// password there, but not a token given as the user (https://TOKEN@proxy),
// which String and WithBaseURL's error already hide: the client must too.
func TestTransportErrorHidesBaseURLCredentials(t *testing.T) {
	const token = "pr0xyT0kenValue"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every call fails before an answer
	for _, base := range []string{"http://" + token + "@" + addr + "/v1", "http://ops:" + token + "@" + addr + "/v1"} {
		c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(base))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GetSession(context.Background(), "sess_1")
		if err == nil {
			t.Fatal("a call to a closed port succeeded")
		}
		if s := fmt.Sprintf("%v %+v", err, err); strings.Contains(s, token) {
			t.Errorf("the error shows the base URL's credentials: %s", strings.ReplaceAll(s, token, "<token>"))
		}
	}
}
