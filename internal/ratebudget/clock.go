package ratebudget

import (
	"math"
	"time"
)

// clockSync estimates the offset of the JetStream server's clock from
// this process's (server minus local, in nanoseconds) from this process's
// own writes: an entry stored after the write was sent (local t0) and
// before its echo arrived (local t1), at server time c, bounds the offset
// to [c-t1, c-t0]. The samples of the last clockKeep are intersected, each
// widened by the drift two clocks may accumulate since it was taken, so
// the bounds tighten to the fastest round trip seen. They are sure bounds,
// not a guess: the fleet's slots are converted with the lower one, so a
// call never leaves before its slot by the server's clock, at worst
// hi-lo after it.
type clockSync struct {
	samples []clockSample
}

type clockSample struct {
	lo, hi int64
	at     time.Time
}

const (
	clockKeep   = 10 * time.Second
	clockMax    = 32
	clockDrift  = 1e-4 // 100 ppm: far beyond what NTP-disciplined clocks drift
	clockUnsure = math.MaxInt64
)

func (c *clockSync) add(lo, hi int64, at time.Time) {
	if hi < lo {
		return // cannot be: a clock stepped between send and echo
	}
	keep := c.samples[:0]
	for _, s := range c.samples {
		if at.Sub(s.at) <= clockKeep {
			keep = append(keep, s)
		}
	}
	if len(keep) == clockMax {
		keep = keep[1:]
	}
	c.samples = append(keep, clockSample{lo: lo, hi: hi, at: at})
}

// age is how old the newest sample is (forever before any).
func (c *clockSync) age(now time.Time) time.Duration {
	if len(c.samples) == 0 {
		return math.MaxInt64
	}
	return now.Sub(c.samples[len(c.samples)-1].at)
}

// bounds returns the offset's bounds at now; (0, 0) before any sample.
func (c *clockSync) bounds(now time.Time) (lo, hi int64) {
	if len(c.samples) == 0 {
		return 0, 0
	}
	widen := func(s clockSample) (int64, int64) {
		w := int64(float64(now.Sub(s.at).Abs()) * clockDrift)
		return s.lo - w, s.hi + w
	}
	lo, hi = -clockUnsure, clockUnsure
	for _, s := range c.samples {
		slo, shi := widen(s)
		lo, hi = max(lo, slo), min(hi, shi)
	}
	if lo > hi {
		// The samples disagree: a clock was stepped. Trust the newest.
		return widen(c.samples[len(c.samples)-1])
	}
	return lo, hi
}
