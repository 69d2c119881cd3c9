package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// Lockout durations.
const (
	// DefaultLockoutDuration is how long a lock holds unless
	// WithLockoutDuration says otherwise: Clerk's default, set in the
	// dashboard's Attack protection settings.
	DefaultLockoutDuration = time.Hour
	// IndefiniteLockout, given to WithLockoutDuration, makes locks hold
	// until unlocked, as Clerk's "Indefinite lockout" setting does; a
	// locked user's lockout_expires_in_seconds is then null.
	IndefiniteLockout time.Duration = -1
)

// WithLockoutDuration sets the instance's lockout duration: how long a
// lock (POST /v1/users/{id}/lock) holds before it ends on its own. 0 means
// DefaultLockoutDuration; IndefiniteLockout (any negative duration) means
// until unlocked. Locks end by the emulator's clock (WithClock), so a test
// can let one expire without waiting.
func WithLockoutDuration(d time.Duration) Option {
	return func(e *Emulator) { e.lockout = d }
}

// userLock is a user's lock. A lock whose end has passed no longer holds;
// it is not cleared, only ignored, so nothing has to run when it ends.
type userLock struct {
	set   bool      // locked, and not unlocked since
	until time.Time // when it ends; zero: never
	count int       // LockUser calls answered 200
}

func (l userLock) holds(now time.Time) bool {
	return l.set && (l.until.IsZero() || now.Before(l.until))
}

// expiresIn is lockout_expires_in_seconds: the whole seconds left, rounded
// up so that a lock that holds never says 0, or nil when the lock does not
// hold or never ends.
func (l userLock) expiresIn(now time.Time) *int64 {
	if !l.holds(now) || l.until.IsZero() {
		return nil
	}
	secs := ceilSeconds(l.until.Sub(now))
	return &secs
}

// lockEnd is when a lock made at now ends; zero for an indefinite one.
func (e *Emulator) lockEnd(now time.Time) time.Time {
	switch d := e.lockout; {
	case d < 0:
		return time.Time{}
	case d == 0:
		return now.Add(DefaultLockoutDuration)
	default:
		return now.Add(d)
	}
}

// view returns the user as clerkapi decodes it. Callers hold e.mu.
func (u *userRec) view(now time.Time) clerkapi.User {
	v := clerkapi.User{
		Object:                  "user",
		ID:                      u.id,
		Locked:                  u.lock.holds(now),
		LockoutExpiresInSeconds: u.lock.expiresIn(now),
		CreatedAt:               u.createdAt,
		UpdatedAt:               u.updatedAt,
	}
	if u.lastSignIn != 0 {
		t := u.lastSignIn
		v.LastSignInAt = &t
	}
	return v
}

// userBody is Clerk's User object with every field its schema requires:
// what clerkapi.User has, followed by userRest, the rest as an emulated
// user has it (no names, email addresses, factors or metadata).
type userBody struct{ clerkapi.User }

const userRest = `"username":null,"first_name":null,"last_name":null,"has_image":false,` +
	`"primary_email_address_id":null,"primary_phone_number_id":null,"primary_web3_wallet_id":null,` +
	`"password_enabled":false,"two_factor_enabled":false,"totp_enabled":false,"backup_code_enabled":false,` +
	`"email_addresses":[],"phone_numbers":[],"web3_wallets":[],"passkeys":[],"external_accounts":[],` +
	`"saml_accounts":[],"enterprise_accounts":[],"public_metadata":{},"verification_attempts_remaining":null,` +
	`"delete_self_enabled":true,"create_organization_enabled":true,` +
	`"last_active_at":null,"mfa_enabled_at":null,"mfa_disabled_at":null,"legal_accepted_at":null`

// MarshalJSON writes the User object with userRest before its closing
// brace.
func (u userBody) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(u.User)
	if err != nil {
		return nil, err
	}
	return append(append(b[:len(b)-1], ','), userRest+"}"...), nil
}

func (e *Emulator) userNotFound(id string) reply {
	return e.notFound("No user was found with id " + text.Truncate(id, 64) + ".")
}

