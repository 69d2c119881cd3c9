package clerkapi_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

func TestUserLockedUntil(t *testing.T) {
	at := time.Date(2026, 5, 12, 9, 0, 0, 0, time.UTC)
	secs := func(n int64) *int64 { return &n }
	tests := []struct {
		name       string
		u          clerkapi.User
		until      time.Time
		wantLocked bool
	}{
		{"not locked", clerkapi.User{}, time.Time{}, false},
		{"not locked, stray seconds", clerkapi.User{LockoutExpiresInSeconds: secs(60)}, time.Time{}, false},
		{"locked for an hour", clerkapi.User{Locked: true, LockoutExpiresInSeconds: secs(3600)}, at.Add(time.Hour), true},
		{"locked indefinitely", clerkapi.User{Locked: true}, time.Time{}, true},
		{"negative seconds: ends now", clerkapi.User{Locked: true, LockoutExpiresInSeconds: secs(-5)}, at, true},
		{"absurd seconds do not wrap into the past", clerkapi.User{Locked: true, LockoutExpiresInSeconds: secs(math.MaxInt64)},
			at.Add(time.Duration(math.MaxInt64 / time.Second * time.Second)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			until, locked := tc.u.LockedUntil(at)
			if locked != tc.wantLocked || !until.Equal(tc.until) {
				t.Errorf("LockedUntil = %v %v, want %v %v", until, locked, tc.until, tc.wantLocked)
			}
			if locked && !until.IsZero() && until.Before(at) {
				t.Errorf("lock ends %v, before the answer %v", until, at)
			}
		})
	}
}

// TestLockedUntilFromTheEmulator ties LockedUntil to what the emulator
// holds: the time computed from the answer is the lock's end.
func TestLockedUntilFromTheEmulator(t *testing.T) {
	now := time.Date(2026, 5, 12, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, emulator.WithClock(func() time.Time { return now }), emulator.WithLockoutDuration(15*time.Minute))
	user := e.emu.CreateUser()
	u, err := e.c.LockUser(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	got, locked := u.LockedUntil(now)
	want, held := e.emu.LockedUntil(user)
	if !locked || !held || !got.Equal(want) || !want.Equal(now.Add(15*time.Minute)) {
		t.Errorf("client says locked %v until %v; emulator %v until %v", locked, got, held, want)
	}
}
