package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRunHeldHoldsOnWhenTheWorkerPausesAgain: a resumed worker runs its
// held jobs as slots free (runHeld). The circuit opening again while
// runHeld waited for a slot did not stop it: the held jobs went to the
// slots one by one, to run against the open circuit, the deliveries their
// holding was to spare spent. runHeld returns them, still held and
// unsettled, once a pause begins, and leaves a job it has a slot for when
// the circuit is open as it hands it.
func TestRunHeldHoldsOnWhenTheWorkerPausesAgain(t *testing.T) {
	w, cons, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	var held []*delivery
	for range 2 {
		if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
			t.Fatal(err)
		}
		held = append(held, w.admit(fetchOne(t, cons), cons.CachedInfo().Created, w.records.created.Load(), func() {}))
	}
	stillHeld := func(ds []*delivery) {
		t.Helper()
		if len(ds) != len(held) {
			t.Fatalf("%d jobs still held, want %d", len(ds), len(held))
		}
		for i, d := range ds {
			d.mu.Lock()
			settled := d.settled
			d.mu.Unlock()
			if d != held[i] || settled || !w.inflight.holdsMsg(d.stored()) {
				t.Errorf("held job %d: returned %v (want job %d), settled %v, in flight %v",
					i, d.seq(), held[i].seq(), settled, w.inflight.holdsMsg(d.stored()))
			}
		}
	}

	// The circuit opens while runHeld waits (every slot busy), then a slot
	// frees.
	slots, queue := make(chan struct{}, 2), make(chan *delivery, 2)
	done := make(chan []*delivery, 1)
	go func() { left, _ := w.runHeld(ctx, held, slots, queue); done <- left }()
	openCircuit(t, w)
	slots <- struct{}{}
	select {
	case d := <-queue:
		t.Fatalf("held job %d handed to a slot while the circuit is open", d.seq())
	case left := <-done:
		stillHeld(left)
	case <-time.After(10 * time.Second):
		t.Fatal("runHeld still waits for a slot with the circuit open")
	}
	if len(slots) != 1 {
		t.Errorf("%d slots free after the pause, want 1", len(slots))
	}

	// The circuit open as a slot frees: runHeld may see either first, and
	// looks again before it hands the job.
	for range 20 {
		left, err := w.runHeld(ctx, held[:1], slots, queue)
		if err != nil {
			t.Fatal(err)
		}
		if len(queue) > 0 {
			t.Fatalf("held job %d handed to a free slot with the circuit open", (<-queue).seq())
		}
		if len(left) != 1 || len(slots) != 1 {
			t.Fatalf("%d jobs left held and %d slots free, want 1 and 1", len(left), len(slots))
		}
	}

	// Closed again, the jobs kept run, in their order.
	closeCircuit(w)
	slots <- struct{}{}
	if left, err := w.runHeld(ctx, held, slots, queue); len(left) != 0 || err != nil {
		t.Fatalf("runHeld with the circuit closed: %d left, %v", len(left), err)
	}
	for i := range held {
		if d := <-queue; d != held[i] {
			t.Errorf("job %d ran in place %d, want job %d", d.seq(), i, held[i].seq())
		}
	}
}

// TestRepeatedPausesHandBackHeldJobs: the held jobs are handed back once
// the worker has paused for three ack waits, counted over the pauses that
// held them, not one pause: held again by each pause that began before
// they all ran, and three ack waits counted anew each time, a circuit that
// kept opening again would hold them for good, a little shorter each
// time. Here the ack wait is 2 s, and three pauses of 3 s each held them:
// they go back in the third.
func TestRepeatedPausesHandBackHeldJobs(t *testing.T) {
	w, cons, js := readConsumer(t)
	ctx, cancel := context.WithCancel(t.Context())
	topo := w.cfg.Topology
	const ackWait = 2 * time.Second
	info := *cons.CachedInfo() // as the watcher reads an ack wait shortened
	info.Config.AckWait = ackWait
	w.observeConsumer(&info)
	n := w.cfg.Concurrency
	for range n + 8 {
		if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	queue, loop := make(chan *delivery, n+8), make(chan error, 1)
	go func() { loop <- w.fetchLoop(ctx, cons, queue) }()
	t.Cleanup(func() { cancel(); <-loop })
	running := make([]*delivery, 0, n) // every slot busy
	for range n {
		running = append(running, <-queue)
	}
	taken := n // the jobs handed to slots; the others delivered are held
	pending := func() int {
		t.Helper()
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending
	}
	// At least three jobs prefetched beside them. The pull asks for more
	// only as it takes a job (jetstream's Next), and its requests expire:
	// a slot is freed and taken again until they are there.
	for tries := 0; pending() < taken+3; tries++ {
		if tries == 50 {
			t.Fatalf("the pull never prefetched 3 jobs: %d delivered, %d taken", pending(), taken)
		}
		time.Sleep(100 * time.Millisecond)
		if tries%5 == 4 {
			running[0].release()
			running[0] = <-queue
			taken++
		}
	}
	openCircuit(t, w)
	for deadline := time.Now().Add(10 * time.Second); w.inflight.len() != pending(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the prefetched jobs not held: %d in flight, %d delivered", w.inflight.len(), pending())
		}
	}
	for i := range 2 {
		time.Sleep(3 * time.Second)
		closeCircuit(w)
		running[i].release() // a slot frees: a held job runs
		select {
		case <-queue:
			taken++
		case <-time.After(10 * time.Second):
			t.Fatalf("pause %d over: no held job ran in the slot freed", i+1)
		}
		openCircuit(t, w)
	}
	// The jobs still held, held for some 6 s of pause (5 s at least, the
	// first pause counted from the pull's end): handed back within the
	// third, well short of three ack waits of it alone.
	deadline := time.Now().Add(4 * time.Second)
	for w.inflight.len() != taken {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs in flight 4 s into the third pause, want %d: the %d still held not handed back after 6 s of pausing",
				w.inflight.len(), taken, w.inflight.len()-taken)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openCircuit opens w's circuit as a job refused for the key would, with
// no prober to close it.
func openCircuit(t *testing.T, w *Worker) {
	t.Helper()
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	w.circuit.trip(ended, errors.New("test: Clerk rejects the secret key"))
}

// closeCircuit closes w's circuit as its prober does once Clerk accepts the
// key again.
func closeCircuit(w *Worker) {
	w.circuit.mu.Lock()
	defer w.circuit.mu.Unlock()
	w.circuit.open.set(false)
	w.circuit.cause = ""
}
