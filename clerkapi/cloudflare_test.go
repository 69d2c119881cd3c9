package clerkapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// TestOriginTimeoutPagesAreUnconfirmed: a CDN in front of Clerk answers
// 524 (Cloudflare's "a timeout occurred": it sent the request and the
// origin did not answer in time) or 520 (the origin's answer was empty or
// broken) with a page of its own, after Clerk received the request, as a
// gateway's 502 or 504 does. Only 502 and 504 were unconfirmed: a create
// so answered was Retryable, and sent again made a second session; a
// refresh sent its spent refresh token again. They are now ErrUnconfirmed
// (Permanent) for those two; a call that may be repeated stays Retryable.
func TestOriginTimeoutPagesAreUnconfirmed(t *testing.T) {
	for _, status := range []int{520, 524} {
		for _, tc := range []struct {
			name        string
			unconfirmed bool
			call        func(ctx context.Context, c *clerkapi.Client, emu *emulator.Emulator, user, sess string) error
		}{
			{"create", true, func(ctx context.Context, c *clerkapi.Client, _ *emulator.Emulator, user, _ string) error {
				_, err := c.CreateSession(ctx, clerkapi.CreateParams{UserID: user})
				return err
			}},
			{"refresh", true, func(ctx context.Context, c *clerkapi.Client, emu *emulator.Emulator, _, sess string) error {
				_, err := c.RefreshSession(ctx, sess, clerkapi.RefreshParams{ExpiredToken: emu.SessionToken(sess, -time.Minute),
					RefreshToken: emu.RefreshToken(sess), RequestOrigin: "https://app.example.com"})
				return err
			}},
			{"revoke", false, func(ctx context.Context, c *clerkapi.Client, _ *emulator.Emulator, _, sess string) error {
				_, err := c.RevokeSession(ctx, sess)
				return err
			}},
		} {
			t.Run(fmt.Sprintf("%d %s", status, tc.name), func(t *testing.T) {
				emu := emulator.New(emulator.WithSecretKeys(testSecret))
				user := emu.CreateUser()
				sess := emu.CreateSessions(user, 1)[0]
				// Clerk handles the request; the CDN's page takes the
				// place of its answer.
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					emu.ServeHTTP(httptest.NewRecorder(), r)
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(status)
					_, _ = w.Write([]byte("<html><title>api.clerk.com | 524: A timeout occurred</title></html>"))
				}))
				defer srv.Close()
				c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
				if err != nil {
					t.Fatal(err)
				}
				err = tc.call(context.Background(), c, emu, user, sess)
				want := clerkapi.Retryable
				if tc.unconfirmed {
					want = clerkapi.Permanent
				}
				if got := clerkapi.ClassOf(err); got != want || errors.Is(err, clerkapi.ErrUnconfirmed) != tc.unconfirmed {
					t.Errorf("class %v, ErrUnconfirmed %v; want %v, %v (err: %v)", got, errors.Is(err, clerkapi.ErrUnconfirmed), want, tc.unconfirmed, err)
				}
			})
		}
	}
}
