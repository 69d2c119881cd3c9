package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// fetchOne takes one job from c, as another worker's pull would.
func fetchOne(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	b, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := <-b.Messages()
	if m == nil {
		t.Fatal("no job delivered")
	}
	return m
}

// TestLaggingConsumerReadKeepsJobsReplaced: the fetch loop and the
// watcher both take in what they read of the consumer. A watcher read
// answered before the consumer was created again, taken in after the
// fetch loop took in the new creation, set the old creation back: the old
// consumer's jobs in flight were no longer replaced, so their naks reached
// the new consumer's deliveries.
func TestLaggingConsumerReadKeepsJobsReplaced(t *testing.T) {
	w, c1, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
		t.Fatal(err)
	}
	d := w.admit(fetchOne(t, c1), c1.CachedInfo().Created, w.records.created.Load(), func() {})
	stale := c1.CachedInfo() // the watcher's read, answered before the deletion
	if err := js.DeleteConsumer(ctx, topo.JobsStream, topo.Consumer); err != nil {
		t.Fatal(err)
	}
	c2, err := w.ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.observeConsumer(c2.CachedInfo()) // fetchLoop, after a non-rising sequence
	w.observeConsumer(stale)           // the watcher takes its older answer in
	if !d.replaced() {
		t.Errorf("after a lagging watcher read, the old consumer's delivery is no longer replaced (consumerCreated went back from %v to %v)",
			c2.CachedInfo().Created, stale.Created)
	}
}

// TestRivalsProgressGoesWithTheRecordedJob: delivery A of a lock_user
// revoke_all dead-letters (lock refused) and drops the progress; a rival
// delivery B (A held past the ack wait) still runs, and its Handle saves
// the progress again (every checkpoint, and always at its end), then ends
// dead-lettered too: its letter finds A's, settleRecorded acks it, and
// nothing drops the progress B saved. The console lists the finished job
// as in progress for the bucket's TTL.
func TestRivalsProgressGoesWithTheRecordedJob(t *testing.T) {
	srv := embedded.StartTest(t)
	wA := newEmulatedWorker(t, srv.Conn)
	wB := newEmulatedWorker(t, srv.Conn)
	ctx := t.Context()
	c1, err := wA.ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wB.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	topo := wA.cfg.Topology
	js, _ := jetstream.New(srv.Conn)
	kv, err := js.KeyValue(ctx, topo.ProgressBucket)
	if err != nil {
		t.Fatal(err)
	}
	store := kvProgress{kv: kv}
	wA.progress, wB.progress = store, store
	if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevokeAll), []byte(`{"job_id":"ra-1","user_id":"user_x","lock_user":true}`)); err != nil {
		t.Fatal(err)
	}
	deliver := func(w *Worker, m jetstream.Msg) (*delivery, *job) {
		d := w.admit(m, c1.CachedInfo().Created, w.records.created.Load(), func() {})
		j := w.newJob(m.Subject(), d.seq(), d.meta.Timestamp, int(d.meta.NumDelivered))
		if err := w.decode(ctx, j, m.Headers(), m.Data()); err != nil {
			t.Fatal(err)
		}
		return d, j
	}
	mA := fetchOne(t, c1)
	dA, jA := deliver(wA, mA)
	_ = mA.Nak() // stands for A's ack wait passing: the job goes to B
	dB, jB := deliver(wB, fetchOne(t, c1))
	p := &handlers.BulkProgress{JobID: "ra-1", UserID: "user_x", Done: map[string]string{"sess_1": "revoked"}}
	if err := store.Save(withJob(ctx, jA), "ra-1", p); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("lock refused")
	wA.deadLetter(ctx, dA, jA, jA.errorInfo(jobs.ClassPermanent, refused)) // letter stored, progress dropped
	if err := store.Save(withJob(ctx, jB), "ra-1", p); err != nil {        // B's checkpoint / final save
		t.Fatal(err)
	}
	wB.deadLetter(ctx, dB, jB, jB.errorInfo(jobs.ClassPermanent, refused)) // finds A's letter: already recorded
	if got, _ := store.Load(withJob(ctx, jB), "ra-1"); got != nil {
		t.Errorf("the job is dead-lettered and acked, and its progress (saved by the rival after A dropped it) is left: %s",
			store.key(withJob(ctx, jB), "ra-1"))
	}
}
