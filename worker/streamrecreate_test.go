package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestStreamDeletedAndCreatedAgainTakesJobs: an operator deletes the jobs
// stream and creates it again (`nats stream rm`, then `nats stream add`),
// as a worker waits for jobs. The worker, told its consumer was deleted,
// created the stream at once, while the deletion was still under way, and
// NATS took both creations: the stream it was left with stored nothing
// more, and every job published to it timed out unanswered. Each round
// lost the race about one time in three; eight rounds in a row must store
// and run their job.
func TestStreamDeletedAndCreatedAgainTakesJobs(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 8)
	env.StartWorker(t)
	for i, id := range ids {
		testenv.RecreateStream(t, env.JS, env.Topology.JobsStream)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := env.JS.Publish(ctx, "sessions.revoke", []byte(`{"session_id":"`+id+`"}`))
		cancel()
		if err != nil {
			t.Fatalf("round %d: the stream created again refused a job: %v", i+1, err)
		}
		testenv.Eventually(t, 30*time.Second, fmt.Sprintf("round %d: the session revoked", i+1), func() bool {
			s, _ := emu.Session(id)
			return s.Status == clerkapi.StatusRevoked
		})
	}
}