// handleLock serves LockUser and UnlockUser. Locking a locked user locks
// it again from now (a new full lockout duration); unlocking a user who is
// not locked changes nothing. Either answers the user.
func (e *Emulator) handleLock(r *http.Request, rt route, _ keyInfo) reply {
	if b := e.readObject(r); b.bad != nil {
		return *b.bad
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	u := e.st.users[rt.userID]
	if u == nil {
		return e.userNotFound(rt.userID)
	}
	switch {
	case rt.op == OpLockUser:
		u.lock = userLock{set: true, until: e.lockEnd(now), count: u.lock.count + 1}
		u.updatedAt = max(now.UnixMilli(), u.updatedAt)
	case u.lock.set:
		u.lock.set, u.lock.until = false, time.Time{}
		u.updatedAt = max(now.UnixMilli(), u.updatedAt)
	}
	return reply{status: http.StatusOK, body: userBody{u.view(now)}}
}

// lockRefusal is the answer to a sign-in while the user's lock holds: 403
// with the code Clerk's frontend SDKs test for, user_locked, and
// meta.lockout_expires_in_seconds (null for an indefinite lock). Callers
// hold e.mu.
func (e *Emulator) lockRefusal(u *userRec, now time.Time) (reply, bool) {
	if !u.lock.holds(now) {
		return reply{}, false
	}
	left := u.lock.expiresIn(now)
	long := "This account is locked until an administrator unlocks it."
	if left != nil {
		long = "This account is locked for another " + strconv.FormatInt(*left, 10) + " seconds."
	}
	return e.fail(http.StatusForbidden, "user_locked", "Account locked", long,
		map[string]any{"lockout_expires_in_seconds": left}), true
}

// signIn creates n sessions for the user as CreateSessions describes,
// unless the user's lock holds: then it creates nothing and returns the
// refusal.
func (e *Emulator) signIn(userID string, n int) ([]string, reply, bool) {
	if n <= 0 || userID == "" {
		return nil, reply{}, true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.st.users[userID]; u != nil {
		if rep, locked := e.lockRefusal(u, e.now()); locked {
			return nil, rep, false
		}
	}
	recs := e.createSessionsLocked(userID, n, "")
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.s.ID
	}
	return ids, reply{}, true
}

// User returns the user as LockUser would answer it now, and whether the
// user exists.
func (e *Emulator) User(id string) (clerkapi.User, bool) {
	now := e.now()
	return lookup(e, e.st.users, id, func(u *userRec) clerkapi.User { return u.view(now) })
}

// LockedUntil reports whether the user's lock holds now, by the emulator's
// clock, and when it ends: the zero time for an indefinite lock. An unknown
// user is not locked.
func (e *Emulator) LockedUntil(userID string) (until time.Time, locked bool) {
	now := e.now()
	lock, _ := lookup(e, e.st.users, userID, func(u *userRec) userLock { return u.lock })
	if !lock.holds(now) {
		return time.Time{}, false
	}
	return lock.until, true
}

// LockCount returns how many LockUser calls for the user were answered 200
// (including answers lost to DropAfterRate). A count above 1 means the user
// was locked more than once, each time for a new full lockout duration.
func (e *Emulator) LockCount(userID string) int {
	n, _ := lookup(e, e.st.users, userID, func(u *userRec) int { return u.lock.count })
	return n
}

// FailUser makes every API call naming the user in its path (LockUser,
// UnlockUser) fail with status, as FailSession does for a session, until
// FailUser is called again with status 0. The user need not exist. 403 is
// the refusal the spec lists for a lock on an instance whose settings do
// not allow locking (AuthorizationInvalid; code authorization_invalid).
// Statuses outside 400..599 other than 0 are ignored.
func (e *Emulator) FailUser(userID string, status int) {
	e.setFailure(e.st.userFails, userID, status)
}

// userState is GET /_emulator/users/{id}: the user as Clerk answers it,
// and when its lock ends as a time (null unless a lock holds and ends).
type userState struct {
	User        userBody   `json:"user"`
	LockedUntil *time.Time `json:"locked_until"`
	LockCount   int        `json:"lock_count"`
	FailStatus  int        `json:"fail_status"`
}

func (e *Emulator) userState(id string) (userState, bool) {
	now := e.now()
	return lookup(e, e.st.users, id, func(u *userRec) userState {
		st := userState{User: userBody{u.view(now)}, LockCount: u.lock.count, FailStatus: e.st.userFails[id]}
		if u.lock.holds(now) && !u.lock.until.IsZero() {
			until := u.lock.until.UTC()
			st.LockedUntil = &until
		}
		return st
	})
}
