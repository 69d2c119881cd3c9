package ratebudget

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

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
