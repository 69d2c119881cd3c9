package worker

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRunHeldSkipsJobsOfARecreatedConsumer: a resumed worker runs its held
// jobs as slots free (runHeld). The consumer deleted and created again
// while runHeld waits for a slot delivers the held job anew (perhaps to
// another worker): run here too, Clerk is called twice. runHeld drops a
// held job of a deleted stream (void), not one of a recreated consumer.
func TestRunHeldSkipsJobsOfARecreatedConsumer(t *testing.T) {
	srv := embedded.StartTest(t)
	w := newEmulatedWorker(t, srv.Conn)
	ctx := t.Context()
	cons, err := w.ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	topo := w.cfg.Topology
	js, _ := jetstream.New(srv.Conn)
	if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatal("no job delivered")
	}
	w.observeConsumer(cons.CachedInfo()) // the watcher's read of the first consumer
	held := w.admit(msg, cons.CachedInfo().Created, w.records.created.Load(), func() {})
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
