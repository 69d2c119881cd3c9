package clerkapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
