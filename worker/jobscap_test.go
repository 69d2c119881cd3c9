package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestWorkerCapsAnOlderJobsStream: a jobs stream made by a worker before
// the cap existed (no max_bytes) is capped when a worker starts, which
// says so in its log as for any setting it updates, and the job waiting in
// it is kept and run.
func TestWorkerCapsAnOlderJobsStream(t *testing.T) {
	env := testenv.New(t)
	old := env.Topology.JobsStreamConfig()
	old.MaxBytes = -1
	if _, err := env.JS.UpdateStream(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	sess := env.Clerk.Emulator.Seed(1, 1)
	id := env.Clerk.Emulator.UserSessionIDs(sess[0])[0]
	env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: "waiting-1"}, SessionID: id})

	env.StartWorker(t)
	s, err := env.JS.Stream(t.Context(), env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxBytes; got != env.Topology.JobsMaxBytes {
		t.Errorf("jobs stream max_bytes = %d after the worker started, want %d", got, env.Topology.JobsMaxBytes)
	}
	if log := env.Logs.String(); !strings.Contains(log, "max_bytes is -1, want") || !strings.Contains(log, "updated it") {
		t.Errorf("the worker's log does not say it capped the jobs stream:\n%s", log)
	}
	testenv.Eventually(t, 10*time.Second, "the waiting job ran", func() bool {
		for _, r := range env.Results(t) {
			if r.JobID == "waiting-1" {
				return true
			}
		}
		return false
	})
}
