package worker_test

import (
	"context"
	"sync"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// signOutMidList is the emulator's client, over HTTP, with one thing
// happening outside the job: right after the first page of the user's
// active sessions is served, the session end signs out (it ends), as a
// user or Clerk itself may do at any moment.
type signOutMidList struct {
	*clerkapi.Client
	emu  *emulator.Emulator
	user string
	end  string
	once sync.Once
}

func (c *signOutMidList) ListSessions(ctx context.Context, p clerkapi.ListParams) (*clerkapi.SessionList, error) {
	page, err := c.Client.ListSessions(ctx, p)
	if err == nil && p.UserID == c.user && p.Status == clerkapi.StatusActive && p.Offset == 0 && len(page.Data) == p.Limit {
		c.once.Do(func() {
			if serr := c.emu.SetSessionStatus(c.end, clerkapi.StatusEnded); serr != nil {
				panic(serr)
			}
		})
	}
	return page, err
}

// TestRevokeAllMissesNoSessionWhenOneEndsWhileListing: the sessions are
// listed by offset, newest first. A session that ends between two pages
// moves every older one a place forward, and the one that was first on
// the next page lands on the page already read: the listing never sees
// it. When that listing is the one that finds "nothing left", the job
// ends with the session active — even with lock_user, whose promise is
// that nothing is left. Here the user keeps 500 newer sessions
// (except_session_ids) and one older one must go.
func TestRevokeAllMissesNoSessionWhenOneEndsWhileListing(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 501) // oldest first
	target, keep := ids[0], ids[1:]
	clerk := &signOutMidList{Client: env.ClerkClient(t, ""), emu: emu, user: user, end: keep[len(keep)-1]}
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	env.StartWorkerWith(t, clerk, cfg)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, ExceptSessionIDs: keep, LockUser: true})
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("outcome %s: %+v", r.Outcome, r.Error)
	}
	if s, _ := emu.Session(target); s.Status != clerkapi.StatusRevoked {
		t.Fatalf("session %s is %s after the job (summary %+v): skipped", target, s.Status, sum)
	}
	if sum.Revoked != 1 {
		t.Errorf("summary %+v; want 1 revoked", sum)
	}
}

// cappedPages is the emulator's client, over HTTP, serving at most max
// sessions a page whatever the limit asked, with the total_count of the
// whole list: a Clerk that caps pages below its documented 500.
type cappedPages struct {
	*clerkapi.Client
	max int
}

func (c *cappedPages) ListSessions(ctx context.Context, p clerkapi.ListParams) (*clerkapi.SessionList, error) {
	page, err := c.Client.ListSessions(ctx, p)
	if err == nil && len(page.Data) > c.max {
		page.Data = page.Data[:c.max]
	}
	return page, err
}

// TestRevokeAllReadsEveryCappedPage: a page shorter than the limit asked
// for is not the last while total_count says more remain. Before, each
// listing stopped at its first page of 100, and the job's three passes
// left 150 of 450 sessions active.
func TestRevokeAllReadsEveryCappedPage(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 450)
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	env.StartWorkerWith(t, &cappedPages{Client: env.ClerkClient(t, ""), max: 100}, cfg)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("outcome %s: %+v", r.Outcome, r.Error)
	}
	active := 0
	for _, id := range ids {
		if s, _ := emu.Session(id); s.Status == clerkapi.StatusActive {
			active++
		}
	}
	if active != 0 || sum.Revoked != len(ids) {
		t.Fatalf("%d of %d sessions still active after the job (summary %+v)", active, len(ids), sum)
	}
}
