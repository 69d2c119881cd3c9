package clerkapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// errCase provokes one failure and says how the client must report it.
type errCase struct {
	name string
	// opts configure the emulator of this case.
	opts []emulator.Option
	// call provokes the failure; sess is an active session of user.
	call func(ctx context.Context, e *env, user, sess string) error
	// status and code of the *Error; status 0 means the error must not
	// be an *Error (network, timeout).
	status int
	code   string
	class  clerkapi.Class
	// retryAfter is the Retry-After the error must carry.
	retryAfter time.Duration
	// is, if set, must match errors.Is.
	is error
}

func get(ctx context.Context, e *env, _, sess string) error {
	_, err := e.c.GetSession(ctx, sess)
	return err
}

func revoke(ctx context.Context, e *env, _, sess string) error {
	_, err := e.c.RevokeSession(ctx, sess)
	return err
}

func lock(ctx context.Context, e *env, user, _ string) error {
	_, err := e.c.LockUser(ctx, user)
	return err
}

func unlock(ctx context.Context, e *env, user, _ string) error {
	_, err := e.c.UnlockUser(ctx, user)
	return err
}

// failUserWith makes the user's calls answer status and then calls call.
func failUserWith(status int, call func(context.Context, *env, string, string) error) func(context.Context, *env, string, string) error {
	return func(ctx context.Context, e *env, user, sess string) error {
		e.emu.FailUser(user, status)
		return call(ctx, e, user, sess)
	}
}

// failWith makes sess answer status and then calls call.
func failWith(status int, call func(context.Context, *env, string, string) error) func(context.Context, *env, string, string) error {
	return func(ctx context.Context, e *env, user, sess string) error {
		e.emu.FailSession(sess, status)
		return call(ctx, e, user, sess)
	}
}

func refreshWith(mut func(e *env, sess string, p *clerkapi.RefreshParams)) func(context.Context, *env, string, string) error {
	return func(ctx context.Context, e *env, _, sess string) error {
		p := clerkapi.RefreshParams{
			ExpiredToken: e.emu.SessionToken(sess, -time.Minute), RefreshToken: e.emu.RefreshToken(sess),
			RequestOrigin: "https://app.example.com",
		}
		mut(e, sess, &p)
		_, err := e.c.RefreshSession(ctx, sess, p)
		return err
	}
}

