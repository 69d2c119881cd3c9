package clerkjobs_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestSubmitStoredInARecordStreamIsNotQueued: a client whose subject
// prefix is not the worker's can publish where a record stream captures
// (prefix sessions.results: sessions.results.revoke, which the results
// stream stores, and reads as a result of the old layout). JetStream
// acknowledged it, and Submit returned nil, "queued", for a job no worker
// would ever run; Request then waited its whole timeout and said the job
// "may still run". The acknowledgement names the stream: one of the
// record streams is not the jobs stream, and Submit and Request say the
// job was not queued.
func TestSubmitStoredInARecordStreamIsNotQueued(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	ctx := testContext(t, 30*time.Second)
	for _, prefix := range []string{"sessions.results", "sessions.dlq"} {
		t.Run(prefix, func(t *testing.T) {
			c := newClient(t, env, clerkjobs.WithSubjectPrefix(prefix), clerkjobs.WithTimeout(5*time.Second))
			for range 2 { // the second refused by the record stream: one message a subject
				s, err := c.Submit(ctx, &jobs.RevokeArgs{SessionID: "sess_1"})
				if !errors.Is(err, clerkjobs.ErrUnavailable) || !errors.Is(err, jobs.ErrStoredAsRecord) || !strings.Contains(err.Error(), "NOT queued") || strings.Contains(err.Error(), "is full") {
					t.Fatalf("Submit = %+v, %v; want ErrUnavailable saying the job was NOT queued", s, err)
				}
			}
			_, err := c.Request(ctx, &jobs.RevokeArgs{SessionID: "sess_1"})
			if !errors.Is(err, clerkjobs.ErrUnavailable) || errors.Is(err, clerkjobs.ErrNoResult) {
				t.Fatalf("Request = %v; want ErrUnavailable, not a wait for a job no worker runs", err)
			}
		})
	}
}
