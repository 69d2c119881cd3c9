package clerkapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// TestGatewayPageAnswers runs every operation through the emulator's
// gateway fault: the call is handled, then a gateway answers 502 or 504
// with its own HTML page that echoes the request. The injected 5xx of
// ErrorRate always carry Clerk's errors body, so only this fault reaches
// the client's path for an answer that is not Clerk's. A call that may be
// sent again is Retryable; a create or a refresh may have been carried out
// and is Permanent, ErrUnconfirmed. Whatever the page says never appears
// in the error: it is untrusted text that may echo anything.
func TestGatewayPageAnswers(t *testing.T) {
	type call func(ctx context.Context, e *env, user, sess string) error
	tests := []struct {
		name        string
		call        call
		unconfirmed bool
	}{
		{"get", get, false},
		{"revoke", revoke, false},
		{"token", func(ctx context.Context, e *env, _, sess string) error {
			_, err := e.c.CreateSessionToken(ctx, sess, clerkapi.TokenParams{})
			return err
		}, false},
		{"list", func(ctx context.Context, e *env, user, _ string) error {
			_, err := e.c.ListSessions(ctx, clerkapi.ListParams{UserID: user})
			return err
		}, false},
		{"lock", lock, false},
		{"create", func(ctx context.Context, e *env, user, _ string) error {
			_, err := e.c.CreateSession(ctx, clerkapi.CreateParams{UserID: user})
			return err
		}, true},
		{"refresh", refreshWith(func(*env, string, *clerkapi.RefreshParams) {}), true},
	}
	// What the page holds (emulator.gatewayPage), none of which may show.
	pageText := []string{"<", "html", "Bad Gateway", "Gateway Timeout", "upstream", "in time", "clerk-emulator-gateway"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, emulator.WithFaults(emulator.Faults{GatewayErrorRate: 1}), emulator.WithSeed(7))
			user := e.emu.CreateUser()
			sess := e.emu.CreateSessions(user, 1)[0]
			err := tc.call(context.Background(), e, user, sess)

			var apiErr *clerkapi.Error
			if !errors.As(err, &apiErr) || (apiErr.StatusCode != http.StatusBadGateway && apiErr.StatusCode != http.StatusGatewayTimeout) {
				t.Fatalf("err %v; want the gateway's 502 or 504 as a *clerkapi.Error", err)
			}
			if len(apiErr.Errors) != 0 || apiErr.TraceID != "" {
				t.Errorf("the gateway's page was read as Clerk's errors body: %+v", apiErr)
			}
			want := clerkapi.Retryable
			if tc.unconfirmed {
				want = clerkapi.Permanent
			}
			if got := clerkapi.ClassOf(err); got != want || errors.Is(err, clerkapi.ErrUnconfirmed) != tc.unconfirmed {
				t.Errorf("class %v, ErrUnconfirmed %v; want %v, %v (err: %v)", got, errors.Is(err, clerkapi.ErrUnconfirmed), want, tc.unconfirmed, err)
			}
			if tc.unconfirmed && clerkapi.RetryAfterOf(err) != 0 {
				t.Errorf("RetryAfter %v on an unconfirmed answer", clerkapi.RetryAfterOf(err))
			}
			shown := fmt.Sprintf("%v | %+v | %#v", err, err, err)
			for _, s := range pageText {
				if strings.Contains(shown, s) {
					t.Errorf("the error shows %q from the gateway's page: %s", s, shown)
				}
			}
			noSecret(t, "error", shown)
			if c := e.emu.Calls(); len(c) != 1 || c[0].Fault != "gateway" {
				t.Errorf("calls %+v; want the one call, answered by the gateway", c)
			}
		})
	}
	// The page was behind the answer: the revoke happened.
	e := newEnv(t, emulator.WithFaults(emulator.Faults{GatewayErrorRate: 1}))
	sess := e.emu.CreateSessions("user_a", 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.c.RevokeSession(ctx, sess); clerkapi.ClassOf(err) != clerkapi.Retryable || e.emu.RevokeCount(sess) != 1 {
		t.Errorf("revoke: %v, RevokeCount %d; want retryable and the revoke done", err, e.emu.RevokeCount(sess))
	}
}
