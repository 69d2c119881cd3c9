package clerkjobstest_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestStartSaysWhyTheWorkerStopped: a worker whose Run fails at once (its
// configuration does not fit the streams: here memory storage for streams
// created on file) never becomes ready. Start polled its readiness for 15
// s and then said only "worker not ready after 15s: not running", hiding
// Run's error, which names the setting and what to do. It now returns
// Run's error as soon as Run returns.
func TestStartSaysWhyTheWorkerStopped(t *testing.T) {
	env, err := clerkjobstest.Start(clerkjobstest.WithWorkerConfig(func(c *worker.Config) { c.Topology.Storage = jetstream.MemoryStorage }))
	if err == nil {
		env.Close()
		t.Fatal("Start with a worker that cannot run succeeded")
	}
	if strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "worker Run") {
		t.Fatalf("Start = %v; want the error worker Run returned", err)
	}
}
