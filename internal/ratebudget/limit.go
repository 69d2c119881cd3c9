package ratebudget

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is a rate limit in Clerk's own form: N calls per Per. The zero
// Limit means no limit.
type Limit struct {
	N   int
	Per time.Duration
}

// ErrInvalidLimit is wrapped by every error ParseLimit and the
// constructors return for a limit they cannot use.
var ErrInvalidLimit = errors.New("invalid rate limit")

// Bounds on what a Limit may say: beyond them the numbers are typos, and
// the schedule's arithmetic (nanosecond intervals) would lose precision.
const (
	maxCalls   = 1_000_000
	maxPer     = 24 * time.Hour
	minPer     = time.Millisecond
	maxPerSec  = 1_000_000
	limitUsage = "write calls per window as Clerk states it, e.g. 1000/10s, 100/s or 100 (per second), or 0 for none"
)

// ParseLimit reads a limit as Clerk states it: "1000/10s", "100/s",
// "100/1m", a bare "100" (per second), or "0" / "none" for no limit. The
// window is a Go duration, or a bare unit s, m or h meaning one of it.
func ParseLimit(s string) (Limit, error) {
	in := strings.TrimSpace(s)
	bad := func(format string, args ...any) (Limit, error) {
		return Limit{}, fmt.Errorf("%w %q: %s; %s", ErrInvalidLimit, s, fmt.Sprintf(format, args...), limitUsage)
	}
	if in == "" {
		return bad("empty")
	}
	if in == "none" || in == "0" {
		return Limit{}, nil
	}
	count, per, hasPer := strings.Cut(in, "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n < 0 {
		return bad("%q is not a whole number of calls", count)
	}
	l := Limit{N: n, Per: time.Second}
	if hasPer {
		switch p := strings.TrimSpace(per); p {
		case "s":
			l.Per = time.Second
		case "m":
			l.Per = time.Minute
		case "h":
			l.Per = time.Hour
		default:
			d, err := time.ParseDuration(p)
			if err != nil {
				return bad("window %q is not a duration such as 10s or 1m", p)
			}
			l.Per = d
		}
	}
	if n == 0 {
		return Limit{}, nil
	}
	if err := l.check(); err != nil {
		return bad("%s", err.Error())
	}
	return l, nil
}

// Share is the part of l a budget spends at most, in the fleet scope or
// the process scope: its margin is at least 150 ms per window, so a
// limit written per second gets less of itself than one written per 10 s
// (0.86 for 100/s, 0.974 for 1000/10s). 1 for no limit.
func (l Limit) Share(fleet bool) float64 {
	if l.Unlimited() {
		return 1
	}
	reserve := 0
	if fleet {
		reserve = fleetReserve(l)
	}
	return newSchedule(l, reserve).rate() / (float64(l.N) / l.Per.Seconds())
}

// Unlimited reports whether l is no limit at all.
func (l Limit) Unlimited() bool { return l.N == 0 }

// check reports what makes l unusable.
func (l Limit) check() error {
	switch {
	case l.N == 0 && l.Per == 0:
		return nil
	case l.N <= 0 || l.N > maxCalls:
		return fmt.Errorf("%d calls is not between 1 and %d", l.N, maxCalls)
	case l.Per < minPer || l.Per > maxPer:
		return fmt.Errorf("window %v is not between %v and %v", l.Per, minPer, maxPer)
	case float64(l.N)/l.Per.Seconds() > maxPerSec:
		return fmt.Errorf("%d calls per %v is more than %d per second", l.N, l.Per, maxPerSec)
	}
	return nil
}

// CheckLimit says what keeps New and NewLocal from running l (nil when
// nothing does), without naming the setting: for a configuration's
// Validate, before anything starts.
func CheckLimit(l Limit) error { return l.check() }

// maxFleetInterval bounds how far apart a fleet budget's slots may lie:
// the default max pause. A fresh state (a new key, one expired after the
// bucket's TTL, a lost one) puts its first slot the horizon and an
// interval ahead, which must come before the bucket's TTL lets the state
// expire again (else no slot ever comes); and the other replicas heed an
// interval, or read a state's TAT as sane, only up to the max pause.
const maxFleetInterval = DefaultMaxPause

// CheckFleetLimit is CheckLimit for New (scope fleet), which also refuses
// a limit whose slots would lie more than 5 min apart (4/1h: 20 min),
// without naming the setting.
func CheckFleetLimit(l Limit) error {
	if err := l.check(); err != nil || l.Unlimited() {
		return err
	}
	if T := newSchedule(l, fleetReserve(l)).interval; T > maxFleetInterval {
		return fmt.Errorf("%d calls per %v puts a fleet budget's slots %v apart, more than %v (a fresh schedule would start that far ahead)", l.N, l.Per, T.Round(time.Second), maxFleetInterval)
	}
	return nil
}

