package ratebudget

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in   string
		want Limit
		str  string
	}{
		{"1000/10s", Limit{1000, 10 * time.Second}, "1000/10s"},
		{"100/s", Limit{100, time.Second}, "100/s"},
		{"100/1s", Limit{100, time.Second}, "100/s"},
		{"100", Limit{100, time.Second}, "100/s"},
		{" 100 / 1m ", Limit{100, time.Minute}, "100/m"},
		{"100/m", Limit{100, time.Minute}, "100/m"},
		{"5/h", Limit{5, time.Hour}, "5/h"},
		{"60/90s", Limit{60, 90 * time.Second}, "60/90s"},
		{"10/2m", Limit{10, 2 * time.Minute}, "10/2m"},
		{"30/500ms", Limit{30, 500 * time.Millisecond}, "30/500ms"},
		{"0", Limit{}, "none"},
		{"none", Limit{}, "none"},
		{"0/10s", Limit{}, "none"},
	}
	for _, tc := range tests {
		got, err := ParseLimit(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if got.String() != tc.str {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), tc.str)
		}
		if back, err := ParseLimit(got.String()); err != nil || back != got {
			t.Errorf("ParseLimit(%q) = %+v, %v: String does not round-trip", got.String(), back, err)
		}
	}
}

func TestParseLimitErrors(t *testing.T) {
	tests := []struct{ in, says string }{
		{"", "empty"},
		{"fast", `"fast" is not a whole number`},
		{"-5", "not a whole number"},
		{"1.5", "not a whole number"},
		{"100/", `window "" is not a duration`},
		{"100/10", `window "10" is not a duration`},
		{"100/-1s", "not between"},
		{"100/0s", "not between"},
		{"100/48h", "not between"},
		{"2000000/s", "not between 1 and 1000000"},
		{"1000000/100ms", "more than 1000000 per second"},
		{"1000/10s/x", "is not a duration"},
	}
	for _, tc := range tests {
		_, err := ParseLimit(tc.in)
		if err == nil {
			t.Errorf("ParseLimit(%q): no error", tc.in)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, ErrInvalidLimit) || !strings.Contains(msg, tc.says) || !strings.Contains(msg, "e.g. 1000/10s") {
			t.Errorf("ParseLimit(%q): %q; want ErrInvalidLimit saying %q and an example", tc.in, msg, tc.says)
		}
	}
}

func TestConstructorsRejectBadLimits(t *testing.T) {
	for _, l := range []Limit{{N: -1, Per: time.Second}, {N: 10}, {N: 10, Per: -time.Second}} {
		if _, err := NewLocal(l); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("NewLocal(%+v): %v, want ErrInvalidLimit", l, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	const key = "sk_test_FakeKeyForTests0000000000000000000000"
	fp := Fingerprint(key)
	if fp != Fingerprint(key) || len(fp) != 16 || !validFingerprint(fp) {
		t.Errorf("Fingerprint %q: want 16 hex digits, stable", fp)
	}
	if fp == Fingerprint(key+"x") || fp == Fingerprint("sk_test_other") {
		t.Error("different keys share a fingerprint")
	}
	if strings.Contains(key, fp) || strings.Contains(fp, "sk_") {
		t.Errorf("fingerprint %q shows the key", fp)
	}
}

// TestSchedule holds the safety arithmetic: the shared schedule puts at
// most N-reserve slots in any interval of the window plus its slack plus
// one interval, ends included (so no window sees more than the limit while
// calls leave within slack+T of their slots), the slack is never under
// 150 ms, the reserve is 1% of the limit when that makes two calls or
// more, and the rate stays at 97% or more of the limit in Clerk's own
// forms (10 s windows). Shorter windows pay for the 150 ms with rate.
func TestSchedule(t *testing.T) {
	tests := []struct {
		limit   string
		fleet   bool
		reserve int
		minRate float64 // share of the limit's rate
	}{
		{"1000/10s", true, 10, 0.97},
		{"100/s", true, 0, 0.86},
		{"100/10s", true, 0, 0.97},
		{"300/2s", true, 3, 0.91},
		{"1000/10s", false, 0, 0.98},
		{"100/s", false, 0, 0.86},
		{"10/s", true, 0, 0.78},
		{"2/m", true, 0, 0.49},
		{"1/m", true, 0, 0.98},
		{"1000000/s", true, 10000, 0.86},
	}
	for _, tc := range tests {
		l, err := ParseLimit(tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		reserve := 0
		if tc.fleet {
			reserve = fleetReserve(l)
		}
		s := newSchedule(l, reserve)
		if s.reserve != tc.reserve {
			t.Errorf("%s fleet=%v: reserve %d, want %d", l, tc.fleet, s.reserve, tc.reserve)
		}
		// Slots 0, T, 2T…: a half-open interval of length L holds ⌈L/T⌉
		// of them at most. L is the window plus the lateness the schedule
		// absorbs: the slack, and one interval when the limit has one to
		// spare.
		L := s.span
		if l.N-s.reserve > 1 {
			L += s.interval
		}
		if most := int(math.Ceil(float64(L) / float64(s.interval))); most > l.N-s.reserve {
			t.Errorf("%s fleet=%v: %d slots fit in %v, more than %d", l, tc.fleet, most, L, l.N-s.reserve)
		}
		// The lateness a call may have is a time, whatever the window: a
		// loaded 2-core machine delayed calls past 30 ms (1.5% of 2 s).
		if slack := s.span - l.Per; slack < 150*time.Millisecond {
			t.Errorf("%s: slack %v; a call late by more than that (timers, a loaded machine, the network) could crowd a window", l, slack)
		}
		if s.span-l.Per < s.grace || s.grace <= 0 {
			t.Errorf("%s: grace %v does not fit the slack %v", l, s.grace, s.span-l.Per)
		}
		limitRate := float64(l.N) / l.Per.Seconds()
		if r := s.rate() / limitRate; r < tc.minRate || r > 1 {
			t.Errorf("%s fleet=%v: rate %.2f/s is %.2f%% of the limit, want at least %.0f%%", l, tc.fleet, s.rate(), 100*r, 100*tc.minRate)
		}
	}
}
