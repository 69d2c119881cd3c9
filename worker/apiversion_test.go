package worker_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestCircuitOpensOnRetiredAPIVersion: once Clerk retires the API version
// the worker sends (Clerk-API-Version), it answers every request 400
// api_version_invalid, whatever it asks. Taken as the request's fault
// (permanent), that dead-lettered every job one by one; now the circuit
// holds the jobs, /readyz says the version is refused, and they run once
// Clerk accepts it again.
func TestCircuitOpensOnRetiredAPIVersion(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 3)
	var retired atomic.Bool
	var refused atomic.Int64
	retired.Store(true)
	clerk := env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retired.Load() {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":[{"message":"API version invalid","long_message":"The API version ` +
				r.Header.Get("Clerk-API-Version") + ` is not supported.","code":"api_version_invalid","meta":{}}],"meta":{},"clerk_trace_id":"t1"}`))
			return
		}
		emu.ServeHTTP(w, r)
	}))
	w := env.StartWorkerWith(t, clerk, env.WorkerConfig())
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 5*time.Second, "circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	if err := w.Worker.Ready(); err == nil || !strings.Contains(err.Error(), "API version") || !strings.Contains(err.Error(), "api_version_invalid") {
		t.Errorf("Ready() = %v, want the circuit open on the API version refused", err)
	}
	// Probes go on being refused: the jobs stay held, none is blamed.
	seen := refused.Load()
	testenv.Eventually(t, 5*time.Second, "more probes refused", func() bool { return refused.Load() >= seen+3 })
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Fatalf("%d jobs dead-lettered while Clerk refused the API version", n)
	}
	retired.Store(false)
	testenv.Eventually(t, 10*time.Second, "all jobs done once Clerk accepts the version", func() bool { return len(env.Results(t)) == 3 })
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}
