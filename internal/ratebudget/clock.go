package ratebudget

import (
	"math"
	"slices"
	"time"
)

// clockSync estimates the JetStream server's clock from this process's own
// writes: an entry stored after the write was sent (local instant t0) and
// before its echo arrived (local instant t1), at server time c, puts the
// server's clock at t1 between c and c + (t1 - t0). From a sample, the
// server's clock at a later instant is carried forward by the time elapsed
// since t1, measured on Go's monotonic clock: a step of this machine's wall
// clock (NTP) moves no estimate, and no local wall reading is ever turned
// into a server time. The samples of the last clockKeep are intersected,
// each widened by the drift two clocks may accumulate since it was taken,
// so the bounds tighten to the fastest round trip seen. They are sure
// bounds, not a guess: the fleet's slots are converted with the lower one,
// so a call never leaves before its slot by the server's clock, at worst
// hi-lo after it.
type clockSync struct {
	samples []clockSample
}

// clockSample bounds the server's clock (Unix nanoseconds) at the local
// instant at, which carries a monotonic reading.
type clockSample struct {
	lo, hi int64
	at     time.Time
}

const (
	clockKeep   = 10 * time.Second
	clockMax    = 32
	clockDrift  = 1e-4 // 100 ppm: far beyond what NTP-disciplined clocks drift
	clockUnsure = math.MaxInt64
	// clockStep: a forward step of the server's clock up to this moves
	// calls earlier by as much, within the network's share of the
	// schedule's tolerance (see docs/rate-limit.md); a larger one makes
	// the schedule start afresh. Above what an NTP slew (at most 500 ppm)
	// can open between samples at most clockKeep apart, beyond clockDrift.
	clockStep = 20 * time.Millisecond
)

// add takes the sample of an entry stored at server time created, written
// at local instant sent and echoed at recv. It returns how far the
// server's clock stepped, when by more than clockStep: how far the sample
// lies past what the samples before it allow, forward (positive) or back
// (negative); 0: no such step.
func (c *clockSync) add(created int64, sent, recv time.Time) (step time.Duration) {
	rtt := recv.Sub(sent)
	if rtt < 0 {
		return 0 // cannot be on a monotonic clock
	}
	if len(c.samples) > 0 {
		switch lo, hi := c.bounds(recv); {
		case created > hi+int64(clockStep):
			step = time.Duration(created - hi)
		case created+int64(rtt) < lo-int64(clockStep):
			step = -time.Duration(lo - created - int64(rtt))
		}
	}
	keep := slices.DeleteFunc(c.samples, func(s clockSample) bool { return recv.Sub(s.at) > clockKeep })
	if len(keep) == clockMax {
		keep = keep[1:]
	}
	c.samples = append(keep, clockSample{lo: created, hi: created + int64(rtt), at: recv})
	return step
}

// age is how old the newest sample is (forever before any).
func (c *clockSync) age(now time.Time) time.Duration {
	if len(c.samples) == 0 {
		return math.MaxInt64
	}
	return now.Sub(c.samples[len(c.samples)-1].at)
}

// bounds returns the bounds of the server's clock at the local instant now
// (a time.Now reading); (0, 0) before any sample.
func (c *clockSync) bounds(now time.Time) (lo, hi int64) {
	if len(c.samples) == 0 {
		return 0, 0
	}
	at := func(s clockSample) (int64, int64) {
		d := now.Sub(s.at)
		w := int64(float64(d.Abs()) * clockDrift)
		return s.lo + int64(d) - w, s.hi + int64(d) + w
	}
	lo, hi = -clockUnsure, clockUnsure
	for _, s := range c.samples {
		slo, shi := at(s)
		lo, hi = max(lo, slo), min(hi, shi)
	}
	if lo > hi {
		// The samples disagree: the server's clock was stepped (a new
		// stream leader with another clock). Trust the newest.
		return at(c.samples[len(c.samples)-1])
	}
	return lo, hi
}
