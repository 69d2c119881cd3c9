package clerkapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// maxCallAlloc is what one call may allocate: a few times the body, which
// is read whole (16 MiB at most), with room for the race detector's own
// allocations (67 to 75 MiB under -race). Unbounded, the same answers took
// 436 MiB to 4.4 GiB.
const maxCallAlloc = 10 * 16 << 20

// answering is a client of a server that answers every request with
// status and body.
func answering(t *testing.T, status int, body []byte) *clerkapi.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allocWithin runs call, which reads an answer of size bytes, with the
// collector off, so that what it allocates is what it needed at once, and
// fails t when that is more than maxCallAlloc.
func allocWithin(t *testing.T, size int, call func()) {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	call()
	runtime.ReadMemStats(&after)
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB answer: %d MiB allocated", size>>20, n>>20)
	if n > maxCallAlloc {
		t.Errorf("reading a %d MiB answer allocated %d MiB; want at most %d MiB", size>>20, n>>20, maxCallAlloc>>20)
	}
}

// TestHugeAnswersAreReadWithinBounds: an answer is read up to 16 MiB, but
// what it decodes to was not bounded. A proxy's (or a broken Clerk's)
// answer of 15 MiB made of tiny entries ({} repeated) decoded to millions
// of error details, or of sessions: 1.5 GB allocated for one error answer,
// 4.4 GB for one list, for one call (a worker runs hundreds at once).
// Clerk sends a few error details and at most 500 sessions a page: only
// the first details are decoded, and a page of more than 500 entries is
// refused before it is decoded (a retryable error, as any answer that is
// not Clerk's).
func TestHugeAnswersAreReadWithinBounds(t *testing.T) {
	const entries = 5 << 20 // "{}," each: 15 MiB
	many := strings.Repeat(`{},`, entries) + `{}`
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"error details", http.StatusInternalServerError, `{"errors":[{"code":"internal_clerk_error","message":"oops"},` + many + `],"clerk_trace_id":"t1"}`, "HTTP 500 internal_clerk_error"},
		{"error meta", http.StatusInternalServerError, `{"errors":[{"code":"internal_clerk_error","message":"oops","meta":{"x":[` + many + `]}}]}`, "HTTP 500 internal_clerk_error"},
		{"bare list", http.StatusOK, `[` + many + `]`, "more than 500"},
		{"paginated list", http.StatusOK, `{"total_count":1,"data":[` + many + `]}`, "more than 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := answering(t, tc.status, []byte(tc.body))
			var err error
			allocWithin(t, len(tc.body), func() {
				_, err = c.ListSessions(context.Background(), clerkapi.ListParams{UserID: "user_1", Paginated: tc.name == "paginated list"})
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %.300v; want one saying %q", err, tc.want)
			}
			if got := clerkapi.ClassOf(err); got != clerkapi.Retryable {
				t.Errorf("class %s; want retryable", got)
			}
		})
	}
}

// TestHugeActorIsKeptAsItCame: a session's actor is free-form JSON. Decoded
// into maps and slices, a 15 MiB actor of {} repeated (a proxy's answer)
// took 876 MiB for one GetSession as a list, some 300 MiB as an object's
// members; it is now kept as the bytes that came. (A list of more than 500
// entries is refused, see TestHugeNestedListsAreRefused: these are
// members.)
func TestHugeActorIsKeptAsItCame(t *testing.T) {
	var actor strings.Builder
	actor.WriteString(`{"x":{"k":{}`)
	for i := range 1 << 20 {
		fmt.Fprintf(&actor, `,"k%d":{}`, i)
	}
	actor.WriteString(`}}`)
	body := []byte(`{"object":"session","id":"sess_1","status":"active","actor":` + actor.String() + `}`)
	c := answering(t, http.StatusOK, body)
	var s *clerkapi.Session
	var err error
	allocWithin(t, len(body), func() { s, err = c.GetSession(context.Background(), "sess_1") })
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Actor) != actor.Len() {
		t.Errorf("actor of %d bytes; want the %d that came", len(s.Actor), actor.Len())
	}
}

// TestHugeNestedListsAreRefused: a session's tasks (Clerk's are a few)
// decoded to 436 MiB from a 15 MiB answer of {} repeated, and a page of
// sessions holding such tasks to 382 MiB. No list in Clerk's answers holds
// more than 500 entries: one that does is refused before it is decoded
// (retryable, as any 2xx that is not Clerk's answer).
func TestHugeNestedListsAreRefused(t *testing.T) {
	tasks := func(n int) string { return `[` + strings.Repeat(`{"key":"k"},`, n) + `{"key":"k"}]` }
	for _, tc := range []struct {
		name string
		body string
		call func(c *clerkapi.Client) error
	}{
		{"session tasks", `{"object":"session","id":"sess_1","status":"active","tasks":` + tasks(5<<20/4) + `}`,
			func(c *clerkapi.Client) error { _, err := c.GetSession(context.Background(), "sess_1"); return err }},
		{"page of sessions with tasks", `[` + strings.Repeat(`{"id":"sess_1","user_id":"user_1","tasks":`+tasks(2000)+`},`, 499) + `{"id":"sess_2","user_id":"user_1"}]`,
			func(c *clerkapi.Client) error {
				_, err := c.ListSessions(context.Background(), clerkapi.ListParams{UserID: "user_1"})
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := answering(t, http.StatusOK, []byte(tc.body))
			var err error
			allocWithin(t, len(tc.body), func() { err = tc.call(c) })
			if err == nil || !strings.Contains(err.Error(), "more than 500") {
				t.Errorf("error %.300v; want one saying the list holds more than 500 entries", err)
			}
			if got := clerkapi.ClassOf(err); got != clerkapi.Retryable {
				t.Errorf("class %s; want retryable", got)
			}
		})
	}
}
