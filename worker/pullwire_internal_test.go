package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/internal/netproxy"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestJobsOnTheWireAsAPauseBeginsAreHeld: a pull that ends (a pause, a
// failed pull, a stop) reads what reaches the worker before the server
// answers the pull's end. endPull read for a second and stopped at a
// missed heartbeat: jobs the server had sent and counted delivered that
// arrived later (a loaded machine, a slow link) sat unread in the ended
// pull's buffer, neither held nor handed back, until the ack wait (30 s)
// gave them back, a delivery spent. Here the server's bytes take 2.5 s to
// arrive.
func TestJobsOnTheWireAsAPauseBeginsAreHeld(t *testing.T) {
	srv := embedded.StartTest(t)
	px := netproxy.Start(t, srv.URL)
	nc, err := nats.Connect(px.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// One slot; a pull request that waits long (the slot busy, no Next
	// sends another).
	w := newEmulatedWorker(t, nc, func(c *Config) { c.Concurrency, c.FetchMaxWait = 1, 30*time.Second })
	cons, err := w.ensure(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.observeConsumer(cons.CachedInfo())
	topo := w.cfg.Topology
	publish := func(job string) {
		t.Helper()
		if _, err := srv.JetStream.Publish(t.Context(), topo.Subjects.Job(jobs.OpRevoke), []byte(job)); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := srv.JetStream.Consumer(t.Context(), topo.JobsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	delivered := func() int {
		t.Helper()
		info, err := direct.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending
	}

	// The one slot busy with a job the test never releases: the pull has
	// asked for the prefetch (2) and waits.
	publish(`{"session_id":"sess_x"}`)
	queue, loop := make(chan *delivery, 4), make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { loop <- w.fetchLoop(ctx, cons, queue) }()
	t.Cleanup(func() { cancel(); <-loop })
	<-queue

	// A job the server sends at once (the rest of the prefetch), on the
	// wire for 2.5 s, as the worker pauses.
	px.Delay(2500 * time.Millisecond)
	sent := px.ServerSends([]byte(`{"session_id":"sess_y"}`))
	publish(`{"session_id":"sess_y"}`)
	// On the wire: the consumer counts a job delivered before the server
	// sends it (a loaded server sends it later, after the pull's end, to
	// no one: that one is lost until the ack wait, whatever endPull does).
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server never sent the second job to the pull (%d delivered)", delivered())
	}
	openCircuit(t, w)
	for deadline := time.Now().Add(10 * time.Second); w.inflight.len() != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs in flight (held or running) 10 s into the pause, %d delivered: the job on the wire as the pull ended is in no one's hands",
				w.inflight.len(), delivered())
		}
	}
	// Held, not handed back: its first delivery, not spent.
	if w.inflight.any(func(d *delivery) bool { return d.meta.NumDelivered != 1 }) {
		t.Error("a job held on a later delivery than its first: handed back, a delivery spent")
	}
}

// TestPullEndWaitEndsWithTheConnection: a pull that ends while the
// connection is lost does not wait pullEndWait for the server's answer
// (it comes after the reconnection, or never; the jobs on the wire are
// lost with the connection): a stop or pause during a reconnect went on
// at once before endPull waited for the answer, and still does.
func TestPullEndWaitEndsWithTheConnection(t *testing.T) {
	srv := embedded.StartTest(t)
	px := netproxy.Start(t, srv.URL)
	nc, err := nats.Connect(px.URL, nats.MaxReconnects(-1), nats.ReconnectWait(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := newEmulatedWorker(t, nc)

	wait, cancel := w.drainWait()
	defer cancel()
	if wait.Err() != nil {
		t.Fatalf("the wait over on a connection that is up: %v", wait.Err())
	}
	px.Close() // the connection is lost as the worker waits
	<-wait.Done()
	if !errors.Is(wait.Err(), context.Canceled) {
		t.Fatalf("the wait ended by %v with the connection %v: it lasted pullEndWait, not ended by the connection's loss", wait.Err(), nc.Status())
	}
	lost, cancelLost := w.drainWait()
	defer cancelLost()
	if lost.Err() == nil {
		t.Fatalf("a wait begun with the connection %v not over at once", nc.Status())
	}
}
