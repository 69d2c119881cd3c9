package worker_test

import (
	"fmt"
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
