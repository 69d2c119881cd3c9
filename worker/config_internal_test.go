package worker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRateWarning: a limit the budget can spend less than 95% of (short
// windows: its margin is at least 150 ms per window) is warned about at
// start, with the per-10-s form to write when that is the window; Clerk's
// own forms are not.
func TestRateWarning(t *testing.T) {
	for _, tc := range []struct {
		limit RateLimit
		scope RateScope
		want  []string // in the warning; none: no warning
	}{
		{RateLimit{N: 1000, Per: 10 * time.Second}, RateFleet, nil},
		{RateLimit{N: 100, Per: 10 * time.Second}, RateProcess, nil},
		{RateLimit{}, RateFleet, nil},
		{RateLimit{N: 100, Per: time.Second}, RateFleet, []string{"spends at most 86.1% of it", "write --rate-limit 1000/10s (97.4% of it)"}},
		{RateLimit{N: 200, Per: 2 * time.Second}, RateProcess, []string{"rate limit 200/2s", "write --rate-limit 1000/10s (98.4% of it)"}},
		{RateLimit{N: 7, Per: 3 * time.Second}, RateFleet, []string{"spends at most 81.6% of it"}},
		{RateLimit{N: 1_000_000, Per: time.Second}, RateFleet, []string{"spends at most 86.1% of it"}},
	} {
		msg, ok := rateWarning(tc.limit, tc.scope)
		if ok != (tc.want != nil) {
			t.Errorf("%s %s: warned %v (%q), want %v", tc.limit, tc.scope, ok, msg, tc.want != nil)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s %s: %q does not say %q", tc.limit, tc.scope, msg, w)
			}
		}
		if len(tc.want) == 1 && strings.Contains(msg, "--rate-limit") {
			t.Errorf("%s: %q suggests a form that is not its window's or not valid", tc.limit, msg)
		}
	}
}

// TestRateKeyIsAFingerprint: a fleet budget's RateKey is exactly what
// KeyFingerprint returns. The secret key itself, given by mistake, was
// accepted and published as a key name in the rate-budget bucket; the
// error names neither it nor any other value, only its length and what to
// use.
func TestRateKeyIsAFingerprint(t *testing.T) {
	key := "sk_" + "live_" + strings.Repeat("A1b2C3d4", 6)
	for _, tc := range []struct {
		name, rateKey string
		ok            bool
	}{
		{"the key's fingerprint", KeyFingerprint(key), true},
		{"the key itself", key, false},
		{"a key longer than 64", key + strings.Repeat("z", 30), false},
		{"a name", "production", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.RateKey = tc.rateKey
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok %v", err, tc.ok)
			}
			if err == nil {
				return
			}
			if strings.Contains(err.Error(), tc.rateKey) {
				t.Errorf("the error quotes the rate key: %q", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("(%d characters)", len(tc.rateKey))) || !strings.Contains(err.Error(), "KeyFingerprint(secret key)") {
				t.Errorf("the error does not say the length and what to use: %q", err)
			}
		})
	}
}

// TestDefaultInstanceFromAnyHost: the default instance name is made from
// the host name, which may be a dotted FQDN or hold anything; it is always
// a valid instance name, and still says which host.
func TestDefaultInstanceFromAnyHost(t *testing.T) {
	for host, want := range map[string]string{
		"ip-10-0-0-1.ec2.internal": "ip-10-0-0-1-",
		"worker-7":                 "worker-7-",
		"":                         "worker-",
		"bad host!":                "bad-host--",
		strings.Repeat("h", 300):   strings.Repeat("h", 40) + "-",
	} {
		name := instanceFor(host, "ABCDEF123456")
		if err := checkInstance(name); err != nil || !strings.HasPrefix(name, want) {
			t.Errorf("host %.20q: instance %q (%v); want a valid name starting %q", host, name, err, want)
		}
	}
}

// TestValidateRefusesLimitsTheBudgetRefuses: a limit the rate budget
// cannot run (10 ns windows: time.Second forgotten; more calls than it
// schedules) passed Validate and New, and in the fleet scope failed only
// in Run, after the streams were set up. Validate refuses it, naming the
// setting, in either scope.
func TestValidateRefusesLimitsTheBudgetRefuses(t *testing.T) {
	for _, l := range []RateLimit{{N: 1000, Per: 10}, {N: 2_000_000, Per: time.Second}, {N: 10, Per: 48 * time.Hour}} {
		for _, scope := range []RateScope{RateFleet, RateProcess} {
			c := DefaultConfig()
			c.RateLimit, c.RateScope, c.RateKey = l, scope, KeyFingerprint("sk_test_validate")
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), "rate limit ") {
				t.Errorf("%s %s: Validate() = %v, want an error starting \"rate limit\"", l, scope, err)
			}
		}
	}
	// Slots 20 min apart: the fleet's budget cannot run it (see
	// ratebudget.CheckFleetLimit), a process's own can.
	c := DefaultConfig()
	c.RateLimit, c.RateScope, c.RateKey = RateLimit{N: 4, Per: time.Hour}, RateFleet, KeyFingerprint("sk_test_validate")
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "rate limit 4/h: ") {
		t.Errorf("4/h in the fleet scope: Validate() = %v, want an error starting \"rate limit 4/h: \"", err)
	}
	c.RateScope = RateProcess
	if err := c.Validate(); err != nil {
		t.Errorf("4/h in the process scope: %v", err)
	}
	c = DefaultConfig()
	c.RateKey = KeyFingerprint("sk_test_validate")
	if err := c.Validate(); err != nil {
		t.Errorf("the default limit: %v", err)
	}
}

// TestValidateNamesTheRateScopeForASlowFleetLimit: a limit the fleet's
// budget refuses (4/h: slots 20 min apart) is Clerk's limit as Clerk states
// it, and runs in the process scope. Validate's refusal ended with "want
// calls per window as Clerk states it, e.g. 1000/10s", as for a malformed
// limit, and named no setting to change; it now names the rate scope.
func TestValidateNamesTheRateScopeForASlowFleetLimit(t *testing.T) {
	c := DefaultConfig()
	c.RateLimit, c.RateScope, c.RateKey = RateLimit{N: 4, Per: time.Hour}, RateFleet, KeyFingerprint("sk_test_validate")
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `rate scope to "process"`) || strings.Contains(err.Error(), "as Clerk states it") {
		t.Errorf("4/h in the fleet scope: Validate() = %v; want it to name the rate scope to set, not ask for another limit", err)
	}
}

// TestValidateRefusesAProbeIntervalUnderTheFloor: an interval of a
// nanosecond was accepted, and an open circuit then probed Clerk without
// pause, logging a line at each probe. The floor itself is accepted.
func TestValidateRefusesAProbeIntervalUnderTheFloor(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		ok       bool
	}{
		{-time.Second, false}, {0, false}, {time.Nanosecond, false}, {MinProbeInterval - 1, false},
		{MinProbeInterval, true}, {5 * time.Second, true},
	} {
		c := DefaultConfig()
		c.RateKey = KeyFingerprint("sk_test_validate")
		c.ProbeInterval = tc.interval
		err := c.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.HasPrefix(err.Error(), "probe interval ")) {
			t.Errorf("probe interval %s: Validate() = %v, want ok %v", tc.interval, err, tc.ok)
		}
	}
}
