package worker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestFleetSharesTheKeysLimit: three workers configured with Clerk's own
// limit, the same on each, against an emulator enforcing exactly that
// limit in fixed or sliding windows: they share it, so not one call is a
// 429 and no window of its length holds more calls than the limit — also
// when one of them stops mid-run (its share goes to the others).
func TestFleetSharesTheKeysLimit(t *testing.T) {
	const n, per = 30, time.Second
	for _, mode := range []emulator.RateLimitMode{emulator.FixedWindow, emulator.SlidingWindow} {
		t.Run(string(mode), func(t *testing.T) {
			env := testenv.New(t, emulator.WithRateLimit(n, per), emulator.WithRateLimitMode(mode))
			emu := env.Clerk.Emulator
			ids := emu.CreateSessions(emu.CreateUser(), 150)
			var workers []*testenv.Running
			for i := range 3 {
				workers = append(workers, env.StartWorker(t, func(c *worker.Config) {
					c.Instance = fmt.Sprintf("fleet-%d", i)
					c.RateLimit = worker.RateLimit{N: n, Per: per}
				}))
			}
			for _, id := range ids {
				env.Publish(t, &jobs.RevokeArgs{SessionID: id})
			}
			testenv.Eventually(t, 30*time.Second, "a third done", func() bool { return len(env.Results(t)) >= len(ids)/3 })
			workers[2].Stop(t)
			testenv.Eventually(t, 60*time.Second, "every job done by the other two", func() bool { return len(env.Results(t)) == len(ids) })
			calls := emu.Calls()
			for _, c := range calls {
				if c.Status == 429 {
					t.Fatalf("a 429 at %s: the fleet went over the key's limit", c.Time.Format(time.StampMicro))
				}
			}
			if w := emulator.WorstWindow(calls, per); w > n {
				t.Errorf("%d calls in one %s window, limit %d", w, per, n)
			}
			st := workers[0].Worker.Status()
			if st.RateBudget == nil || st.RateBudget.Scope != "fleet" || st.RateBudget.Limit != (worker.RateLimit{N: n, Per: per}).String() {
				t.Errorf("status rate budget %+v", st.RateBudget)
			}
		})
	}
}

// TestA429PausesTheWholeFleet: one worker's call is answered 429 with
// Retry-After: 1; every worker sharing the key stops calling for that
// second, although the other one's calls (other sessions) would succeed.
func TestA429PausesTheWholeFleet(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 120)
	throttled := ids[40]
	emu.FailSession(throttled, 429)
	for i := range 2 {
		env.StartWorker(t, func(c *worker.Config) {
			c.Instance = fmt.Sprintf("pause-%d", i)
			c.Concurrency = 2
			c.RateLimit = worker.RateLimit{N: 40, Per: time.Second}
		})
	}
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	var first time.Time
	testenv.Eventually(t, 20*time.Second, "a 429", func() bool {
		for _, c := range emu.Calls() {
			if c.Status == 429 {
				first = c.Time
				return true
			}
		}
		return false
	})
	emu.FailSession(throttled, 0) // its retry succeeds after the pause
	testenv.Eventually(t, 30*time.Second, "every job done", func() bool { return len(env.Results(t)) == len(ids) })
	// Allow 150 ms on each side: the pause reaches the other worker through
	// JetStream, and a call already past its gate still arrives.
	var during []time.Time
	for _, c := range emu.Calls() {
		if c.Status == 200 && c.Time.After(first.Add(150*time.Millisecond)) && c.Time.Before(first.Add(850*time.Millisecond)) {
			during = append(during, c.Time)
		}
	}
	if len(during) > 0 {
		t.Errorf("%d calls went out during the Retry-After second after the 429 at %s (first at %s): the pause did not hold the fleet",
			len(during), first.Format(time.StampMilli), during[0].Format(time.StampMilli))
	}
}

// TestWorkerOutsideTheFleetSaysSo: a worker of a key whose budget a fleet
// shares, started in process scope or without a limit, calls Clerk outside
// that budget: together they can exceed the key's limit. It says so at
// start; before, nothing did.
func TestWorkerOutsideTheFleetSaysSo(t *testing.T) {
	const warning = "this one stays outside it"
	for _, tc := range []struct {
		name string
		edit func(*worker.Config)
		warn bool
	}{
		{"fleet scope, same limit", func(c *worker.Config) {}, false},
		{"process scope", func(c *worker.Config) { c.RateScope = worker.RateProcess }, true},
		{"no limit", func(c *worker.Config) { c.RateLimit = worker.RateLimit{} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			limit := func(c *worker.Config) { c.RateLimit = worker.RateLimit{N: 100, Per: 10 * time.Second} }
			fleet := env.StartWorker(t, limit)
			testenv.Eventually(t, 10*time.Second, "the fleet's heartbeat", func() bool {
				st := fleet.Worker.Status()
				return st.RateBudget != nil && st.RateBudget.Members >= 1
			})
			env.StartWorker(t, limit, tc.edit)
			if got := strings.Contains(env.Logs.String(), warning); got != tc.warn {
				t.Errorf("warned %v, want %v: %s", got, tc.warn, env.Logs.String())
			}
		})
	}
}
