package emulator

import (
	"errors"
	"fmt"
	"slices"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// store holds users and sessions. It is guarded by Emulator.mu.
//
// Every session is indexed three ways: by id, under its user and under its
// client. The per-user and per-client slices are in creation order, which
// is also created_at order (stamps are strictly increasing), so newest
// first is a walk from the end and a page of an unfiltered list costs
// O(limit) whatever the user's session count. Per-user status counts make
// total_count O(1) for user + status filters.
type store struct {
	users     map[string]*userRec
	sessions  map[string]*sessionRec
	clients   map[string][]*sessionRec
	failures  map[string]int // session id -> forced HTTP status (FailSession)
	userFails map[string]int // user id -> forced HTTP status (FailUser)
	lastStamp int64          // last created_at handed out, Unix ms
}

type userRec struct {
	id       string
	sessions []*sessionRec // oldest first
	counts   map[clerkapi.SessionStatus]int

	createdAt, updatedAt int64 // Unix ms
	lastSignIn           int64 // created_at of the newest session, 0 for none
	lock                 userLock
}

type sessionRec struct {
	s       clerkapi.Session
	user    *userRec
	refresh string // the refresh token issued with the session
	revokes int    // revoke calls answered 200
	// cleanedUp: no longer listed (CleanUpSession), so no longer in its
	// user's and client's slices nor in its user's counts.
	cleanedUp bool
}

func newStore() store {
	return store{
		users:     map[string]*userRec{},
		sessions:  map[string]*sessionRec{},
		clients:   map[string][]*sessionRec{},
		failures:  map[string]int{},
		userFails: map[string]int{},
	}
}

// stamps reserves n strictly increasing millisecond timestamps, as close to
// nowMs as they can be without going back past earlier ones, and returns
// the first. A batch of n ends at nowMs when the clock allows, so seeding
// thousands of sessions does not push created_at into the future.
func (st *store) stamps(nowMs int64, n int) int64 {
	first := max(nowMs-int64(n)+1, st.lastStamp+1)
	st.lastStamp = first + int64(n) - 1
	return first
}

func (st *store) user(id string, nowMs int64) *userRec {
	u := st.users[id]
	if u == nil {
		u = &userRec{id: id, counts: map[clerkapi.SessionStatus]int{}, createdAt: nowMs, updatedAt: nowMs}
		st.users[id] = u
	}
	return u
}

// view returns a deep copy of the session, safe to use outside the lock.
func (r *sessionRec) view() clerkapi.Session {
	s := r.s
	if r.s.LastActiveOrganizationID != nil {
		org := *r.s.LastActiveOrganizationID
		s.LastActiveOrganizationID = &org
	}
	if r.s.LatestActivity != nil {
		a := *r.s.LatestActivity
		s.LatestActivity = &a
	}
	return s
}

func (r *sessionRec) setStatus(status clerkapi.SessionStatus, nowMs int64) {
	if r.s.Status == status {
		return
	}
	if !r.cleanedUp {
		r.user.counts[r.s.Status]--
		r.user.counts[status]++
	}
	r.s.Status = status
	r.s.UpdatedAt = max(nowMs, r.s.UpdatedAt)
}

// ended reports whether a session can no longer be used: any status but
// active and pending.
func ended(s clerkapi.SessionStatus) bool {
	return s != clerkapi.StatusActive && s != clerkapi.StatusPending
}

// createSessionsLocked creates n active sessions for the user (creating the
// user if needed). Each session gets its own client, as a sign-in on a new
// device would. Callers hold e.mu for writing.
func (e *Emulator) createSessionsLocked(userID string, n int, org string) []*sessionRec {
	nowMs := e.now().UnixMilli()
	u := e.st.user(userID, nowMs)
	first := e.st.stamps(nowMs, n)
	out := make([]*sessionRec, 0, n)
	for i := range n {
		created := first + int64(i)
		r := &sessionRec{user: u, refresh: e.randString(40)}
		r.s = clerkapi.Session{
			Object:       "session",
			ID:           e.newID("sess"),
			UserID:       userID,
			ClientID:     e.newID("client"),
			Status:       clerkapi.StatusActive,
			LastActiveAt: created,
			LatestActivity: &clerkapi.SessionActivity{
				Object:         "session_activity",
				ID:             e.newID("sess_activity"),
				DeviceType:     "Emulator",
				BrowserName:    "clerk-emulator",
				BrowserVersion: "1.0",
				IPAddress:      "127.0.0.1",
				City:           "Localhost",
				Country:        "ZZ",
			},
			ExpireAt:  created + SessionLifetime.Milliseconds(),
			AbandonAt: created + SessionAbandonAfter.Milliseconds(),
			UpdatedAt: created,
			CreatedAt: created,
		}
		if org != "" {
			o := org
			r.s.LastActiveOrganizationID = &o
		}
		e.st.sessions[r.s.ID] = r
		e.st.clients[r.s.ClientID] = append(e.st.clients[r.s.ClientID], r)
		u.sessions = append(u.sessions, r)
		u.counts[clerkapi.StatusActive]++
		out = append(out, r)
	}
	u.lastSignIn = first + int64(n) - 1
	return out
}

// CreateUser adds a user with a fresh id (user_ followed by 27 base62
// characters) and no sessions, and returns the id.
func (e *Emulator) CreateUser() string {
	id := e.newID("user")
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.st.users[id] != nil { // a seeded rng cannot collide, but be sure
		id = e.newID("user")
	}
	e.st.user(id, e.now().UnixMilli())
	return id
}

// CreateSessions adds n active sessions for the user and returns their ids,
// oldest first. An unknown user id is created, so tests may pick their own
// ids. Each session has its own client_id and a refresh token (see
// RefreshToken); their created_at values are strictly increasing, so the
// last id returned is the first one GET /v1/sessions lists. n <= 0 creates
// nothing. A locked user (see LockedUntil) gets no session and nil, as
// their sign-in would be refused.
func (e *Emulator) CreateSessions(userID string, n int) []string {
	ids, _, _ := e.signIn(userID, n)
	return ids
}

// Seed creates users, each with sessionsPerUser active sessions, and
// returns the user ids: demo data in one call.
func (e *Emulator) Seed(users, sessionsPerUser int) []string {
	ids := make([]string, 0, max(users, 0))
	for range users {
		id := e.CreateUser()
		e.CreateSessions(id, sessionsPerUser)
		ids = append(ids, id)
	}
	return ids
}

// lookup returns f of the record m holds for id, read under e.mu, and
// whether there is one (m is a map of e.st, which is never replaced).
func lookup[R, T any](e *Emulator, m map[string]*R, id string, f func(*R) T) (T, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if r := m[id]; r != nil {
		return f(r), true
	}
	var zero T
	return zero, false
}

// Session returns a copy of the session and whether it exists.
func (e *Emulator) Session(id string) (clerkapi.Session, bool) {
	return lookup(e, e.st.sessions, id, (*sessionRec).view)
}

// UserSessionIDs returns the ids of the user's sessions, newest first (the
// order GET /v1/sessions uses), or nil for an unknown user. Sessions taken
// out of the listing by CleanUpSession are left out, as the listing does.
func (e *Emulator) UserSessionIDs(userID string) []string {
	ids, _ := lookup(e, e.st.users, userID, func(u *userRec) []string {
		ids := make([]string, 0, len(u.sessions))
		for i := len(u.sessions) - 1; i >= 0; i-- {
			ids = append(ids, u.sessions[i].s.ID)
		}
		return ids
	})
	return ids
}

// ActiveSessionIDs returns the ids of the user's active sessions, in
// UserSessionIDs's order: what a revoke_all must leave empty.
func (e *Emulator) ActiveSessionIDs(userID string) []string {
	var active []string
	for _, id := range e.UserSessionIDs(userID) {
		if s, ok := e.Session(id); ok && s.Status == clerkapi.StatusActive {
			active = append(active, id)
		}
	}
	return active
}

// SetSessionStatus sets a session's status, e.g. to StatusEnded or
// StatusExpired to simulate what happens outside the API. It fails for an
// unknown session or status.
func (e *Emulator) SetSessionStatus(id string, status clerkapi.SessionStatus) error {
	if !validStatus(status, true) {
		return fmt.Errorf("emulator: unknown session status %q", status)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.st.sessions[id]
	if r == nil {
		return fmt.Errorf("emulator: %w %q", errNoSession, id)
	}
	if r.cleanedUp && !ended(status) {
		// Live again but listed nowhere: a state Clerk cannot be in.
		return fmt.Errorf("emulator: session %q was cleaned up (CleanUpSession) and cannot be %s again", id, status)
	}
	r.setStatus(status, e.now().UnixMilli())
	return nil
}

// errNoSession is the error of a control call about an unknown session.
var errNoSession = errors.New("no session")

// CleanUpSession takes an inactive session out of GET /v1/sessions, as
// Clerk's periodic clean-up does: its description of GetSessionList says
// "Old and inactive sessions are periodically cleaned up and will not be
// included in the results". The session is no longer listed, for its user
// or its client, nor counted in total_count, so the sessions listed after
// it move up one place: a client paging with offset while it happens skips
// one. Clerk does not say what the session's own paths answer once it is
// cleaned up; here they answer as before (GetSession, RevokeSession, …),
// and SetSessionStatus may give it another inactive status only. It
// fails for an unknown session and for an active or pending one, which
// Clerk does not clean up.
func (e *Emulator) CleanUpSession(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.st.sessions[id]
	switch {
	case r == nil:
		return fmt.Errorf("emulator: %w %q", errNoSession, id)
	case !ended(r.s.Status):
		return fmt.Errorf("emulator: session %q is %s: only inactive sessions are cleaned up", id, r.s.Status)
	case r.cleanedUp:
		return nil
	}
	r.cleanedUp = true
	r.user.sessions = slices.DeleteFunc(r.user.sessions, func(x *sessionRec) bool { return x == r })
	r.user.counts[r.s.Status]--
	if c := slices.DeleteFunc(e.st.clients[r.s.ClientID], func(x *sessionRec) bool { return x == r }); len(c) > 0 {
		e.st.clients[r.s.ClientID] = c
	} else {
		delete(e.st.clients, r.s.ClientID)
	}
	return nil
}

// RefreshToken returns the refresh token issued with the session (what
// RefreshSession's refresh_token must be), or "" for an unknown session.
func (e *Emulator) RefreshToken(sessionID string) string {
	tok, _ := lookup(e, e.st.sessions, sessionID, func(r *sessionRec) string { return r.refresh })
	return tok
}

// RevokeCount returns how many RevokeSession calls for the session were
// answered 200 (including idempotent repeats and answers lost to
// DropAfterRate). A count above 1 means the session was revoked more than
// once: a duplicate.
func (e *Emulator) RevokeCount(sessionID string) int {
	n, _ := lookup(e, e.st.sessions, sessionID, func(r *sessionRec) int { return r.revokes })
	return n
}

// FailSession makes every API call naming the session in its path (get,
// refresh, revoke, tokens) fail with status and a Clerk errors body whose
// code suits it (see the package documentation), until FailSession is
// called again with status 0. The session need not exist. Statuses outside
// 400..599 other than 0 are ignored.
func (e *Emulator) FailSession(sessionID string, status int) {
	e.setFailure(e.st.failures, sessionID, status)
}

// setFailure records (or, for status 0, clears) a forced status in m, a
// map of e.st.
func (e *Emulator) setFailure(m map[string]int, id string, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case status == 0:
		delete(m, id)
	case status >= 400 && status <= 599:
		m[id] = status
	}
}

// forced is the status FailSession or FailUser forces on a call about rt's
// session or user (0 for none), and the fault it is logged as.
func (e *Emulator) forced(rt route) (int, string) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if status := e.st.failures[rt.sessionID]; rt.sessionID != "" && status != 0 {
		return status, "fail_session"
	}
	if status := e.st.userFails[rt.userID]; rt.userID != "" && status != 0 {
		return status, "fail_user"
	}
	return 0, ""
}

func validStatus(s clerkapi.SessionStatus, allowPending bool) bool {
	switch s {
	case clerkapi.StatusActive, clerkapi.StatusRevoked, clerkapi.StatusEnded, clerkapi.StatusExpired,
		clerkapi.StatusRemoved, clerkapi.StatusAbandoned, clerkapi.StatusReplaced:
		return true
	case clerkapi.StatusPending:
		return allowPending
	}
	return false
}
