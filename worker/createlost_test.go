package worker_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestCreateWhoseAnswerIsLostIsNotSentAgain: Clerk creates the session
// and the connection drops before its answer (a proxy's timeout, a reset).
// The transport error was retryable like any other, so the worker sent
// the create again and again, one more session each time. Once the
// request was sent, a lost answer is unconfirmed: the job is dead-lettered
// as permanent after one call, as a create answered 2xx without a session
// is.
func TestCreateWhoseAnswerIsLostIsNotSentAgain(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	env.StartWorker(t, func(c *worker.Config) { c.Retry.DeliveryBudget = 2 * time.Second })
	emu.SetFaults(emulator.Faults{DropAfterRate: 1})
	r, err := requestAll(env, &jobs.CreateArgs{UserID: user}, 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(emu.UserSessionIDs(user)); n != 1 {
		t.Errorf("%d sessions created by one create job; want 1", n)
	}
	if r.Outcome != jobs.Failed || r.Error == nil || r.Error.Class != jobs.ClassPermanent {
		t.Errorf("outcome %s, error %+v; want failed, permanent (unconfirmed)", r.Outcome, r.Error)
	}
}

// callsTo counts the calls the emulator was asked to make of Clerk's
// operation op (emulator.OpCreateSession): what tests of a job that must
// not run twice count.
func callsTo(emu *emulator.Emulator, op string) int {
	n := 0
	for _, c := range emu.Calls() {
		if c.Op == op {
			n++
		}
	}
	return n
}
