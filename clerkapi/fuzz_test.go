package clerkapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/redact"
)

// FuzzParseError feeds arbitrary statuses, Retry-After values and bodies to
// the error parser. Invariants: it never panics, keeps the status and the
// operation, never yields a negative or absurd Retry-After, classifies into
// one of the three classes, and formats without panicking.
func FuzzParseError(f *testing.F) {
	f.Add(429, "1", []byte(`{"errors":[{"message":"Too many requests","long_message":"slow down","code":"too_many_requests","meta":{}}],"meta":{},"clerk_trace_id":"abc"}`), false)
	f.Add(401, "", []byte(`{"errors":[{"code":"refresh_token_not_found"}]}`), true)
	f.Add(502, "", []byte(`<html>bad gateway</html>`), false)
	f.Add(503, "NaN", []byte(``), false)
	f.Add(500, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{"errors":null}`), false)
	f.Add(0, "-5", []byte(`{"errors":[{}, {"code":"resource_locked"}]}`), false)
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte, refresh bool) {
		op := opRevoke
		if refresh {
			op = opRefresh
		}
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		e := parseError(op, status, h, body, redact.Known{})
		if e == nil {
			t.Fatal("nil *Error")
		}
		if e.StatusCode != status || e.Op != op {
			t.Fatalf("status %d op %q, want %d %q", e.StatusCode, e.Op, status, op)
		}
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Fatalf("RetryAfter %v for %q", e.RetryAfter, retryAfter)
		}
		switch c := e.Class(); c {
		case Retryable, Permanent, Systemic:
		default:
			t.Fatalf("class %v", c)
		}
		if ClassOf(fmt.Errorf("wrapped: %w", e)) != e.Class() {
			t.Fatal("ClassOf disagrees with Class through wrapping")
		}
		s := e.Error()
		if !strings.Contains(s, op) || !strings.Contains(s, fmt.Sprint(status)) {
			t.Fatalf("Error() %q lacks op or status", s)
		}
		_, _, _ = e.Code(), e.Message(), e.HasCode("x")
		if d := parseRetryAfter(retryAfter, time.Now()); d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v", retryAfter, d)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{" 10 ", 10 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"86400", 24 * time.Hour},
		// Longer is clamped, not discarded: discarded, it was the 1 s
		// pause of a 429 without Retry-After.
		{"86401", 24 * time.Hour},
		{"1e9", 24 * time.Hour},
		{"1e400", 24 * time.Hour}, // beyond float64: +Inf
		{"Inf", 24 * time.Hour},
		{"1e-400", 0},
		{"-3", 0},
		{"NaN", 0}, // once gave a large negative duration
		{"-Inf", 0},
		{"soon", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
