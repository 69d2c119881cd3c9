package worker

import (
	"context"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

// TestRecreateWaitsOnlyForADeletion: recreate lets a deletion end before
// it creates what was deleted; with nothing missing (a record refused by a
// stream without a leader, say) there is nothing to wait for, and it
// waited all the same. A deadline shorter than the wait tells them apart.
func TestRecreateWaitsOnlyForADeletion(t *testing.T) {
	srv := embedded.StartTest(t)
	w := newEmulatedWorker(t, srv.Conn)
	if _, err := w.ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(t.Context(), deletionSettle/2)
	}
	ctx, cancel := short()
	_, err := w.recreate(ctx)
	cancel()
	if err != nil {
		t.Fatalf("recreate with nothing missing: %v; want no wait", err)
	}
	if err := srv.JetStream.DeleteStream(t.Context(), w.cfg.Topology.ResultsStream); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = short()
	_, err = w.recreate(ctx)
	cancel()
	if err == nil {
		t.Fatalf("recreate of a deleted stream within %v: no wait for its deletion to end", deletionSettle/2)
	}
	if _, err := w.recreate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.JetStream.Stream(t.Context(), w.cfg.Topology.ResultsStream); err != nil {
		t.Errorf("the results stream was not created again: %v", err)
	}
}
