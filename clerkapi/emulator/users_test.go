package emulator_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkapi/internal/spectest"
)

// decodeUser decodes a 200 answer of LockUser or UnlockUser.
func decodeUser(t *testing.T, a answer) clerkapi.User {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var u clerkapi.User
	if err := json.Unmarshal(a.body, &u); err != nil {
		t.Fatalf("body %s: %v", a.body, err)
	}
	return u
}

// lockout is lockout_expires_in_seconds as text, "null" for nil.
func lockout(p *int64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// metaLockout is meta.lockout_expires_in_seconds of a user_locked refusal,
// as text.
func metaLockout(t *testing.T, a answer) string {
	t.Helper()
	var eb struct {
		Errors []struct {
			Meta map[string]json.RawMessage `json:"meta"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("body %s is not a Clerk errors body", a.body)
	}
	v, ok := eb.Errors[0].Meta["lockout_expires_in_seconds"]
	if !ok {
		t.Fatalf("refusal lacks meta.lockout_expires_in_seconds: %s", a.body)
	}
	return string(v)
}

// checkSignIns tries every way of signing in as user: the API's
// createSession, the control API and CreateSessions. With meta "" each must
// create sessions; otherwise each must be refused and create none, the HTTP
// ones with 403 user_locked and meta.lockout_expires_in_seconds = meta.
func (h *harness) checkSignIns(user, meta string) {
	h.t.Helper()
	locked := meta != ""
	before := len(h.emu.UserSessionIDs(user))
	for _, w := range []struct {
		path, body string
		headers    []hdr
	}{
		{"/v1/sessions", `{"user_id":"` + user + `"}`, nil},
		{"/_emulator/users/" + user + "/sessions", `{"count":2}`, []hdr{{"Authorization", ""}}},
	} {
		a := h.do("POST", w.path, w.body, w.headers...)
		switch {
		case !locked && a.status/100 != 2:
			h.t.Errorf("POST %s: %d %s, want a session", w.path, a.status, a.body)
		case locked && (a.status != 403 || a.code(h.t) != "user_locked" || metaLockout(h.t, a) != meta):
			h.t.Errorf("POST %s: %d %s, want 403 user_locked with lockout_expires_in_seconds %s", w.path, a.status, a.body, meta)
		}
	}
	if ids := h.emu.CreateSessions(user, 1); (len(ids) == 1) == locked {
		h.t.Errorf("CreateSessions gave %v for a user locked: %v", ids, locked)
	}
	want := 4 // 1 + 2 + 1
	if locked {
		want = 0
	}
	if got := len(h.emu.UserSessionIDs(user)) - before; got != want {
		h.t.Errorf("%d sessions created, want %d", got, want)
	}
}

func TestLockUserLocksOutUntilTheLockExpires(t *testing.T) {
	clock := newFakeClock()
	h := start(t, emulator.WithClock(clock.Now))
	user := h.emu.CreateUser()
	existing := h.emu.CreateSessions(user, 2)
	h.checkSignIns(user, "") // not locked: every way works

	locked := decodeUser(t, h.do("POST", "/v1/users/"+user+"/lock", ""))
	if locked.ID != user || locked.Object != "user" || !locked.Locked || lockout(locked.LockoutExpiresInSeconds) != "3600" {
		t.Fatalf("locked user %+v (lockout %s), want locked for 3600 s, Clerk's default", locked, lockout(locked.LockoutExpiresInSeconds))
	}
	if locked.UpdatedAt != clock.Now().UnixMilli() || locked.CreatedAt > locked.UpdatedAt {
		t.Errorf("created_at %d updated_at %d, want updated_at at the lock %d", locked.CreatedAt, locked.UpdatedAt, clock.Now().UnixMilli())
	}
	newest, _ := h.emu.Session(h.emu.UserSessionIDs(user)[0])
	if locked.LastSignInAt == nil || *locked.LastSignInAt != newest.CreatedAt {
		t.Errorf("last_sign_in_at %v, want the newest session's created_at %d", locked.LastSignInAt, newest.CreatedAt)
	}
	wantUntil := clock.Now().Add(emulator.DefaultLockoutDuration)
	if until, ok := h.emu.LockedUntil(user); !ok || !until.Equal(wantUntil) {
		t.Errorf("LockedUntil = %v %v, want %v true", until, ok, wantUntil)
	}
	if n := h.emu.LockCount(user); n != 1 {
		t.Errorf("LockCount %d, want 1", n)
	}
	for _, id := range existing {
		if s, _ := h.emu.Session(id); s.Status != clerkapi.StatusActive {
			t.Errorf("locking ended session %s (%s): a lock only stops sign-ins", id, s.Status)
		}
	}
	if a := h.do("POST", "/v1/sessions/"+existing[0]+"/tokens", ""); a.status != 200 {
		t.Errorf("token for a session that predates the lock: %d %s", a.status, a.body)
	}
	h.checkSignIns(user, "3600")

	// The countdown, rounded up: 2999.5 s left say 3000.
	clock.Add(10*time.Minute + 500*time.Millisecond)
	if u, _ := h.emu.User(user); !u.Locked || lockout(u.LockoutExpiresInSeconds) != "3000" {
		t.Errorf("10 min later: locked %v lockout %s, want true 3000", u.Locked, lockout(u.LockoutExpiresInSeconds))
	}
	h.checkSignIns(user, "3000")

	// At the end of the lockout the user may sign in again.
	clock.Add(wantUntil.Sub(clock.Now()))
	if u, _ := h.emu.User(user); u.Locked || u.LockoutExpiresInSeconds != nil {
		t.Errorf("at the lock's end: locked %v lockout %s, want false null", u.Locked, lockout(u.LockoutExpiresInSeconds))
	}
	if _, ok := h.emu.LockedUntil(user); ok {
		t.Error("LockedUntil still reports a lock")
	}
	h.checkSignIns(user, "")
}

func TestUnlockUser(t *testing.T) {
	clock := newFakeClock()
	h := start(t, emulator.WithClock(clock.Now))
	user := h.emu.CreateUser()
	decodeUser(t, h.do("POST", "/v1/users/"+user+"/lock", ""))
	clock.Add(time.Minute)
	u := decodeUser(t, h.do("POST", "/v1/users/"+user+"/unlock", ""))
	if u.Locked || u.LockoutExpiresInSeconds != nil || u.UpdatedAt != clock.Now().UnixMilli() {
		t.Errorf("unlocked %+v (lockout %s)", u, lockout(u.LockoutExpiresInSeconds))
	}
	h.checkSignIns(user, "")

	clock.Add(time.Minute)
	again := decodeUser(t, h.do("POST", "/v1/users/"+user+"/unlock", ""))
	if again.Locked || again.UpdatedAt != u.UpdatedAt {
		t.Errorf("unlocking an unlocked user changed it: %+v, before %+v", again, u)
	}
	if n := h.emu.LockCount(user); n != 1 {
		t.Errorf("LockCount %d, want 1 (unlocks are not locks)", n)
	}
}

func TestLockoutDuration(t *testing.T) {
	tests := []struct {
		name    string
		d       time.Duration
		want    string // lockout_expires_in_seconds right after the lock
		expires bool
	}{
		{"zero means Clerk's default", 0, "3600", true},
		{"90 s", 90 * time.Second, "90", true},
		{"a fraction of a second rounds up", 1500 * time.Millisecond, "2", true},
		{"indefinite", emulator.IndefiniteLockout, "null", false},
		{"any negative is indefinite", -time.Hour, "null", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			h := start(t, emulator.WithClock(clock.Now), emulator.WithLockoutDuration(tc.d))
			user := h.emu.CreateUser()
			u := decodeUser(t, h.do("POST", "/v1/users/"+user+"/lock", ""))
			if !u.Locked || lockout(u.LockoutExpiresInSeconds) != tc.want {
				t.Fatalf("locked %v lockout %s, want true %s", u.Locked, lockout(u.LockoutExpiresInSeconds), tc.want)
			}
			h.checkSignIns(user, tc.want)
			until, ok := h.emu.LockedUntil(user)
			if !ok || until.IsZero() == tc.expires {
				t.Errorf("LockedUntil = %v %v; want a time: %v", until, ok, tc.expires)
			}
			clock.Add(10 * 365 * 24 * time.Hour)
			if _, ok := h.emu.LockedUntil(user); ok == tc.expires {
				t.Errorf("ten years later locked = %v, want %v", ok, !tc.expires)
			}
			if !tc.expires {
				h.checkSignIns(user, "null")
				decodeUser(t, h.do("POST", "/v1/users/"+user+"/unlock", ""))
			}
			h.checkSignIns(user, "")
		})
	}
}

func TestLockAgainRestartsTheLockout(t *testing.T) {
	clock := newFakeClock()
	h := start(t, emulator.WithClock(clock.Now))
	user := h.emu.CreateUser()
	decodeUser(t, h.do("POST", "/v1/users/"+user+"/lock", ""))
	clock.Add(30 * time.Minute)
	u := decodeUser(t, h.do("POST", "/v1/users/"+user+"/lock", ""))
	if lockout(u.LockoutExpiresInSeconds) != "3600" {
		t.Errorf("second lock: lockout %s, want a new full 3600", lockout(u.LockoutExpiresInSeconds))
	}
	if n := h.emu.LockCount(user); n != 2 {
		t.Errorf("LockCount %d, want 2", n)
	}
}

func TestLockUserErrors(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	tests := []struct {
		method, path, body string
		status             int
		code, allow        string
	}{
		{"POST", "/v1/users/user_nobody/lock", "", 404, "resource_not_found", ""},
		{"POST", "/v1/users/user_nobody/unlock", "", 404, "resource_not_found", ""},
		{"GET", "/v1/users/" + user + "/lock", "", 405, "method_not_allowed", "POST"},
		{"DELETE", "/v1/users/" + user + "/unlock", "", 405, "method_not_allowed", "POST"},
		{"POST", "/v1/users//lock", "", 404, "resource_not_found", ""},
		{"POST", "/v1/users/" + user + "/lock/now", "", 404, "resource_not_found", ""},
		{"POST", "/v1/users/" + user, "", 404, "resource_not_found", ""},
		{"POST", "/v1/users/" + user + "/lock", "{", 400, "request_body_invalid", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			a := h.do(tc.method, tc.path, tc.body)
			if a.status != tc.status || a.code(t) != tc.code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.code(t), tc.status, tc.code)
			}
			if got := a.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	if _, locked := h.emu.LockedUntil(user); locked || h.emu.LockCount(user) != 0 {
		t.Error("a refused call locked the user")
	}
	if _, ok := h.emu.User("user_nobody"); ok {
		t.Error("a lock of an unknown user created it")
	}
}

func TestFailUser(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	h.emu.FailUser(user, 503)
	for _, op := range []string{"lock", "unlock"} {
		a := h.do("POST", "/v1/users/"+user+"/"+op, "")
		if a.status != 503 || a.code(t) != "service_unavailable" || a.header.Get("Retry-After") != "1" {
			t.Errorf("%s with FailUser 503: %d %s Retry-After %q", op, a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	if _, locked := h.emu.LockedUntil(user); locked {
		t.Error("a failed lock locked the user")
	}
	// Only calls naming the user in their path fail.
	if a := h.do("POST", "/v1/sessions", `{"user_id":"`+user+`"}`); a.status != 200 {
		t.Errorf("createSession for a failing user: %d %s", a.status, a.body)
	}
	h.emu.FailUser(user, 0)
	if u := decodeUser(t, h.do("POST", "/v1/users/"+user+"/lock", "")); !u.Locked {
		t.Error("lock after FailUser(0) did not lock")
	}
	calls := h.emu.Calls()
	if c := calls[0]; c.Fault != "fail_user" || c.Op != emulator.OpLockUser || c.UserID != user || c.Status != 503 {
		t.Errorf("failed call logged as %+v", c)
	}
}

func TestLockCallsAreLogged(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	h.do("POST", "/v1/users/"+user+"/lock", "")
	h.do("POST", "/v1/users/"+user+"/unlock", "")
	h.do("POST", "/v1/users/user_nobody/lock", "")
	want := []emulator.Call{
		{Method: "POST", Path: "/v1/users/" + user + "/lock", Op: emulator.OpLockUser, UserID: user, Status: 200},
		{Method: "POST", Path: "/v1/users/" + user + "/unlock", Op: emulator.OpUnlockUser, UserID: user, Status: 200},
		{Method: "POST", Path: "/v1/users/user_nobody/lock", Op: emulator.OpLockUser, UserID: "user_nobody", Status: 404},
	}
	calls := h.emu.Calls()
	if len(calls) != len(want) {
		t.Fatalf("%d calls logged, want %d: %+v", len(calls), len(want), calls)
	}
	for i, c := range calls {
		c.Time, c.Duration = time.Time{}, 0
		if c != want[i] {
			t.Errorf("call %d logged as %+v, want %+v", i, c, want[i])
		}
	}
}

func TestControlAPIShowsTheLock(t *testing.T) {
	clock := newFakeClock()
	h := start(t, emulator.WithClock(clock.Now))
	noKey := hdr{"Authorization", ""}
	user := h.emu.CreateUser()
	type state struct {
		User        map[string]any `json:"user"`
		LockedUntil *time.Time     `json:"locked_until"`
		LockCount   int            `json:"lock_count"`
		FailStatus  int            `json:"fail_status"`
	}
	get := func() state {
		t.Helper()
		a := h.do("GET", "/_emulator/users/"+user, "", noKey)
		var st state
		if err := json.Unmarshal(a.body, &st); err != nil || a.status != 200 {
			t.Fatalf("GET user: %d %s (%v)", a.status, a.body, err)
		}
		// The user is Clerk's User object, valid against the schema.
		if spec := spectest.Optional(t); spec != nil {
			b, _ := json.Marshal(st.User)
			if err := spec.Validate("User", b); err != nil {
				t.Errorf("control API user is not a valid Clerk User: %v", err)
			}
		}
		return st
	}
	if st := get(); st.User["locked"] != false || st.User["lockout_expires_in_seconds"] != nil || st.LockedUntil != nil || st.LockCount != 0 {
		t.Errorf("before the lock: %+v", st)
	}
	h.do("POST", "/v1/users/"+user+"/lock", "")
	st := get()
	want := clock.Now().Add(time.Hour).UTC()
	if st.User["locked"] != true || st.User["lockout_expires_in_seconds"] != 3600.0 || st.LockedUntil == nil || !st.LockedUntil.Equal(want) || st.LockCount != 1 {
		t.Errorf("after the lock: %+v, want locked until %v", st, want)
	}
	if a := h.do("PUT", "/_emulator/users/"+user+"/failure", `{"status":502}`, noKey); a.status != 200 || get().FailStatus != 502 {
		t.Errorf("PUT failure: %d %s", a.status, a.body)
	}
	if a := h.do("POST", "/v1/users/"+user+"/unlock", ""); a.status != 502 {
		t.Errorf("failure not applied: %d", a.status)
	}
	h.do("PUT", "/_emulator/users/"+user+"/failure", `{"status":0}`, noKey)
	h.do("POST", "/v1/users/"+user+"/unlock", "")
	if st := get(); st.User["locked"] != false || st.LockedUntil != nil || st.FailStatus != 0 {
		t.Errorf("after the unlock: %+v", st)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/_emulator/users/user_nobody", "", 404, "resource_not_found"},
		{"POST", "/_emulator/users/" + user, "", 405, "method_not_allowed"},
		{"GET", "/_emulator/users/" + user + "/failure", "", 405, "method_not_allowed"},
		{"PUT", "/_emulator/users/" + user + "/failure", `{"status":302}`, 422, "form_param_value_invalid"},
		{"PUT", "/_emulator/users/" + user + "/failure", `{"stat":503}`, 400, "request_body_invalid"},
	} {
		if a := h.do(tc.method, tc.path, tc.body, noKey); a.status != tc.status || a.code(t) != tc.code {
			t.Errorf("%s %s %s: %d %s, want %d %s", tc.method, tc.path, tc.body, a.status, a.code(t), tc.status, tc.code)
		}
	}
}

// TestNoSignInAfterTheLockAnswers races sign-ins against a lock: once the
// lock has answered, not one more session may appear, however the two
// interleave. This is what lets a caller lock first and then revoke every
// session, knowing the list cannot grow.
func TestNoSignInAfterTheLockAnswers(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if h.emu.CreateSessions(user, 1) == nil {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, "sign-ins before the lock", func() bool { return len(h.emu.UserSessionIDs(user)) >= 20 })
	decodeUser(t, h.do("POST", "/v1/users/"+user+"/lock", ""))
	atLock := len(h.emu.UserSessionIDs(user))
	waitFor(t, "refused sign-ins after the lock", func() bool { mu.Lock(); defer mu.Unlock(); return refused >= 100 })
	close(stop)
	wg.Wait()
	if got := len(h.emu.UserSessionIDs(user)); got != atLock {
		t.Errorf("%d sessions after the lock answered, %d when it answered: sign-ins got through", got, atLock)
	}
}

// waitFor polls cond with a generous deadline (the machine may be loaded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
