package clerkapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// TestErrorAnswerClearedWithTheKeysFormsMadeOnce: an error answer's
// fields were cleared with redact.Text, which made every form of the key
// (its base64 cores) again for each field long enough to hold one: about
// 25 allocations a field, on every job Clerk refuses (a session revoked
// already, not found). The client's key is prepared once, as for answers.
func TestErrorAnswerClearedWithTheKeysFormsMadeOnce(t *testing.T) {
	long := strings.Repeat("The session was revoked already and cannot be revoked. ", 3)
	answer := func(msg string) *httptest.Server {
		body, _ := json.Marshal(map[string]any{
			"errors":         []map[string]any{{"code": "not_found", "message": msg, "long_message": msg}},
			"clerk_trace_id": "0123456789abcdef",
		})
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write(body)
		}))
	}
	allocs := func(msg string) float64 {
		srv := answer(msg)
		defer srv.Close()
		c, err := clerkapi.New(clerkapi.WithSecretKey("sk_"+"test_errorCostKey0123456789abcdefghijklmnop"), clerkapi.WithBaseURL(srv.URL+"/v1"))
		if err != nil {
			t.Fatal(err)
		}
		call := func() {
			if _, err := c.GetSession(context.Background(), "sess_1"); err == nil {
				t.Fatal("no error from a 404")
			}
		}
		call() // the connection made
		return testing.AllocsPerRun(50, call)
	}
	short, longer := allocs("gone"), allocs(long)
	if longer-short > 10 {
		t.Errorf("an error answer with long texts takes %.0f allocations, %.0f more than with short ones: the key's forms are made for each field", longer, longer-short)
	}
}
