package ratebudget

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// steppedClock is this process's clock with a wall clock that can be
// stepped, as NTP steps it: the readings' wall time moves, their monotonic
// time does not.
type steppedClock struct{ step atomic.Int64 }

func (c *steppedClock) now() time.Time { return stepWall(time.Now(), time.Duration(c.step.Load())) }

// stepWall returns t with its wall reading moved by whole seconds of d and
// its monotonic reading kept: what time.Now returns after a step of the
// wall clock. Nothing in package time builds such a reading (Add moves
// both), so this writes the seconds field of t's wall word (see time.Time:
// 33 bits of seconds above 30 bits of nanoseconds when t has a monotonic
// reading); stepWallWorks checks that it still does.
func stepWall(t time.Time, d time.Duration) time.Time {
	wall := (*uint64)(unsafe.Pointer(&t))
	*wall += uint64(int64(d/time.Second)) << 30
	return t
}

func stepWallWorks(t *testing.T) {
	t.Helper()
	now := time.Now()
	s := stepWall(now, time.Hour)
	if s.UnixNano()-now.UnixNano() != int64(time.Hour) || s.Sub(now) != 0 || time.Since(s) > time.Minute {
		t.Fatalf("stepWall no longer models a wall-clock step (time.Time's layout changed?): %v vs %v", s, now)
	}
}

// TestWallClockStep: a step of one replica's wall clock (NTP) moves none
// of its slots. A replica converted server times with its wall clock and
// an offset measured before the step: after a forward step it wrote a TAT
// the step ahead into the shared state, stalling every replica for the
// step, and released the slots it claimed at once.
func TestWallClockStep(t *testing.T) {
	stepWallWorks(t)
	for _, step := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
		t.Run(step.String(), func(t *testing.T) {
			e := newEnv(t, testLimit, emulator.SlidingWindow)
			var clk steppedClock
			stepped, _ := e.budget("", func(o *options) { o.now = clk.now })
			other, _ := e.budget("")
			cs, co := e.load(stepped, 3), e.load(other, 3)
			eventually(t, 60*time.Second, "10 calls", func() bool { return total(cs, co) >= 10 })

			clk.step.Store(int64(step))
			at := time.Now()
			_, kv := e.bucket(e.nats.ClientURL())
			limit := int64(horizon + newSchedule(testLimit, fleetReserve(testLimit)).interval + 100*time.Millisecond)
			// Both replicas claim on: 10 calls each after the step (a
			// second or two), where the shared TAT is never further ahead
			// of the server's clock than a claim may reach.
			eventually(t, 60*time.Second, "10 calls from each replica after the step", func() bool {
				en, err := kv.Get(context.Background(), stateKey(e.fp))
				if err != nil {
					t.Fatalf("read the state: %v", err)
				}
				var st state
				if err := json.Unmarshal(en.Value(), &st); err != nil {
					t.Fatal(err)
				}
				if ahead := st.TAT - en.Created().UnixNano(); ahead > limit {
					t.Fatalf("the shared TAT is %v ahead of the server's clock (a claim reaches %v at most)", time.Duration(ahead), time.Duration(limit))
				}
				_, s := cs.count(at)
				_, o := co.count(at)
				return s >= 10 && o >= 10
			})
			cs.stop()
			co.stop()
			e.checkClerk()
		})
	}
}