func errCases() []errCase {
	return []errCase{
		// Retryable.
		{name: "429 rate limited", opts: []emulator.Option{emulator.WithRateLimit(1, 10*time.Second)},
			call: func(ctx context.Context, e *env, u, s string) error {
				if err := get(ctx, e, u, s); err != nil {
					return fmt.Errorf("first call failed: %w", err)
				}
				return get(ctx, e, u, s)
			}, status: 429, code: "too_many_requests", class: clerkapi.Retryable, retryAfter: 10 * time.Second},
		{name: "409 resource_locked", call: failWith(409, revoke), status: 409, code: "resource_locked", class: clerkapi.Retryable},
		{name: "500", call: failWith(500, get), status: 500, code: "internal_clerk_error", class: clerkapi.Retryable},
		{name: "502", call: failWith(502, revoke), status: 502, code: "bad_gateway", class: clerkapi.Retryable},
		{name: "503 with Retry-After", call: failWith(503, revoke), status: 503, code: "service_unavailable", class: clerkapi.Retryable, retryAfter: time.Second},
		{name: "504", call: failWith(504, get), status: 504, code: "gateway_timeout", class: clerkapi.Retryable},
		{name: "503 on lock", call: failUserWith(503, lock), status: 503, code: "service_unavailable", class: clerkapi.Retryable, retryAfter: time.Second},
		{name: "500 on unlock", call: failUserWith(500, unlock), status: 500, code: "internal_clerk_error", class: clerkapi.Retryable},
		{name: "injected 5xx on lock", opts: []emulator.Option{emulator.WithFaults(emulator.Faults{ErrorRate: 1})},
			call: lock, class: clerkapi.Retryable, status: -1},
		{name: "injected 5xx", opts: []emulator.Option{emulator.WithFaults(emulator.Faults{ErrorRate: 1})},
			call: revoke, class: clerkapi.Retryable, status: -1},
		{name: "dropped connection", opts: []emulator.Option{emulator.WithFaults(emulator.Faults{DropRate: 1})},
			call: revoke, class: clerkapi.Retryable},
		{name: "answer lost after the revoke happened", opts: []emulator.Option{emulator.WithFaults(emulator.Faults{DropAfterRate: 1})},
			call: revoke, class: clerkapi.Retryable},
		{name: "context deadline", opts: []emulator.Option{emulator.WithLatency(5*time.Second, 0)},
			call: func(ctx context.Context, e *env, u, s string) error {
				ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				return get(ctx, e, u, s)
			}, class: clerkapi.Retryable, is: context.DeadlineExceeded},
		{name: "context canceled", call: func(ctx context.Context, e *env, u, s string) error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return get(ctx, e, u, s)
		}, class: clerkapi.Retryable, is: context.Canceled},
		{name: "http.Client timeout", opts: []emulator.Option{emulator.WithLatency(5*time.Second, 0)},
			call: func(ctx context.Context, e *env, _, s string) error {
				c := e.client(clerkapi.WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
				_, err := c.GetSession(ctx, s)
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					return fmt.Errorf("not a net.Error timeout: %w", err)
				}
				return err
			}, class: clerkapi.Retryable},
		{name: "connection refused", call: func(ctx context.Context, e *env, _, s string) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			addr := ln.Addr().String()
			ln.Close()
			c := e.client(clerkapi.WithBaseURL("http://" + addr + "/v1"))
			_, err = c.GetSession(ctx, s)
			return err
		}, class: clerkapi.Retryable},

		// Permanent.
		{name: "400 strict revoke of revoked", opts: []emulator.Option{emulator.WithStrictRevoke()},
			call: func(ctx context.Context, e *env, u, s string) error {
				_ = e.emu.SetSessionStatus(s, clerkapi.StatusRevoked)
				return revoke(ctx, e, u, s)
			}, status: 400, code: "session_not_active", class: clerkapi.Permanent},
		{name: "400 createSession on production", opts: []emulator.Option{emulator.WithSecretKeys("sk_" + "live_fake")},
			call: func(ctx context.Context, e *env, u, _ string) error {
				_, err := e.client(clerkapi.WithSecretKey("sk_"+"live_fake")).CreateSession(ctx, clerkapi.CreateParams{UserID: u})
				return err
			}, status: 400, code: "request_invalid_for_environment", class: clerkapi.Permanent},
		{name: "404 unknown session", call: func(ctx context.Context, e *env, u, _ string) error {
			return revoke(ctx, e, u, "sess_doesNotExist")
		}, status: 404, code: "resource_not_found", class: clerkapi.Permanent},
		{name: "404 unknown user on create", call: func(ctx context.Context, e *env, _, _ string) error {
			_, err := e.c.CreateSession(ctx, clerkapi.CreateParams{UserID: "user_nobody"})
			return err
		}, status: 404, code: "resource_not_found", class: clerkapi.Permanent},
		{name: "404 unknown template", call: func(ctx context.Context, e *env, _, s string) error {
			_, err := e.c.CreateSessionTokenFromTemplate(ctx, s, "nope", clerkapi.TokenParams{})
			return err
		}, status: 404, code: "resource_not_found", class: clerkapi.Permanent},
		{name: "404 token for a revoked session", call: func(ctx context.Context, e *env, _, s string) error {
			_ = e.emu.SetSessionStatus(s, clerkapi.StatusRevoked)
			_, err := e.c.CreateSessionToken(ctx, s, clerkapi.TokenParams{})
			return err
		}, status: 404, code: "resource_not_found", class: clerkapi.Permanent},
		{name: "409 other than resource_locked", call: func(ctx context.Context, e *env, _, s string) error {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(409)
				io.WriteString(w, `{"errors":[{"message":"conflict","long_message":"conflict","code":"duplicate_record"}],"clerk_trace_id":"t1"}`)
			}))
			defer srv.Close()
			_, err := e.client(clerkapi.WithBaseURL(srv.URL+"/v1")).RevokeSession(ctx, s)
			return err
		}, status: 409, code: "duplicate_record", class: clerkapi.Permanent},
		{name: "404 lock unknown user", call: func(ctx context.Context, e *env, _, s string) error {
			return lock(ctx, e, "user_doesNotExist", s)
		}, status: 404, code: "resource_not_found", class: clerkapi.Permanent},
		{name: "404 unlock unknown user", call: func(ctx context.Context, e *env, _, s string) error {
			return unlock(ctx, e, "user_doesNotExist", s)
		}, status: 404, code: "resource_not_found", class: clerkapi.Permanent},
		{name: "403 on lock: the instance does not allow locking", call: failUserWith(403, lock),
			status: 403, code: "authorization_invalid", class: clerkapi.Permanent},
		{name: "403 on unlock", call: failUserWith(403, unlock), status: 403, code: "authorization_invalid", class: clerkapi.Permanent},
		{name: "403 user_locked: sign-in of a locked user", call: func(ctx context.Context, e *env, u, s string) error {
			if err := lock(ctx, e, u, s); err != nil {
				return fmt.Errorf("lock failed: %w", err)
			}
			_, err := e.c.CreateSession(ctx, clerkapi.CreateParams{UserID: u})
			return err
		}, status: 403, code: "user_locked", class: clerkapi.Permanent},
		{name: "413", call: failWith(413, revoke), status: 413, code: "request_body_too_large", class: clerkapi.Permanent},
		{name: "422", call: failWith(422, revoke), status: 422, code: "form_param_value_invalid", class: clerkapi.Permanent},
		{name: "refresh: wrong refresh token", call: refreshWith(func(_ *env, _ string, p *clerkapi.RefreshParams) {
			p.RefreshToken = "not-the-token"
		}), status: 401, code: "refresh_token_not_found", class: clerkapi.Permanent},
		{name: "refresh: garbage expired token", call: refreshWith(func(_ *env, _ string, p *clerkapi.RefreshParams) {
			p.ExpiredToken = "garbage"
		}), status: 401, code: "expired_session_token_invalid", class: clerkapi.Permanent},
		{name: "refresh: token of another session", call: refreshWith(func(e *env, _ string, p *clerkapi.RefreshParams) {
			p.ExpiredToken = e.emu.SessionToken(e.emu.CreateSessions("user_other", 1)[0], -time.Minute)
		}), status: 401, code: "expired_session_token_invalid", class: clerkapi.Permanent},
		{name: "refresh: session not active", call: refreshWith(func(e *env, s string, _ *clerkapi.RefreshParams) {
			_ = e.emu.SetSessionStatus(s, clerkapi.StatusEnded)
		}), status: 401, code: "session_refresh_session_not_active", class: clerkapi.Permanent},

		// Systemic.
		// A version Clerk does not serve (retired, or set wrongly):
		// every request is refused alike, so no job is to blame.
		{name: "400 unknown API version", call: func(ctx context.Context, e *env, _, s string) error {
			_, err := e.client(clerkapi.WithAPIVersion("2019-01-01")).GetSession(ctx, s)
			return err
		}, status: 400, code: "api_version_invalid", class: clerkapi.Systemic},
		{name: "401 wrong key", call: func(ctx context.Context, e *env, _, s string) error {
			_, err := e.client(clerkapi.WithSecretKey("sk_test_wrongKey")).GetSession(ctx, s)
			return err
		}, status: 401, code: "clerk_key_invalid", class: clerkapi.Systemic},
		{name: "401 revoked key", opts: []emulator.Option{emulator.WithFaults(emulator.Faults{RejectKey: true})},
			call: revoke, status: 401, code: "clerk_key_invalid", class: clerkapi.Systemic},
		{name: "401 wrong key on refresh is still systemic", call: func(ctx context.Context, e *env, _, s string) error {
			_, err := e.client(clerkapi.WithSecretKey("sk_test_wrongKey")).RefreshSession(ctx, s, clerkapi.RefreshParams{
				ExpiredToken: "x", RefreshToken: "y", RequestOrigin: "https://z"})
			return err
		}, status: 401, code: "clerk_key_invalid", class: clerkapi.Systemic},
		{name: "401 authentication_invalid on refresh", call: failWith(401, refreshWith(func(*env, string, *clerkapi.RefreshParams) {})),
			status: 401, code: "authentication_invalid", class: clerkapi.Systemic},
		{name: "403 authorization_invalid", call: failWith(403, get), status: 403, code: "authorization_invalid", class: clerkapi.Systemic},
		{name: "401 wrong key on lock is systemic", call: func(ctx context.Context, e *env, u, _ string) error {
			_, err := e.client(clerkapi.WithSecretKey("sk_test_wrongKey")).LockUser(ctx, u)
			return err
		}, status: 401, code: "clerk_key_invalid", class: clerkapi.Systemic},
		{name: "401 revoked key on unlock", opts: []emulator.Option{emulator.WithFaults(emulator.Faults{RejectKey: true})},
			call: unlock, status: 401, code: "clerk_key_invalid", class: clerkapi.Systemic},
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range errCases() {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			user := e.emu.CreateUser()
			sess := e.emu.CreateSessions(user, 1)[0]
			err := tc.call(context.Background(), e, user, sess)
			if err == nil {
				t.Fatal("no error")
			}
			if got := clerkapi.ClassOf(err); got != tc.class {
				t.Errorf("ClassOf = %v, want %v (err: %v)", got, tc.class, err)
			}
			if got := clerkapi.RetryAfterOf(err); got != tc.retryAfter && tc.status != -1 {
				t.Errorf("RetryAfterOf = %v, want %v", got, tc.retryAfter)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) is false", err, tc.is)
			}
			if errors.Is(err, clerkapi.ErrInvalidInput) {
				t.Error("a server-side failure wraps ErrInvalidInput")
			}
			var apiErr *clerkapi.Error
			isAPI := errors.As(err, &apiErr)
			switch {
			case tc.status == 0 && isAPI:
				t.Errorf("got *Error %v, want a transport error", apiErr)
			case tc.status == -1: // any 5xx
				if !isAPI || apiErr.StatusCode < 500 {
					t.Errorf("want a 5xx *Error, got %v", err)
				}
			case tc.status > 0:
				if !isAPI {
					t.Fatalf("want *Error, got %T %v", err, err)
				}
				if apiErr.StatusCode != tc.status || apiErr.Code() != tc.code || !apiErr.HasCode(tc.code) {
					t.Errorf("got %d %q, want %d %q", apiErr.StatusCode, apiErr.Code(), tc.status, tc.code)
				}
				if apiErr.TraceID == "" || apiErr.Message() == "" || apiErr.Op == "" {
					t.Errorf("error lacks trace id, message or op: %+v", apiErr)
				}
				if s := apiErr.Error(); !strings.Contains(s, apiErr.Op) || !strings.Contains(s, fmt.Sprint(tc.status)) || !strings.Contains(s, tc.code) {
					t.Errorf("Error() = %q lacks op, status or code", s)
				}
			}
			if !strings.HasPrefix(err.Error(), "clerk ") && !strings.Contains(err.Error(), ": clerk ") {
				t.Errorf("error %q does not name the operation", err)
			}
			noSecret(t, "error", fmt.Sprintf("%v %+v %#v", err, err, err))
		})
	}
}

