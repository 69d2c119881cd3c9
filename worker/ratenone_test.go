package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestNoRateLimitKeepingItsWindow: a limit of 0 calls is no limit
// (RateLimit.Unlimited), whatever window is left in it, as from
// DefaultConfig with N set to 0. Such a configuration ran in the fleet
// scope; Validate must not refuse it as "rate limit none: 0 calls is not
// between 1 and …", which names the very value it suggests, and New must
// run it in either scope.
func TestNoRateLimitKeepingItsWindow(t *testing.T) {
	env := testenv.New(t)
	for _, scope := range []worker.RateScope{worker.RateFleet, worker.RateProcess} {
		cfg := env.WorkerConfig()
		cfg.RateLimit, cfg.RateScope = worker.RateLimit{N: 0, Per: 10 * time.Second}, scope
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s scope, %d per %s: Validate() = %v, want no limit", scope, cfg.RateLimit.N, cfg.RateLimit.Per, err)
			continue
		}
		if _, err := worker.New(env.NC, env.ClerkClient(t, ""), cfg); err != nil && strings.Contains(err.Error(), "rate limit") {
			t.Errorf("%s scope: New() = %v, want no limit", scope, err)
		}
	}
}
