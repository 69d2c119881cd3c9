package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestLongestNamesAreCreated: the longest names Topology.Validate accepts
// are ones JetStream creates, so that its limits and the server's agree.
func TestLongestNamesAreCreated(t *testing.T) {
	env := testenv.New(t)
	top := testenv.TestTopology()
	top.Subjects.Prefix = "longest"
	top.JobsStream, top.ResultsStream, top.DeadLetterStream = strings.Repeat("J", 255), strings.Repeat("R", 255), strings.Repeat("D", 255)
	top.Consumer = strings.Repeat("c", 255)
	top.ProgressBucket, top.RateBucket = strings.Repeat("p", 252), strings.Repeat("r", 252)
	if err := top.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := top.Ensure(ctx, env.JS); err != nil {
		t.Fatalf("Ensure with the longest names Validate accepts: %v", err)
	}
}