// TestDropAfterLeavesEffect documents the ambiguity a lost answer leaves:
// the client sees a Retryable error although the revoke happened. A retry
// then succeeds (revoke is idempotent here) and the emulator counts two.
func TestDropAfterLeavesEffect(t *testing.T) {
	e := newEnv(t, emulator.WithFaults(emulator.Faults{DropAfterRate: 1}))
	sess := e.emu.CreateSessions("user_a", 1)[0]
	_, err := e.c.RevokeSession(context.Background(), sess)
	if clerkapi.ClassOf(err) != clerkapi.Retryable {
		t.Fatalf("err %v", err)
	}
	if s, _ := e.emu.Session(sess); s.Status != clerkapi.StatusRevoked {
		t.Fatal("revoke did not happen")
	}
	e.emu.SetFaults(emulator.Faults{})
	if _, err := e.c.RevokeSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	if n := e.emu.RevokeCount(sess); n != 2 {
		t.Errorf("RevokeCount %d, want 2 (the duplicate is visible)", n)
	}
}

// TestNonJSONAnswers: answers that are not Clerk's JSON (a proxy's HTML
// page, an empty body) still give an *Error with the status, classified by
// status alone; a 2xx that is not JSON is a Retryable decode error.
func TestNonJSONAnswers(t *testing.T) {
	tests := []struct {
		status      int
		ct, body    string
		retryAfter  string
		class       clerkapi.Class
		wantAfter   time.Duration
		wantAPIErr  bool
		wantErrText string
	}{
		{502, "text/html", "<html><body>Bad Gateway</body></html>", "", clerkapi.Retryable, 0, true, "HTTP 502"},
		{503, "text/plain", "upstream connect error", "7", clerkapi.Retryable, 7 * time.Second, true, "HTTP 503"},
		{429, "text/plain", "slow down", "Wed, 21 Oct 2099 07:28:00 GMT", clerkapi.Retryable, 24 * time.Hour, true, "HTTP 429"},
		{404, "text/plain", "404 page not found", "", clerkapi.Permanent, 0, true, "HTTP 404"},
		{401, "text/plain", "Unauthorized", "", clerkapi.Systemic, 0, true, "HTTP 401"},
		{403, "", "", "", clerkapi.Systemic, 0, true, "HTTP 403"},
		{400, "application/json", `{"errors":"not an array"}`, "", clerkapi.Permanent, 0, true, "HTTP 400"},
		{408, "application/json", `{}`, "", clerkapi.Retryable, 0, true, "HTTP 408"},
		{200, "text/html", "<html>maintenance</html>", "", clerkapi.Retryable, 0, false, "decode answer"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.ct), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.ct != "" {
					w.Header().Set("Content-Type", tc.ct)
				}
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := clerkapi.New(clerkapi.WithBaseURL(srv.URL+"/v1"), clerkapi.WithSecretKey(testSecret))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetSession(context.Background(), "sess_abc")
			var apiErr *clerkapi.Error
			if errors.As(err, &apiErr) != tc.wantAPIErr {
				t.Fatalf("err %T %v, want *Error: %v", err, err, tc.wantAPIErr)
			}
			if tc.wantAPIErr && (apiErr.StatusCode != tc.status || len(apiErr.Errors) != 0 || apiErr.Code() != "") {
				t.Errorf("error %+v", apiErr)
			}
			if got := clerkapi.ClassOf(err); got != tc.class {
				t.Errorf("class %v, want %v", got, tc.class)
			}
			if got := clerkapi.RetryAfterOf(err); tc.wantAfter > 0 && got != tc.wantAfter {
				t.Errorf("RetryAfter %v, want %v", got, tc.wantAfter)
			}
			if got := clerkapi.RetryAfterOf(err); got < 0 || got > 24*time.Hour {
				t.Errorf("RetryAfter %v out of range", got)
			}
			if !strings.Contains(err.Error(), tc.wantErrText) {
				t.Errorf("error %q lacks %q", err, tc.wantErrText)
			}
			noSecret(t, "error", err.Error())
		})
	}
}

