package clerkapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// cutAnswers serves the emulator, but the 2xx answer of each POST (after
// the emulator has carried the call out) breaks off halfway through its
// body: the status and a Content-Length came whole, the connection closes
// before the rest.
func cutAnswers(t *testing.T, emu *emulator.Emulator) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			emu.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code < 200 || rec.Code > 299 {
			t.Errorf("the emulator answered %d: %s", rec.Code, body)
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		bw := bufio.NewWriter(conn)
		fmt.Fprintf(bw, "HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", rec.Code, len(body))
		_, _ = bw.Write(body[:len(body)/2])
		_ = bw.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCreateAnsweredButCutOffIsUnconfirmed: a createSession whose 2xx
// answer broke off in its body was carried out by Clerk as surely as one
// answered "{}": retried, it makes a second session. It is Permanent and
// ErrUnconfirmed like the other 2xx answers without a session. A revoke
// cut off the same way may be sent again: Retryable.
func TestCreateAnsweredButCutOffIsUnconfirmed(t *testing.T) {
	ctx := context.Background()
	emu := emulator.New(emulator.WithSecretKeys(testSecret), emulator.WithSigningKey(signingKey()))
	user := emu.CreateUser()
	srv := cutAnswers(t, emu)
	c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.CreateSession(ctx, clerkapi.CreateParams{UserID: user})
	if err == nil {
		t.Fatalf("a create answered with half a session taken for a success: %+v", res)
	}
	if cl := clerkapi.ClassOf(err); cl != clerkapi.Permanent || !errors.Is(err, clerkapi.ErrUnconfirmed) {
		t.Errorf("%v: class %v, ErrUnconfirmed %v; want permanent and ErrUnconfirmed (the session was created)",
			err, cl, errors.Is(err, clerkapi.ErrUnconfirmed))
	}
	noSecret(t, "the error", err.Error())
	list, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: user, Paginated: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 1 {
		t.Fatalf("%d sessions after the create, want the one Clerk created", len(list.Data))
	}
	_, err = c.RevokeSession(ctx, list.Data[0].ID)
	if err == nil {
		t.Fatal("a revoke answered with half a session taken for a success")
	}
	if cl := clerkapi.ClassOf(err); cl != clerkapi.Retryable || errors.Is(err, clerkapi.ErrUnconfirmed) {
		t.Errorf("revoke: %v: class %v; want retryable, not ErrUnconfirmed", err, cl)
	}
	if !strings.Contains(err.Error(), "RevokeSession") {
		t.Errorf("revoke: %v: want the operation named", err)
	}
}

// TestCreateAnswerLostIsUnconfirmed: a create carried out whose answer is
// lost (the connection closed instead) is ErrUnconfirmed, Permanent; a
// revoke in the same case stays Retryable (sending it again is harmless).
func TestCreateAnswerLostIsUnconfirmed(t *testing.T) {
	e := newEnv(t, emulator.WithFaults(emulator.Faults{DropAfterRate: 1}))
	user := e.emu.CreateUser()
	_, err := e.c.CreateSession(context.Background(), clerkapi.CreateParams{UserID: user})
	if !errors.Is(err, clerkapi.ErrUnconfirmed) || clerkapi.ClassOf(err) != clerkapi.Permanent {
		t.Errorf("create whose answer was lost: %v (%s); want ErrUnconfirmed, permanent", err, clerkapi.ClassOf(err))
	}
	if n := len(e.emu.UserSessionIDs(user)); n != 1 {
		t.Fatalf("%d sessions; the test expects the create carried out", n)
	}
	sess := e.emu.CreateSessions(user, 1)[0]
	if _, err := e.c.RevokeSession(context.Background(), sess); errors.Is(err, clerkapi.ErrUnconfirmed) || clerkapi.ClassOf(err) != clerkapi.Retryable {
		t.Errorf("revoke whose answer was lost: %v; want retryable", err)
	}
}

// TestGatewayTimeoutAfterCreateIsUnconfirmed: a gateway in front of Clerk
// that answers 502 or 504 with its own page may have passed the request on
// (Clerk carried it out, and the gateway gave up waiting or lost the
// answer): a create so answered is ErrUnconfirmed and Permanent, since sent
// again it would make a second session. A revoke so answered stays
// Retryable, and so does a create that Clerk itself refused with a 5xx
// (its own error body) or a gateway answered 503 (not passed on).
func TestGatewayTimeoutAfterCreateIsUnconfirmed(t *testing.T) {
	const page = "<html><body><h1>504 Gateway Time-out</h1></body></html>"
	const clerkBody = `{"errors":[{"code":"internal_clerk_error","message":"Oops"}]}`
	tests := []struct {
		name        string
		status      int
		body        string
		unconfirmed bool // for the create; a revoke never is
	}{
		{"504 from a gateway", http.StatusGatewayTimeout, page, true},
		{"502 from a gateway", http.StatusBadGateway, page, true},
		{"502 with no body", http.StatusBadGateway, "", true},
		{"502 from Clerk", http.StatusBadGateway, clerkBody, false},
		{"504 from Clerk", http.StatusGatewayTimeout, clerkBody, false},
		{"503 from a gateway", http.StatusServiceUnavailable, page, false},
		{"500 from Clerk", http.StatusInternalServerError, clerkBody, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			emu := emulator.New(emulator.WithSecretKeys(testSecret))
			user := emu.CreateUser()
			sess := emu.CreateSessions(user, 1)[0]
			// The gateway passes each POST on to Clerk, then answers with
			// its own status and page instead of Clerk's answer.
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					emu.ServeHTTP(httptest.NewRecorder(), r)
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, tt.body)
					return
				}
				emu.ServeHTTP(w, r)
			}))
			t.Cleanup(gw.Close)
			c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(gw.URL+"/v1"))
			if err != nil {
				t.Fatal(err)
			}

			_, err = c.CreateSession(ctx, clerkapi.CreateParams{UserID: user})
			want := clerkapi.Retryable
			if tt.unconfirmed {
				want = clerkapi.Permanent
			}
			var apiErr *clerkapi.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("create: %v; want the gateway's HTTP %d as a *clerkapi.Error", err, tt.status)
			}
			if cl := clerkapi.ClassOf(err); cl != want || apiErr.Class() != want || errors.Is(err, clerkapi.ErrUnconfirmed) != tt.unconfirmed {
				t.Errorf("create: %v: class %v (Error.Class %v), ErrUnconfirmed %v; want %v and ErrUnconfirmed %v",
					err, cl, apiErr.Class(), errors.Is(err, clerkapi.ErrUnconfirmed), want, tt.unconfirmed)
			}

			_, err = c.RevokeSession(ctx, sess)
			if cl := clerkapi.ClassOf(err); cl != clerkapi.Retryable || errors.Is(err, clerkapi.ErrUnconfirmed) {
				t.Errorf("revoke: %v: class %v; want retryable, not ErrUnconfirmed (a revoke may be sent again)", err, cl)
			}
		})
	}
}
