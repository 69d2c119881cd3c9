package clerkjobstest_test

import (
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
)

// TestStartWorkerFromParallelSubtests: subtests that share an Env run in
// parallel, and each may start a worker of its own. StartWorker appended
// the worker's stop to the Env's list of things to close without a lock:
// a data race (go test -race fails the test), and a worker whose entry was
// lost would outlive Close. The list is now guarded.
func TestStartWorkerFromParallelSubtests(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	for _, name := range []string{"a", "b", "c", "d"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if w := env.StartWorker(t); w.Ready() != nil {
				t.Errorf("worker %s not ready: %v", name, w.Ready())
			}
		})
	}
}
