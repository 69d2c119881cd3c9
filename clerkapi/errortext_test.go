package clerkapi_test

import (
	"context"
	"net/http"
	"testing"
)

// TestErrorTextOfPartialDetails: an answer in Clerk's shape whose detail
// lacks a code or a message (a proxy's, or {"errors":[{}]}) read
// "clerk GetSession: HTTP 500 : ", a dangling separator in every dead
// letter and log line. Only what the detail holds is written.
func TestErrorTextOfPartialDetails(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"errors":[{}]}`, "clerk GetSession: HTTP 500"},
		{`{"errors":[{"code":"internal_clerk_error"}]}`, "clerk GetSession: HTTP 500 internal_clerk_error"},
		{`{"errors":[{"message":"Oops"}]}`, "clerk GetSession: HTTP 500: Oops"},
		{`{"errors":[{"code":"internal_clerk_error","message":"Oops"}],"clerk_trace_id":"t1"}`, "clerk GetSession: HTTP 500 internal_clerk_error: Oops (trace t1)"},
	} {
		_, err := answering(t, http.StatusInternalServerError, []byte(tc.body)).GetSession(context.Background(), "sess_1")
		if err == nil || err.Error() != tc.want {
			t.Errorf("answer %s: error %q; want %q", tc.body, err, tc.want)
		}
	}
}
