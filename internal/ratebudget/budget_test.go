package ratebudget

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// TestProcessScope: a budget for one process keeps Clerk's limit in both
// window forms on its own.
func TestProcessScope(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, testLimit, mode)
			b, err := NewLocal(testLimit)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			c := e.load(b, 8)
			eventually(t, 60*time.Second, "50 calls", func() bool { return total(c) >= 50 })
			c.stop()
			st := b.Stats()
			if st.Mode != ModeProcess || st.Members != 1 || st.Granted < 50 || st.Claims != 0 {
				t.Errorf("stats %+v", st)
			}
			e.checkClerk()
		})
	}
}

// TestWaitCancelAndClose: a canceled Wait returns the context's error and
// its slot serves the next caller; Close ends every Wait with ErrClosed.
func TestWaitCancelAndClose(t *testing.T) {
	b, err := NewLocal(Limit{N: 1, Per: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Wait(ctx); err != nil { // the first slot is now
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait past its deadline: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- b.Wait(ctx) }()
	}
	eventually(t, 10*time.Second, "3 waiters queued", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiters)+b.sleeping == 3
	})
	b.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait during Close: %v", err)
		}
	}
	if err := b.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close: %v", err)
	}
	b.Close() // twice is fine
	if st := b.Stats(); st.Granted != 1 {
		t.Errorf("granted %d, want 1", st.Granted)
	}
}

