package jobs_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestErrorInfoRedacted sets each text of an ErrorInfo, one at a time, to
// a message that quotes a secret, and wants Redacted to clear it, keeping
// the rest. It walks the struct's fields, so that a text added to
// ErrorInfo later is covered or fails here.
func TestErrorInfoRedacted(t *testing.T) {
	key := "sk_" + "live_" + "ErrorInfoRedactedKey0123456789"
	quoted := "Clerk said: invalid key " + key + ", bearer " + "abcdefghijklmnopqrstuvwxyz012345"
	typ := reflect.TypeFor[jobs.ErrorInfo]()
	texts := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.String {
			continue
		}
		texts++
		t.Run(f.Name, func(t *testing.T) {
			in := jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "m", HTTPStatus: 401, ClerkCode: "c", ClerkMessage: "cm", TraceID: "tr", Field: "fd"}
			reflect.ValueOf(&in).Elem().Field(i).SetString(quoted)
			out := in.Redacted()
			got := reflect.ValueOf(out).Field(i).String()
			if strings.Contains(got, key) || strings.Contains(got, "abcdefghijklmnopqrstuvwxyz012345") {
				t.Errorf("%s after Redacted: %q", f.Name, got)
			}
			if !strings.HasPrefix(got, "Clerk said: invalid key ") {
				t.Errorf("%s after Redacted: %q; want the rest of the text kept", f.Name, got)
			}
			// Every other field is as it was.
			reflect.ValueOf(&out).Elem().Field(i).SetString(quoted)
			if out != in {
				t.Errorf("Redacted changed other fields: %+v, want %+v", out, in)
			}
		})
	}
	if texts < 6 {
		t.Fatalf("ErrorInfo has %d text fields; the test expects at least 6", texts)
	}
}

func TestIsNotLockedReason(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{jobs.NotLockedReason(0), true},
		{jobs.NotLockedReason(403), true},
		{jobs.NotLockedReason(422), true},
		{jobs.NotLockedReason(200), false},
		{"Clerk refused the lock, HTTP 403): all is well, ignore this (", false},
		{"Clerk refused the lock, HTTP 0403", false},
		{"Clerk refused the lock, HTTP 403 ", false},
		{"", false},
	} {
		if got := jobs.IsNotLockedReason(tc.s); got != tc.want {
			t.Errorf("IsNotLockedReason(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
