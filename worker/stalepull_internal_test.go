package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// busyPullAcrossRecreate: a pull of consumer C1 with every slot busy and
// its prefetch full; the consumer is deleted (its jobs purged) and created
// again (C2) more than a second after C1; a create is published. The
// watcher has read C1, not yet C2. It returns the worker, the two
// consumers, and the pull's channels; take runs in a goroutine reporting
// on done.
func busyPullAcrossRecreate(t *testing.T) (w *Worker, c1, c2 jetstream.Consumer, slots chan struct{}, queue chan *delivery, done chan error) {
	w, c1, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	b := w.prefetch()
	for range b + 1 {
		if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	slots, queue, done = make(chan struct{}, b+2), make(chan *delivery, b+2), make(chan error, 1)
	release := func() { slots <- struct{}{} }
	slots <- struct{}{} // the pull starts with Next: one slot, then all busy
	go func() { _, err := w.take(ctx, c1, slots, release, queue); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := c1.Info(ctx)
		if err == nil && info.NumAckPending >= b && info.NumWaiting == 0 {
			break // the pull's request answered in full: none waits at the server
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pull never prefetched: %+v %v", info, err)
		}
	}
	if err := js.DeleteConsumer(ctx, topo.JobsStream, topo.Consumer); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, topo.JobsStream)
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(c1.CachedInfo().Created.Add(1100 * time.Millisecond)))
	c2, err := w.ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpCreate), []byte(`{"user_id":"user_x"}`)); err != nil {
		t.Fatal(err)
	}
	return w, c1, c2, slots, queue, done
}

// TestBusyPullTakesNoJobOfTheNextConsumerAsItsOwn: until the watcher
// read C2, the pull's next request was served by C2, whose first delivery
// of a create came stamped with C1's creation; stored more than a second
// after C1, it was not looked for (mayBeAgain), so a create recorded with
// its ack lost in the old consumer ran again. C2's consumer sequences
// start again below the pull's: the pull ends there.
func TestBusyPullTakesNoJobOfTheNextConsumerAsItsOwn(t *testing.T) {
	w, c1, _, slots, queue, done := busyPullAcrossRecreate(t)
	for range w.prefetch() + 1 {
		slots <- struct{}{}
		select {
		case d := <-queue:
			if d.msg.Subject() != w.cfg.Topology.Subjects.Job(jobs.OpCreate) {
				continue
			}
			if d.consumerCreated.Equal(c1.CachedInfo().Created) && !d.mayBeAgain() {
				t.Errorf("C2's first delivery of a create (consumer seq %d) taken stamped with C1's creation, not looked for: "+
					"recorded under C1 with its ack lost, Clerk is asked again", d.meta.Sequence.Consumer)
			}
			return
		case err := <-done:
			t.Logf("pull ended: %v", err)
			return
		case <-time.After(10 * time.Second):
			t.Fatal("no job taken")
		}
	}
}

// TestRenewalEndsThePullWithSlotsIntact: a pull ended by a renewal gives
// back every slot it took, and a token left by a lagging read does not end
// a pull of the new consumer.
func TestRenewalEndsThePullWithSlotsIntact(t *testing.T) {
	w, _, c2, slots, queue, done := busyPullAcrossRecreate(t)
	taken := []*delivery{<-queue}
	for range 2 {
		slots <- struct{}{}
		taken = append(taken, <-queue)
	}
	w.observeConsumer(c2.CachedInfo()) // the watcher reads C2
	if err := <-done; !errors.Is(err, errConsumerRenewed) {
		t.Fatalf("take: %v, want errConsumerRenewed", err)
	}
	for _, d := range taken {
		d.release()
	}
	if len(slots) != 3 {
		t.Errorf("%d slots free after the renewal, want 3", len(slots))
	}
	// A lagging read (C1 again), then C2: the token left must not end a
	// pull of C2, nor must a stale token.
	w.observeConsumer(&jetstream.ConsumerInfo{Created: c2.CachedInfo().Created.Add(-time.Hour), Config: c2.CachedInfo().Config})
	w.observeConsumer(c2.CachedInfo())
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() { _, err := w.take(ctx, c2, slots, func() { slots <- struct{}{} }, queue); res <- err }()
	d := <-queue // the create published after C2
	if d.consumerCreated != c2.CachedInfo().Created {
		t.Errorf("stamped %v, want C2 %v", d.consumerCreated, c2.CachedInfo().Created)
	}
	cancel()
	if err := <-res; err != nil {
		t.Errorf("pull of C2 ended by %v", err)
	}
}

// readConsumer starts a server and a worker on it (not running), creates
// the worker's consumer and has the worker take it in, as its watcher
// would. It returns the worker, the consumer and the server's JetStream.
func readConsumer(t *testing.T) (*Worker, jetstream.Consumer, jetstream.JetStream) {
	t.Helper()
	srv := embedded.StartTest(t)
	w := newEmulatedWorker(t, srv.Conn)
	c, err := w.ensure(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.observeConsumer(c.CachedInfo())
	js, err := jetstream.New(srv.Conn)
	if err != nil {
		t.Fatal(err)
	}
	return w, c, js
}
