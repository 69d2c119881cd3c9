package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestCreateWaitingForItsRecordAtShutdownIsNotRunAgain: a create is
// carried out, and JetStream refuses its result, so the outcome waits in
// the worker, which is then stopped. The job was naked with the outcomes
// never recorded and the next worker created a second session. A create
// (or refresh) done is dead-lettered as permanent instead, as one cut by
// the shutdown is, naming the session made.
func TestCreateWaitingForItsRecordAtShutdownIsNotRunAgain(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ctx := context.Background()
	first := env.StartWorker(t, func(c *worker.Config) { c.DrainTimeout = 500 * time.Millisecond })
	if _, err := env.JS.Publish(ctx, env.Topology.Subjects.ResultFilter()[:len(env.Topology.Subjects.ResultFilter())-1]+"filler", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	testenv.FillStream(t, env.JS, env.Topology.ResultsStream)
	env.Publish(t, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: "create-parked"}})
	testenv.Eventually(t, 10*time.Second, "the create's outcome waits", func() bool {
		err := first.Worker.Ready()
		return err != nil && strings.Contains(err.Error(), "outcomes wait")
	})
	first.Stop(t)
	env.StartWorker(t) // its start sets the results stream's limits back
	testenv.Eventually(t, 20*time.Second, "the job settled", func() bool {
		return env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	time.Sleep(500 * time.Millisecond)
	n := callsTo(emu, emulator.OpCreateSession)
	if n != 1 || len(emu.UserSessionIDs(user)) != 1 {
		t.Errorf("the create was sent %d times, %d sessions; want once, one", n, len(emu.UserSessionIDs(user)))
	}
	dl, ok := deadLetters(t, env)["create-parked"]
	if !ok || dl.Error.Class != jobs.ClassPermanent {
		t.Fatalf("dead letter %+v (stored %v); want a permanent one", dl.Error, ok)
	}
	// The result was never stored: the dead letter is the only record of
	// the session Clerk made, which an operator otherwise looks for among
	// the user's sessions.
	if ids := emu.UserSessionIDs(user); len(ids) == 1 && !strings.Contains(dl.Error.Message, ids[0]) {
		t.Errorf("the dead letter does not name the session made, %s: %q", ids[0], dl.Error.Message)
	}
}
