package emulator

import (
	"testing"
	"time"
)

func TestWorstWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(offsets ...time.Duration) []time.Time {
		var ts []time.Time
		for _, o := range offsets {
			ts = append(ts, t0.Add(o))
		}
		return ts
	}
	// every returns n calls spaced by gap, starting at from.
	every := func(from time.Duration, n int, gap time.Duration) []time.Duration {
		var o []time.Duration
		for i := range n {
			o = append(o, from+time.Duration(i)*gap)
		}
		return o
	}
	s := time.Second
	for _, c := range []struct {
		name  string
		times []time.Time
		w     time.Duration
		want  int
	}{
		{"no calls", nil, 10 * s, 0},
		{"one call", at(0), 10 * s, 1},
		{"a window is half-open: calls exactly w apart never share one", at(0, 10*s, 20*s), 10 * s, 1},
		{"just inside", at(0, 10*s-time.Nanosecond), 10 * s, 2},
		{"order does not matter", at(5*s, 0, 9*s, 3*s, 30*s), 10 * s, 4},
		{"an even 100/s for 40 s never has more than 1000 in 10 s", at(every(0, 4000, 10*time.Millisecond)...), 10 * s, 1000},
		// What fixed windows allow and a sliding window catches: 1000 at
		// the end of one fixed window and 1000 at the start of the next.
		{"a burst on each side of a fixed window's edge", at(append(every(9*s, 1000, time.Millisecond), every(10*s, 1000, time.Millisecond)...)...), 10 * s, 2000},
		{"the worst window is found in the middle", at(append(append(every(0, 10, s), every(20*s, 50, 100*time.Millisecond)...), every(40*s, 10, s)...)...), 10 * s, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := make([]Call, len(c.times))
			for i, at := range c.times {
				calls[i] = Call{Time: at}
			}
			if got := WorstWindow(calls, c.w); got != c.want {
				t.Errorf("WorstWindow = %d, want %d", got, c.want)
			}
		})
	}
}
