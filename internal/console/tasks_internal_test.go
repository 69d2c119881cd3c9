package console

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestRegistryBoundsRunningTasks: however many start at once, maxRunning
// tasks run; the others are refused with errBusy and leave no trace in the
// registry. A task that ends makes room for another.
func TestRegistryBoundsRunningTasks(t *testing.T) {
	g := newRegistry()
	p := &plan{Kind: actReplay, Seqs: []uint64{1}}
	release := make(chan struct{})
	block := func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	const tries = 3 * maxRunning
	var wg sync.WaitGroup
	errs := make([]error, tries)
	started := make([]*task, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started[i] = newTask(actReplay, p, true)
			errs[i] = g.start(context.Background(), started[i], block)
		}()
	}
	wg.Wait()
	var ok []*task
	for i, err := range errs {
		switch {
		case err == nil:
			ok = append(ok, started[i])
		case !errors.Is(err, errBusy):
			t.Fatalf("start: %v, want nil or errBusy", err)
		case g.task(started[i].ID) != nil:
			t.Errorf("a refused task is registered")
		}
	}
	if len(ok) != maxRunning || len(g.recent()) != maxRunning {
		t.Fatalf("%d started, %d registered; want %d of %d", len(ok), len(g.recent()), maxRunning, tries)
	}
	ok[0].stop()
	deadline := time.Now().Add(10 * time.Second)
	for ok[0].running() {
		if time.Now().After(deadline) {
			t.Fatal("a stopped task still runs")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := g.start(context.Background(), newTask(actPurge, p, false), block); err != nil {
		t.Errorf("after one ended: %v", err)
	}
	close(release)
}
