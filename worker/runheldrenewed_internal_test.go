package worker

import (
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRunHeldSkipsJobsOfARecreatedConsumer: a resumed worker runs its held
// jobs as slots free (runHeld). The consumer deleted and created again
// while runHeld waits for a slot delivers the held job anew (perhaps to
// another worker): run here too, Clerk is called twice. runHeld drops a
// held job of a deleted stream (void), not one of a recreated consumer.
func TestRunHeldSkipsJobsOfARecreatedConsumer(t *testing.T) {
	w, cons, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
		t.Fatal(err)
	}
	held := w.admit(fetchOne(t, cons), cons.CachedInfo().Created, w.records.created.Load(), func() {})
	// stillHeld kept it (the consumer unchanged); every slot is busy.
	slots, queue := make(chan struct{}, 1), make(chan *delivery, 1)
	done := make(chan []*delivery, 1)
	go func() { left, _ := w.runHeld(ctx, []*delivery{held}, slots, queue); done <- left }()
	if err := js.DeleteConsumer(ctx, topo.JobsStream, topo.Consumer); err != nil {
		t.Fatal(err)
	}
	again, err := w.ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.observeConsumer(again.CachedInfo()) // the watcher reads the new consumer
	if !held.replaced() {
		t.Fatal("the held job is not seen as the replaced consumer's")
	}
	slots <- struct{}{} // a slot frees
	<-done
	if len(slots) != 1 {
		t.Errorf("%d slots free after the drop, want 1", len(slots))
	}
	select {
	case d := <-queue:
		t.Errorf("job %d of the deleted consumer ran from the held list after the worker read the new consumer", d.seq())
	default:
	}
}
