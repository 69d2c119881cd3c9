package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestInstanceNameIsOneToken: the instance name is one token of the
// worker's status subject (clerkjobs.worker.<instance>.status, granted as
// clerkjobs.worker.*.status in deploy/nats) and goes into every record. A
// name that cannot be that token is refused by New, naming the setting,
// before anything is asked of NATS: before, a name with a space or a
// newline stopped Run with "invalid endpoint subject", one of 5000
// characters closed the NATS connection for good ("maximum control line
// exceeded"), one with a dot left the status endpoint outside the grant,
// and a Clerk key was written into every result.
func TestInstanceNameIsOneToken(t *testing.T) {
	e := testenv.New(t)
	for _, tc := range []struct{ name, instance, want string }{
		{"dot", "worker-1.eu", "only letters, digits"},
		{"space", "worker 1", "only letters, digits"},
		{"newline", "worker\n1", "only letters, digits"},
		{"escape", "\x1b[31mred", "only letters, digits"},
		{"wildcard", "w*", "only letters, digits"},
		{"huge", strings.Repeat("x", 5000), "1 to 64 characters"},
		{"clerk key", "sk_" + "live_" + "4fTq9ZbW2xKcL8mN3vRy7HjD", "shaped like a secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.WorkerConfig()
			cfg.Instance = tc.instance
			w, err := worker.New(e.NC, e.ClerkClient(t, ""), cfg)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				runErr := w.Run(ctx)
				t.Fatalf("New accepted instance %.40q; Run: %v (NATS connection closed: %v)", tc.instance, runErr, e.NC.IsClosed())
			}
			if !strings.Contains(err.Error(), "instance name") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New with instance %.40q: %v; want an error about the instance name saying %q", tc.instance, err, tc.want)
			}
			if strings.Contains(err.Error(), "4fTq9ZbW") || len(err.Error()) > 400 {
				t.Errorf("the error repeats the value: %.200q", err.Error())
			}
		})
	}
	// The default name is one too.
	cfg := e.WorkerConfig()
	cfg.Instance = worker.DefaultConfig().Instance
	if err := cfg.Validate(); err != nil {
		t.Errorf("the default instance name %q: %v", cfg.Instance, err)
	}
}
