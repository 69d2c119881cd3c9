package worker_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestRefreshWhoseAnswerIsLostIsNotSentAgain: Clerk carries out the
// refresh and the connection drops before its answer. The refresh token
// may be spent by then; the worker sent it again and again, at each
// backoff and delivery. Once the request was sent whole, a lost answer is
// unconfirmed: the job fails as permanent after one call (its requester
// must sign in again or retry with what it holds).
func TestRefreshWhoseAnswerIsLostIsNotSentAgain(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t, func(c *worker.Config) { c.Retry.DeliveryBudget = 2 * time.Second })
	emu.SetFaults(emulator.Faults{DropAfterRate: 1})
	r, err := requestAll(env, &jobs.RefreshArgs{SessionID: id, ExpiredToken: emu.SessionToken(id, -time.Minute),
		RefreshToken: emu.RefreshToken(id), RequestOrigin: "https://app.example"}, 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := callsTo(emu, emulator.OpRefreshSession)
	if n != 1 {
		t.Errorf("the refresh was sent %d times; want once", n)
	}
	if r.Outcome != jobs.Failed || r.Error == nil || r.Error.Class != jobs.ClassPermanent {
		t.Errorf("outcome %s, error %+v; want failed, permanent", r.Outcome, r.Error)
	}
}
