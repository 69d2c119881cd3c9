package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// panicOnRevoke is the emulator's client, over HTTP, whose RevokeSession
// panics on its nth call (a bug in a Sessions implementation the worker
// is given), and which counts the revokes still running.
type panicOnRevoke struct {
	*clerkapi.Client
	nth      int64
	calls    atomic.Int64
	inFlight atomic.Int64
}

func (c *panicOnRevoke) RevokeSession(ctx context.Context, id string) (*clerkapi.Session, error) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	if c.calls.Add(1) == c.nth {
		panic("the Sessions implementation broke while revoking " + id)
	}
	return c.Client.RevokeSession(ctx, id)
}

// TestRevokeAllPanicInARevokeIsTheJobsError: a panic of the Clerk client
// in one of revoke_all's revoke goroutines is not the recovered handler's
// panic of a single job: it killed the whole worker (every job in flight
// with it), and the redelivered job killed the next one. It is now the
// job's error, as any handler's panic (dead-lettered as permanent), raised
// only once every revoke of the job has returned: nothing revokes for a
// job already settled.
func TestRevokeAllPanicInARevokeIsTheJobsError(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 40)
	clerk := &panicOnRevoke{Client: env.ClerkClient(t, ""), nth: 5}
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	cfg.Bulk.Concurrency = 4
	env.StartWorkerWith(t, clerk, cfg)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "panics"}, UserID: user})
	if n := clerk.inFlight.Load(); n != 0 {
		t.Errorf("%d revokes still running once the job is answered", n)
	}
	if r.Outcome == jobs.Succeeded || r.Error == nil || !strings.Contains(r.Error.Message, "panicked") {
		t.Fatalf("outcome %s, error %+v, summary %+v: want the job failed by the panic", r.Outcome, r.Error, sum)
	}
	testenv.Eventually(t, 10*time.Second, "the job dead-lettered", func() bool { _, ok := deadLetters(t, env)["panics"]; return ok })
	if dl := deadLetters(t, env)["panics"]; dl.Error.Class != jobs.ClassPermanent {
		t.Errorf("dead letter %+v: want permanent", dl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := env.Client.Request(ctx, &jobs.GetArgs{Common: jobs.Common{JobID: "after"}, SessionID: emu.CreateSessions(user, 1)[0]}); err != nil {
		t.Fatalf("the worker does not run jobs after the panic: %v", err)
	}
}

// TestRevokeAllPanicAfterARefusedLockSaysNotLocked: a lock_user job whose
// lock Clerk refused, then whose revokes panicked, ended dead-lettered as
// "the handler panicked: …" alone: its letter, the job's last word, no
// longer said that the user is NOT locked, as every other failure of such
// a job does.
func TestRevokeAllPanicAfterARefusedLockSaysNotLocked(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 10)
	emu.FailUser(user, 403)
	clerk := &panicOnRevoke{Client: env.ClerkClient(t, ""), nth: 3}
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	cfg.Bulk.Concurrency = 2
	env.StartWorkerWith(t, clerk, cfg)
	r, _, _ := revokeAll(t, env, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "panics-unlocked"}, UserID: user, LockUser: true})
	if r.Outcome == jobs.Succeeded || r.Error == nil {
		t.Fatalf("result %+v: want the job failed", r)
	}
	testenv.Eventually(t, 10*time.Second, "the job dead-lettered", func() bool { _, ok := deadLetters(t, env)["panics-unlocked"]; return ok })
	for name, info := range map[string]jobs.ErrorInfo{"reply": *r.Error, "dead letter": deadLetters(t, env)["panics-unlocked"].Error} {
		if !strings.Contains(info.Message, "user NOT locked (Clerk refused the lock, HTTP 403)") || !strings.Contains(info.Message, "panicked") {
			t.Errorf("%s says %q: want the panic and the user NOT locked", name, info.Message)
		}
	}
}
