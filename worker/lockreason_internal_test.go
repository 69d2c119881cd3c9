package worker

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestLockRefusedReasonFitsTheLetter: the worker's reason for ending a
// revoke_all whose user is NOT locked comes after the job's error, and the
// dead letter's Dlq-Error keeps 1024 bytes. A revoke refused with a long
// message (Clerk's text, or a proxy's, of any length; stored apart as
// Dlq-Clerk-Message) pushed "refused with an authorization error although
// Clerk accepts the key", which came first before, out of the header.
func TestLockRefusedReasonFitsTheLetter(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	lr := &handlers.LockRefusedError{
		JobID:   long("j", jobs.MaxJobIDLen),
		Summary: jobs.RevokeAllSummary{UserID: "user_" + long("u", 123), Revoked: 99999, AlreadyGone: 99999, Failed: 99999, Excepted: 1000, Remaining: 99999},
		Err: &clerkapi.Error{Op: "LockUser", StatusCode: 403, TraceID: long("t", 64),
			Errors: []clerkapi.ErrorDetail{{Code: long("c", 64), Message: long("m", 400)}}},
		Run: fmt.Errorf("revoke_all %s: revoke session sess_1: %w", long("j", jobs.MaxJobIDLen), &clerkapi.Error{Op: "RevokeSession", StatusCode: 401, TraceID: long("t", 64),
			Errors: []clerkapi.ErrorDetail{{Code: "authentication_invalid", Message: long("p", 2000)}}}),
	}
	for _, reason := range []error{errRejectedJob, errors.New("gave up after 5 deliveries")} {
		err := withReason(reason, lr)
		header := text.Line(err.Error(), 1024)
		if !strings.HasPrefix(header, "user NOT locked (Clerk refused the lock, HTTP 403)") || !strings.Contains(header, reason.Error()) {
			t.Errorf("Dlq-Error ...%q (%d bytes of %d); want it to start with the user NOT locked and to say %q", header[max(0, len(header)-200):], len(header), len(err.Error()), reason)
		}
		if !errors.Is(err, reason) || clerkapi.ClassOf(err) != clerkapi.Systemic {
			t.Errorf("%v: lost its reason or the run's class", err)
		}
	}
}
