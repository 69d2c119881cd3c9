package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// pagedClerk serves one user's sessions, newest first, with knobs for the
// answers a broken or hostile Clerk could give: pages capped below the
// limit asked, the offset ignored, a total_count that is not the list's.
type pagedClerk struct {
	clerkapi.Sessions // nil: only the calls below are made

	mu           sync.Mutex
	status       map[string]clerkapi.SessionStatus
	order        []string
	maxPage      int               // serve at most this many a page (0: the limit)
	ignoreOffset bool              // serve from the first session whatever the offset
	total        func(n int) int64 // total_count for n matching sessions (nil: n)
	lists        int               // ListSessions calls
	maxLists     int               // fail ListSessions after this many calls
}

var errTooManyLists = errors.New("the listing does not end")

func newPagedClerk(n int) *pagedClerk {
	c := &pagedClerk{status: map[string]clerkapi.SessionStatus{}, maxLists: 1000}
	for i := range n {
		id := fmt.Sprintf("sess_%05d", i)
		c.order = append(c.order, id)
		c.status[id] = clerkapi.StatusActive
	}
	return c
}

func (c *pagedClerk) ListSessions(_ context.Context, p clerkapi.ListParams) (*clerkapi.SessionList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lists++; c.lists > c.maxLists {
		return nil, errTooManyLists
	}
	var match []clerkapi.Session
	for _, id := range c.order {
		if c.status[id] == p.Status {
			match = append(match, clerkapi.Session{ID: id, Status: p.Status})
		}
	}
	off, limit := p.Offset, p.Limit
	if c.ignoreOffset {
		off = 0
	}
	if c.maxPage > 0 {
		limit = min(limit, c.maxPage)
	}
	page := match[min(off, len(match)):min(off+limit, len(match))]
	total := int64(len(match))
	if c.total != nil {
		total = c.total(len(match))
	}
	return &clerkapi.SessionList{Data: page, TotalCount: total}, nil
}

func (c *pagedClerk) RevokeSession(_ context.Context, id string) (*clerkapi.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status[id] = clerkapi.StatusRevoked
	return &clerkapi.Session{ID: id, Status: clerkapi.StatusRevoked}, nil
}

type memStore struct {
	mu sync.Mutex
	m  map[string]*handlers.BulkProgress
}

func (s *memStore) Load(_ context.Context, id string) (*handlers.BulkProgress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id], nil
}

func (s *memStore) Save(_ context.Context, id string, p *handlers.BulkProgress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*handlers.BulkProgress{}
	}
	s.m[id] = p
	return nil
}

func (s *memStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func revokeAllWith(t *testing.T, c *pagedClerk, maxPasses int) (jobs.RevokeAllSummary, error) {
	t.Helper()
	h := handlers.RevokeAll{Clerk: c, Store: &memStore{}, MaxPasses: maxPasses,
		DeadLetter: func(context.Context, string, string, error) error { return nil }}
	out, err := h.Handle(context.Background(), &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "j1"}, UserID: "user_1"})
	if err != nil {
		return jobs.RevokeAllSummary{}, err
	}
	return out.Result.(jobs.RevokeAllSummary), nil
}

// TestRevokeAllListingEndsWhenClerkRepeatsAPage: a Clerk that ignores the
// offset, serving the same short page whatever is asked, while total_count
// says many more remain. Reading on while total_count says so then reads
// that page again and again, a Clerk call each, until the offset reaches
// total_count: here never (the fake fails the 1001st list call). A page
// that brings no session not seen yet must end the listing.
func TestRevokeAllListingEndsWhenClerkRepeatsAPage(t *testing.T) {
	c := newPagedClerk(3)
	c.ignoreOffset = true
	c.total = func(int) int64 { return 1 << 40 }
	sum, err := revokeAllWith(t, c, 3)
	if err != nil {
		t.Fatalf("revoke_all: %v (after %d list calls)", err, c.lists)
	}
	if sum.Revoked != 3 {
		t.Errorf("summary %+v; want 3 revoked", sum)
	}
	if c.lists > 10 {
		t.Errorf("%d list calls for 3 sessions", c.lists)
	}
}

// TestRevokeAllReadsOnPastAFullPage: a full page was never the last, and
// must not become the last because total_count (stale, or wrong) says the
// offset has reached it: that ends the listing at 500 of 1,200 sessions,
// and with one pass the job leaves 700 active.
func TestRevokeAllReadsOnPastAFullPage(t *testing.T) {
	c := newPagedClerk(1200)
	c.total = func(int) int64 { return 100 }
	sum, err := revokeAllWith(t, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Revoked != 1200 || sum.Remaining != 0 {
		t.Errorf("summary %+v; want 1200 revoked, 0 remaining", sum)
	}
}

// TestRevokeAllReadsEveryShortPage: pages capped below the limit are read
// on while total_count says more remain (the change under review), and an
// empty page or a missing total_count still ends the listing.
func TestRevokeAllReadsEveryShortPage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total func(int) int64
		want  int
	}{
		{"total_count", nil, 450},
		{"total_count too high", func(n int) int64 { return int64(n) * 1000 }, 450},
		{"no total_count", func(int) int64 { return -1 }, 200}, // a page a pass
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newPagedClerk(450)
			c.maxPage, c.total = 100, tc.total
			sum, err := revokeAllWith(t, c, 2)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Revoked != tc.want {
				t.Errorf("summary %+v; want %d revoked", sum, tc.want)
			}
		})
	}
}