func TestClassOfOtherErrors(t *testing.T) {
	tests := []struct {
		err  error
		want clerkapi.Class
	}{
		{nil, 0},
		{clerkapi.ErrInvalidInput, clerkapi.Permanent},
		{fmt.Errorf("wrapped: %w", clerkapi.ErrInvalidInput), clerkapi.Permanent},
		{context.DeadlineExceeded, clerkapi.Retryable},
		{io.ErrUnexpectedEOF, clerkapi.Retryable},
		{fmt.Errorf("x: %w", &clerkapi.Error{StatusCode: 401, Errors: []clerkapi.ErrorDetail{{Code: "clerk_key_invalid"}}}), clerkapi.Systemic},
		{&clerkapi.Error{Op: "RefreshSession", StatusCode: 401, Errors: []clerkapi.ErrorDetail{{Code: "session_refresh_expired"}}}, clerkapi.Permanent},
		{&clerkapi.Error{Op: "GetSession", StatusCode: 401, Errors: []clerkapi.ErrorDetail{{Code: "session_refresh_expired"}}}, clerkapi.Systemic},
		// A 403 to LockUser or UnlockUser is the instance's setting, whatever its code;
		// elsewhere, and as a 401, it stays about the key.
		{&clerkapi.Error{Op: "LockUser", StatusCode: 403, Errors: []clerkapi.ErrorDetail{{Code: "authorization_invalid"}}}, clerkapi.Permanent},
		{&clerkapi.Error{Op: "UnlockUser", StatusCode: 403}, clerkapi.Permanent},
		{&clerkapi.Error{Op: "LockUser", StatusCode: 401, Errors: []clerkapi.ErrorDetail{{Code: "clerk_key_invalid"}}}, clerkapi.Systemic},
		{&clerkapi.Error{Op: "RevokeSession", StatusCode: 403, Errors: []clerkapi.ErrorDetail{{Code: "authorization_invalid"}}}, clerkapi.Systemic},
		// user_locked concerns one user, whatever the operation and status.
		{&clerkapi.Error{Op: "createSession", StatusCode: 403, Errors: []clerkapi.ErrorDetail{{Code: "user_locked"}}}, clerkapi.Permanent},
		{&clerkapi.Error{Op: "createSession", StatusCode: 422, Errors: []clerkapi.ErrorDetail{{Code: "user_locked"}}}, clerkapi.Permanent},
		{&clerkapi.Error{Op: "LockUser", StatusCode: 503, Errors: []clerkapi.ErrorDetail{{Code: "service_unavailable"}}}, clerkapi.Retryable},
	}
	for _, tc := range tests {
		if got := clerkapi.ClassOf(tc.err); got != tc.want {
			t.Errorf("ClassOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	for c, s := range map[clerkapi.Class]string{clerkapi.Retryable: "retryable", clerkapi.Permanent: "permanent", clerkapi.Systemic: "systemic", 0: "unknown"} {
		if c.String() != s {
			t.Errorf("%d.String() = %q", c, c.String())
		}
	}
}

// TestErrorAnswerWithCutBody: an error answer whose body breaks off (the
// connection closed before Content-Length bytes came, or a slow body
// timing out) still has a status and headers, which decide its class and
// its Retry-After. Before, the failed read was returned instead: every such
// answer was Retryable without a Retry-After, so a 401 blamed jobs instead
// of stopping on the key, a 404 was retried until it was dead-lettered as
// exhausted, and a 429 was retried after 1 s instead of the 30 s asked.
func TestErrorAnswerWithCutBody(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  clerkapi.Class
		after  time.Duration
	}{
		{401, clerkapi.Systemic, 0},
		{404, clerkapi.Permanent, 0},
		{429, clerkapi.Retryable, 30 * time.Second},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", "1000")
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, `{"errors":[{"code":"`) // and the connection closes
			}))
			defer srv.Close()
			c, err := clerkapi.New(clerkapi.WithBaseURL(srv.URL+"/v1"), clerkapi.WithSecretKey(testSecret))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetSession(context.Background(), "sess_abc")
			var apiErr *clerkapi.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status {
				t.Fatalf("err %T %v: want an *Error with status %d", err, err, tc.status)
			}
			if got := clerkapi.ClassOf(err); got != tc.class {
				t.Errorf("class %v, want %v", got, tc.class)
			}
			if got := clerkapi.RetryAfterOf(err); tc.after > 0 && got != tc.after {
				t.Errorf("RetryAfter %v, want %v", got, tc.after)
			}
		})
	}
}
