package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

// A failed repair leaves why on /readyz. Once a pull works again the reason
// must go, also with no job waiting (none arrives to prove the pull works):
// after a NATS node was lost, the repair can fail while the cluster elects
// leaders and the next pull succeed, and the worker stayed "cannot fetch
// jobs" for good.
func TestStaleFetchErrorClearsOnceThePullLives(t *testing.T) {
	srv := embedded.StartTest(t)
	w := newEmulatedWorker(t, srv.Conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReady := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for w.Ready() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not ready after 15 s: %v", what, w.Ready())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitReady("start")
	stale := "cannot fetch jobs from consumer session-worker: context deadline exceeded"
	w.fetchErr.Store(&stale) // what a repair that failed meanwhile leaves
	waitReady("with the pull working and no job waiting")
}

// newEmulatedWorker is a worker on nc with the default configuration but
// no rate limit (and edits), calling an emulator of its own.
func newEmulatedWorker(t *testing.T, nc *nats.Conn, edits ...func(*Config)) *Worker {
	t.Helper()
	emu := emulator.NewServer()
	t.Cleanup(emu.Close)
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(emu.URL))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.RateLimit = RateLimit{}
	for _, edit := range edits {
		edit(&cfg)
	}
	w, err := New(nc, clerk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