// validate is check for a Limit built by hand rather than parsed.
func (l Limit) validate() error {
	if err := l.check(); err != nil {
		return fmt.Errorf("%w %s: %w", ErrInvalidLimit, l, err)
	}
	return nil
}

// String is the form ParseLimit reads: "1000/10s", "100/s", "none".
func (l Limit) String() string {
	if l.Unlimited() {
		return "none"
	}
	per := l.Per.String()
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if l.Per%u.d == 0 {
			per = strconv.FormatInt(int64(l.Per/u.d), 10) + u.name
			if l.Per == u.d {
				per = u.name
			}
			break
		}
	}
	return strconv.Itoa(l.N) + "/" + per
}

// The schedule's constants. Each is a trade between the limit's use and a
// guarantee; docs/rate-limit.md gives the arithmetic.
const (
	// margin is the slack added to every window, as a share of it: calls
	// may leave up to margin × window later than their slot (timer
	// lateness, clock uncertainty, the network) without any window of the
	// configured length seeing more than the limit.
	margin = 0.015
	// minSlack is the least slack of any window. What it absorbs (timers
	// firing late, a loaded scheduler, the network) is a time, not a share
	// of the window: 1.5% of a 2 s window, 30 ms, was exceeded on a loaded
	// 2-core machine (a 429 and 201 calls in one window of a fleet at
	// 200/2s). 150 ms is the slack of Clerk's own 10 s windows, so every
	// window tolerates the lateness those do.
	minSlack = 150 * time.Millisecond
	// reserveShare of a fleet budget is kept out of the shared schedule, for
	// the trickle replicas that cannot reach JetStream may spend.
	reserveShare = 0.01
	// horizon bounds how far ahead of now the fleet may claim slots: what a
	// killed or partitioned replica held unused is back within it.
	horizon = 500 * time.Millisecond
)

// schedule is the arithmetic of one limit: a GCRA (virtual scheduling)
// with burst 1 whose slots are interval apart. Any interval of length L
// holds at most 1 + L/T slots of it; with T = span/(N-reserve-1),
// span = Per + slack, a window of length Per holds at most N-reserve calls
// as long as every call leaves within slack+T of its slot — whether Clerk
// counts in fixed or sliding windows, open or closed at their ends. The
// reserve (N-reserve calls per window are the shared schedule's) is what
// replicas cut off from JetStream may spend: see fleet.go.
type schedule struct {
	limit    Limit
	span     time.Duration // Per plus the slack
	interval time.Duration // T: between two slots of the shared schedule
	grace    time.Duration // how late a slot may still be used: 2/3 of the slack
	reserve  int           // calls per span kept for the fallback trickle
}

// newSchedule is the schedule of l keeping reserve calls per window out
// (see fleetReserve).
func newSchedule(l Limit, reserve int) schedule {
	if l.Unlimited() {
		return schedule{limit: l}
	}
	slack := max(time.Duration(float64(l.Per)*margin), minSlack)
	// Two thirds of the slack go to the caller's own lateness (timers, the
	// scheduler), the rest to the clock's uncertainty and the network.
	s := schedule{limit: l, span: l.Per + slack, grace: slack * 2 / 3, reserve: reserve}
	s.interval = ceilDiv(s.span, max(1, l.N-s.reserve-1))
	return s
}

// fleetReserve is the reserve of a fleet budget: reserveShare of the
// limit, or none when that is under two calls (one call cannot be shared
// by two replicas; a replica cut off then spends only what it holds).
func fleetReserve(l Limit) int {
	if r := int(float64(l.N) * reserveShare); r >= 2 {
		return r
	}
	return 0
}

// ceilDiv is span/n rounded up, so that rounding never makes a schedule
// faster than the arithmetic allows.
func ceilDiv(span time.Duration, n int) time.Duration {
	k := time.Duration(n)
	return (span + k - 1) / k
}

// rate is the calls per second the schedule grants (the shared part).
func (s schedule) rate() float64 {
	if s.limit.Unlimited() {
		return 0
	}
	return float64(time.Second) / float64(s.interval)
}

// perHorizon is how many slots fit in the horizon.
func (s schedule) perHorizon() int {
	return max(1, int(horizon/s.interval))
}
