package worker_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// signOutMidList is the emulator's client, over HTTP, with one thing
// happening outside the job: right after the first page of the user's
// sessions is served, the session end signs out (it ends) and Clerk
// cleans it up, so that it leaves the listing, as Clerk's description of
// GetSessionList says old and inactive sessions do. revoke_all lists
// every status, so a session that only ends stays listed in its place.
type signOutMidList struct {
	*clerkapi.Client
	emu  *emulator.Emulator
	user string
	end  string
	once sync.Once
}

func (c *signOutMidList) ListSessions(ctx context.Context, p clerkapi.ListParams) (*clerkapi.SessionList, error) {
	page, err := c.Client.ListSessions(ctx, p)
	if err == nil && p.UserID == c.user && p.Status != clerkapi.StatusRevoked && p.Offset == 0 && len(page.Data) == p.Limit {
		c.once.Do(func() {
			if serr := c.emu.SetSessionStatus(c.end, clerkapi.StatusEnded); serr != nil {
				panic(serr)
			}
			if serr := c.emu.CleanUpSession(c.end); serr != nil {
				panic(serr)
			}
		})
	}
	return page, err
}

// TestRevokeAllMissesNoSessionWhenOneEndsWhileListing: the sessions are
// listed by offset, newest first. A session that leaves the listing
// between two pages (ended and cleaned up) moves every older one a place
// forward, and the one that was first on
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

// oddPages is the emulator's client, over HTTP, with the answers a broken
// or hostile Clerk could give to a listing: pages capped below the limit
// asked (max), the offset ignored, a total_count that is not the list's.
type oddPages struct {
	*clerkapi.Client
	max          int               // serve at most this many a page (0: the limit)
	ignoreOffset bool              // serve from the first session whatever the offset
	total        func(int64) int64 // total_count from the true one (nil: as it is)
	lists        atomic.Int64      // ListSessions calls
}

func (c *oddPages) ListSessions(ctx context.Context, p clerkapi.ListParams) (*clerkapi.SessionList, error) {
	if c.lists.Add(1) > 1000 {
		return nil, errors.New("the listing does not end: 1000 list calls")
	}
	if c.ignoreOffset {
		p.Offset = 0
	}
	page, err := c.Client.ListSessions(ctx, p)
	if err != nil {
		return nil, err
	}
	if c.max > 0 && len(page.Data) > c.max {
		page.Data = page.Data[:c.max]
	}
	if c.total != nil {
		page.TotalCount = c.total(page.TotalCount)
	}
	return page, nil
}

// revokeAllThrough runs a revoke_all job of n sessions through a worker
// whose Clerk client is clerk (wrapping the emulator's) and which makes at
// most passes list-and-revoke passes. It returns the summary and how many
// of the sessions are still active.
func revokeAllThrough(t *testing.T, n, passes int, clerk func(*clerkapi.Client) clerkapi.Sessions) (jobs.RevokeAllSummary, int) {
	t.Helper()
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, n)
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	cfg.Bulk.MaxPasses = passes
	env.StartWorkerWith(t, clerk(env.ClerkClient(t, "")), cfg)
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
	return sum, active
}

// TestRevokeAllReadsEveryShortPage: a page shorter than the limit asked
// for is not the last while total_count says more remain. Before, each
// listing stopped at its first page of 100, and the job's three passes
// left 150 of 450 sessions active. An empty page, or a short one without
// a total_count, still ends a listing.
func TestRevokeAllReadsEveryShortPage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		passes int
		total  func(int64) int64
		want   int
	}{
		{"total_count", 3, nil, 450},
		{"total_count too high", 2, func(n int64) int64 { return n * 1000 }, 450},
		{"no total_count", 2, func(int64) int64 { return -1 }, 450},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum, active := revokeAllThrough(t, 450, tc.passes, func(c *clerkapi.Client) clerkapi.Sessions {
				return &oddPages{Client: c, max: 100, total: tc.total}
			})
			if sum.Revoked != tc.want || active != 450-tc.want {
				t.Fatalf("%d of 450 sessions still active after the job (summary %+v); want %d revoked", active, sum, tc.want)
			}
		})
	}
}

// TestRevokeAllListingEndsWhenClerkRepeatsAPage: a Clerk that ignores the
// offset, serving the same short page whatever is asked, while total_count
// says many more remain. Reading on while total_count says so read that
// page again and again, a Clerk call each, without end. A page that brings
// no session not seen yet ends the listing.
func TestRevokeAllListingEndsWhenClerkRepeatsAPage(t *testing.T) {
	clerk := &oddPages{ignoreOffset: true, total: func(int64) int64 { return 1 << 40 }}
	sum, active := revokeAllThrough(t, 3, 3, func(c *clerkapi.Client) clerkapi.Sessions { clerk.Client = c; return clerk })
	if sum.Revoked != 3 || active != 0 {
		t.Errorf("summary %+v, %d active; want 3 revoked", sum, active)
	}
	if n := clerk.lists.Load(); n > 10 {
		t.Errorf("%d list calls for 3 sessions", n)
	}
}

// TestRevokeAllReadsOnPastAFullPage: a full page is never the last, even
// when total_count (stale, or wrong) says the offset has reached it: that
// ended the listing at 500 of 1,200 sessions, and with one pass the job
// left 700 active.
func TestRevokeAllReadsOnPastAFullPage(t *testing.T) {
	sum, active := revokeAllThrough(t, 1200, 1, func(c *clerkapi.Client) clerkapi.Sessions {
		return &oddPages{Client: c, total: func(int64) int64 { return 100 }}
	})
	if sum.Revoked != 1200 || sum.Remaining != 0 || active != 0 {
		t.Errorf("summary %+v, %d active; want 1200 revoked, 0 remaining", sum, active)
	}
}