// TestUnlimited: no limit lets every call through at once, but a 429
// still pauses them, for at most the max pause.
func TestUnlimited(t *testing.T) {
	b, err := NewLocal(Limit{}, WithMaxPause(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for range 1000 {
		if err := b.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b.Throttled(time.Hour)
	st := b.Stats()
	if d := time.Until(st.PausedUntil); d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("paused for %v, want at most the max pause", d)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Before(st.PausedUntil) {
		t.Errorf("Wait returned %v before the pause ended", st.PausedUntil.Sub(now))
	}
	if st := b.Stats(); st.Granted != 1001 || st.Pauses != 1 || st.Limit.String() != "none" {
		t.Errorf("stats %+v", st)
	}
}

// TestLocalPause: Throttled on a process budget holds its calls, and the
// schedule resumes after the pause without a burst.
func TestLocalPause(t *testing.T) {
	b, err := NewLocal(Limit{N: 20, Per: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	b.Throttled(0) // no Retry-After: 1 s
	until := b.Stats().PausedUntil
	if d := time.Until(until); d < 900*time.Millisecond || d > time.Second {
		t.Fatalf("paused for %v, want 1s", d)
	}
	var mu sync.Mutex
	var got []time.Time
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.Wait(ctx) == nil {
				mu.Lock()
				got = append(got, time.Now())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	interval := newSchedule(Limit{N: 20, Per: time.Second}, 0).interval
	if len(got) != 5 {
		t.Fatalf("%d of 5 calls granted", len(got))
	}
	for _, g := range got {
		if g.Before(until) {
			t.Errorf("a call went %v before the pause ended", until.Sub(g))
		}
	}
	if last := latest(got...); last.Sub(until) < 4*interval-interval/2 {
		t.Errorf("5 calls within %v after the pause: a burst (interval %v)", last.Sub(until), interval)
	}
}

func TestNewRejects(t *testing.T) {
	e := newEnv(t, testLimit, emulator.FixedWindow)
	_, kv := e.bucket(e.nats.ClientURL())
	if _, err := New(nil, e.fp, testLimit); err == nil {
		t.Error("New without a bucket: no error")
	}
	if _, err := New(kv, e.fp, Limit{N: 5}); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("New with a limit without window: %v", err)
	}
}

// TestFingerprintRequired: a budget is named only by what Fingerprint
// makes. Anything else could be the secret key itself, passed by mistake:
// it was accepted when it looked like a key name (up to 64 letters, digits,
// - and _, as Clerk's keys do) and published as one in the bucket, and a
// longer one was quoted in the error. The error says the length and what to
// use, never the value.
func TestFingerprintRequired(t *testing.T) {
	e := newEnv(t, testLimit, emulator.FixedWindow)
	_, kv := e.bucket(e.nats.ClientURL())
	key := "sk_" + "live_" + strings.Repeat("A1b2C3d4", 6)
	for _, tc := range []struct{ name, fp string }{
		{"empty", ""},
		{"a live key", key},
		{"a test key", "sk_" + "test_" + strings.Repeat("x9Y8", 10)},
		{"a key longer than 64", key + "_" + strings.Repeat("Z", 20)},
		{"upper-case hex", strings.ToUpper(e.fp)},
		{"15 hex digits", e.fp[:15]},
		{"17 hex digits", e.fp + "0"},
		{"not hex", "0123456789abcdeg"},
		{"a subject token", "a.b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(kv, tc.fp, testLimit)
			if err == nil {
				b.Close()
				t.Fatal("accepted")
			}
			msg := err.Error()
			if tc.fp != "" && strings.Contains(msg, tc.fp) {
				t.Errorf("the error quotes the value: %q", msg)
			}
			if !strings.Contains(msg, fmt.Sprintf("(%d characters)", len(tc.fp))) || !strings.Contains(msg, "Fingerprint(secretKey)") {
				t.Errorf("the error does not say the length and what to use: %q", msg)
			}
		})
	}
	if keys, err := kv.Keys(context.Background()); !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Errorf("the bucket holds keys %v (%v), want none", keys, err)
	}
	b, err := New(kv, Fingerprint(key), testLimit)
	if err != nil {
		t.Fatalf("New with Fingerprint(key): %v", err)
	}
	b.Close()
}

// TestQueuedWaitersAllServed: callers that each wait once, many more than a
// replica may hold slots for, are all served. The claimer held back while
// the replica held over half its share and was never woken when those
// slots were spent, so the waiters still queued waited forever (found in a
// worker fleet when a replica left).
func TestQueuedWaitersAllServed(t *testing.T) {
	for _, scope := range []string{"process", "fleet"} {
		t.Run(scope, func(t *testing.T) {
			limit := Limit{N: 30, Per: time.Second}
			var b *Budget
			var err error
			if scope == "process" {
				b, err = NewLocal(limit)
			} else {
				e := newEnv(t, limit, emulator.FixedWindow)
				_, kv := e.bucket(e.nats.ClientURL())
				b, err = New(kv, e.fp, limit)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			const callers = 45
			errs := make(chan error, callers)
			for range callers {
				go func() { errs <- b.Wait(ctx) }()
			}
			for i := range callers {
				if err := <-errs; err != nil {
					t.Fatalf("caller %d of %d: %v (the rest were never served)", i+1, callers, err)
				}
			}
		})
	}
}

// TestFleetRefusesSlotsFurtherApartThanTheMaxPause: a fleet budget refuses
// a limit whose slots would lie more than maxFleetInterval apart (4/1h: 20
// min), naming the limit, and NewLocal still runs it. Before, New took it,
// and Wait never returned: a fresh state puts its first slot the horizon
// and an interval ahead, past the bucket's 15 min TTL; when the claim came
// due the state had expired, the claim found it gone and started afresh,
// 20 min ahead again (reproduced with a bucket of 2 s TTL and 2/3s: no
// slot in 15 s, only conflicts). Such a limit's interval was also beyond
// what the other replicas heed (intervalLocked) or read as a sane state.
func TestFleetRefusesSlotsFurtherApartThanTheMaxPause(t *testing.T) {
	e := newEnv(t, testLimit, emulator.FixedWindow)
	_, kv := e.bucket(e.nats.ClientURL())
	for _, l := range []Limit{{N: 4, Per: time.Hour}, {N: 100, Per: 24 * time.Hour}} {
		b, err := New(kv, e.fp, l)
		if err == nil {
			b.Close()
		}
		if !errors.Is(err, ErrInvalidLimit) || !strings.Contains(err.Error(), l.String()) {
			t.Errorf("New with %s (slots %v apart): %v, want ErrInvalidLimit naming it", l, newSchedule(l, fleetReserve(l)).interval, err)
		}
		if CheckFleetLimit(l) == nil {
			t.Errorf("CheckFleetLimit(%s): nil", l)
		}
		lb, err := NewLocal(l)
		if err != nil {
			t.Errorf("NewLocal with %s: %v", l, err)
		} else {
			lb.Close()
		}
	}
	for _, l := range []Limit{{N: 14, Per: time.Hour}, {N: 1000, Per: 10 * time.Second}, {N: 1, Per: time.Minute}} {
		if err := CheckFleetLimit(l); err != nil {
			t.Errorf("CheckFleetLimit(%s): %v", l, err)
		}
	}
}
