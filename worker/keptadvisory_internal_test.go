package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestKeptAdvisoryOfAnotherGivenUpStreamIsLeft: a job's kept advisory is
// named by its sequence. The given-up stream deleted and created again
// while the job waited its rescue (a dead-letter stream full, say) numbers
// its advisories from 1 again: the rescue's delete of the old sequence
// removed another job's advisory, kept for no worker then.
func TestKeptAdvisoryOfAnotherGivenUpStreamIsLeft(t *testing.T) {
	w, _, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	advise := func(jobSeq uint64) {
		t.Helper()
		m := &nats.Msg{Subject: topo.MaxDeliveriesSubject(), Data: fmt.Appendf(nil, `{"stream_seq":%d,"deliveries":5,"timestamp":%q}`, jobSeq, time.Now().UTC().Format(time.RFC3339Nano))}
		if err := w.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		if err := w.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	kept := &keptAdvisories{w: w}
	advise(7)
	var old []storedAdvisory
	for deadline := time.Now().Add(5 * time.Second); len(old) == 0 && time.Now().Before(deadline); {
		old = kept.read(ctx)
	}
	if len(old) != 1 {
		t.Fatalf("read %d kept advisories, want 1", len(old))
	}
	if err := js.DeleteStream(ctx, topo.GivenUpStream()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the deletion ends (deletionSettle)
	if err := topo.EnsureGivenUpStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	advise(9)
	var now []storedAdvisory
	for deadline := time.Now().Add(5 * time.Second); len(now) == 0 && time.Now().Before(deadline); {
		now = kept.read(ctx)
	}
	if len(now) != 1 || now[0].seq != old[0].seq || now[0].jobSeq != 9 {
		t.Fatalf("kept advisories now %+v; want job 9's at the old one's sequence %d", now, old[0].seq)
	}
	kept.drop(ctx, old[0].seq, old[0].in) // job 7 rescued
	if got := kept.read(ctx); len(got) != 1 || got[0].jobSeq != 9 {
		t.Errorf("kept advisories after job 7's was dropped: %+v; want job 9's", got)
	}
}

// TestKeptAdvisoryDropBeforeTheNextRead: the given-up stream deleted and
// created again (by an operator, or another worker's sweep) between this
// worker's read of a job's advisory and its rescue: the rescue's delete
// came before the worker read the stream again, and its cached creation,
// the old stream's, matched the advisory's: the delete, by sequence and
// the stream's name, removed another job's advisory from the new stream.
func TestKeptAdvisoryDropBeforeTheNextRead(t *testing.T) {
	w, _, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	advise := func(jobSeq uint64) {
		t.Helper()
		m := &nats.Msg{Subject: topo.MaxDeliveriesSubject(), Data: fmt.Appendf(nil, `{"stream_seq":%d,"deliveries":5,"timestamp":%q}`, jobSeq, time.Now().UTC().Format(time.RFC3339Nano))}
		if err := w.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		if err := w.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	kept := &keptAdvisories{w: w}
	advise(7)
	var old []storedAdvisory
	for deadline := time.Now().Add(5 * time.Second); len(old) == 0 && time.Now().Before(deadline); {
		old = kept.read(ctx)
	}
	if len(old) != 1 {
		t.Fatalf("read %d kept advisories, want 1", len(old))
	}
	if err := js.DeleteStream(ctx, topo.GivenUpStream()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the deletion ends (deletionSettle)
	if err := topo.EnsureGivenUpStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	advise(9)
	held := func() uint64 {
		t.Helper()
		s, err := js.Stream(ctx, topo.GivenUpStream())
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	for deadline := time.Now().Add(5 * time.Second); held() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	kept.drop(ctx, old[0].seq, old[0].in) // job 7 rescued, no read since
	if n := held(); n != 1 {
		t.Errorf("the new given-up stream holds %d advisories after job 7's was dropped; want job 9's kept", n)
	}
}