// TestServerClockSteps: a JetStream leader change to a server with another
// clock steps the server's clock under every replica. The slots replicas
// hold were placed on the old clock, and the shared TAT was written on it.
// Forward, a replica that claimed from that TAT on the new clock put its
// slots among the held ones: up to the horizon's worth of calls too many
// in one window. Back, the TAT lay the step ahead: the fleet made no call
// for the step (15 s here), where it now resumes within a few seconds.
func TestServerClockSteps(t *testing.T) {
	for _, step := range []time.Duration{300 * time.Millisecond, 2 * time.Second, -15 * time.Second} {
		t.Run(step.String(), func(t *testing.T) {
			e := newEnv(t, testLimit, emulator.SlidingWindow)
			var skew atomic.Int64
			leader := func(o *options) { o.skew = func() time.Duration { return time.Duration(skew.Load()) } }
			var logs syncBuffer
			a, _ := e.budget("", leader, WithLogger(zerolog.New(&logs)))
			b, _ := e.budget("", leader)
			ca, cb := e.load(a, 3), e.load(b, 3)
			eventually(t, 60*time.Second, "10 calls", func() bool { return total(ca, cb) >= 10 })

			skew.Store(int64(step))
			at := time.Now()
			within := 60 * time.Second
			if step < 0 {
				within = 10 * time.Second // waited out, the step stalled every call for 15 s
			}
			defer func() { t.Logf("logs: %s", logs.String()) }()
			eventually(t, within, "10 calls from each replica after the step", func() bool { return eachAfter(10, at, ca, cb) })
			ca.stop()
			cb.stop()
			if n := bestWindow(time.Time{}, e.limit.Per, ca, cb); n > e.limit.N {
				t.Errorf("%d calls left in one %v window, limit %s", n, e.limit.Per, e.limit)
			}
			if !strings.Contains(logs.String(), "clock stepped") {
				t.Errorf("the step was not logged: %s", logs.String())
			}
			e.checkClerk()
		})
	}
}

// TestClockSeesSteps: a sample past what the samples before it allow by
// more than clockStep, or that far before it, is a step of the server's
// clock, forward or back; a sample within them, or a small step, is none.
func TestClockSeesSteps(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ahead        time.Duration // of the second sample, past the first's clock
		minStep, max time.Duration
	}{
		{"agreeing", 0, 0, 0},
		{"within clockStep", clockStep / 2, 0, 0},
		{"forward", 100 * time.Millisecond, 90 * time.Millisecond, 100 * time.Millisecond},
		{"back within clockStep", -clockStep / 2, 0, 0},
		{"back", -time.Second, -time.Second, -990 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c clockSync
			t0 := time.Now()
			server := int64(1e18)
			if step := c.add(server, t0, t0.Add(time.Millisecond)); step != 0 {
				t.Fatalf("first sample: step %v", step)
			}
			sent := t0.Add(100 * time.Millisecond)
			step := c.add(server+int64(100*time.Millisecond+tc.ahead), sent, sent.Add(time.Millisecond))
			if step < tc.minStep || step > tc.max {
				t.Errorf("step %v, want within [%v, %v]", step, tc.minStep, tc.max)
			}
		})
	}
}

// TestServerClockStepBackSeenIdle: a step of the server's clock back,
// seen by every replica while none claimed (the fleet idle for longer than
// clockKeep), left the shared TAT the step ahead on the new clock. Only a
// claim within clockKeep of the step started the schedule afresh: the
// first claims after the idle spell waited out the rest of the step (here
// about 18 s), up to the max pause (5 min by default).
func TestServerClockStepBackSeenIdle(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	var skew atomic.Int64
	leader := func(o *options) { o.skew = func() time.Duration { return time.Duration(skew.Load()) } }
	a, _ := e.budget("", leader)
	b, _ := e.budget("", leader)
	ca, cb := e.load(a, 3), e.load(b, 3)
	eventually(t, 60*time.Second, "10 calls", func() bool { return total(ca, cb) >= 10 })
	ca.stop()
	cb.stop()

	skew.Store(int64(-30 * time.Second))
	time.Sleep(clockKeep + 2*time.Second) // every replica samples the step (heartbeats), and claims nothing

	at := time.Now()
	ca, cb = e.load(a, 3), e.load(b, 3)
	eventually(t, 8*time.Second, "10 calls from each replica after the idle spell", func() bool { return eachAfter(10, at, ca, cb) })
	ca.stop()
	cb.stop()
	if n := bestWindow(time.Time{}, e.limit.Per, ca, cb); n > e.limit.N {
		t.Errorf("%d calls left in one %v window, limit %s", n, e.limit.Per, e.limit)
	}
	e.checkClerk()
}
