package worker_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestCreateCutByShutdownIsNotSentAgain: a worker stopped (drain timeout
// passed) while a create's request is with Clerk. The call is cut, and
// Clerk may have created the session; the job was naked as any job cut
// by a shutdown, and the next worker sent the create again. Such a job is
// now dead-lettered as permanent (unconfirmed), as a create whose answer
// was lost is.
func TestCreateCutByShutdownIsNotSentAgain(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(2*time.Second, 0))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	first := env.StartWorker(t, func(c *worker.Config) { c.DrainTimeout = 0 })
	env.Publish(t, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: "create-cut"}})
	testenv.Eventually(t, 5*time.Second, "the create in flight", func() bool { return first.Worker.Status().InFlight == 1 })
	time.Sleep(300 * time.Millisecond) // the request is with Clerk
	first.Stop(t)
	env.StartWorker(t)
	testenv.Eventually(t, 20*time.Second, "the job settled", func() bool {
		return len(env.Results(t))+int(env.StreamCount(t, env.Topology.DeadLetterStream)) == 1
	})
	creates := func() int { return callsTo(emu, emulator.OpCreateSession) }
	// The emulator takes the request in after its latency, whether or not
	// the client is still there, and creates the session: as Clerk would.
	testenv.Eventually(t, 5*time.Second, "the cut create handled", func() bool { return creates() >= 1 })
	time.Sleep(2500 * time.Millisecond) // the latency of a create sent again
	if n := creates(); n != 1 {
		t.Errorf("the create was sent %d times; want once", n)
	}
	if n := len(emu.UserSessionIDs(user)); n != 1 {
		t.Errorf("%d sessions for one create job; want 1", n)
	}
	if dl, ok := deadLetters(t, env)["create-cut"]; !ok || dl.Error.Class != jobs.ClassPermanent {
		t.Errorf("dead letter %+v (stored %v); want a permanent one", dl.Error, ok)
	}
}
