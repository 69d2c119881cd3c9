package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestKeptAdvisoryOfAnotherGivenUpStreamIsLeft: a job's kept advisory is
// named by its sequence. The given-up stream deleted and created again
// (by an operator, or another worker's sweep) while the job waited its
// rescue (a dead-letter stream full, say) numbers its advisories from 1
// again: the rescue's delete, by sequence and the stream's name, removed
// another job's advisory, kept for no worker then. So it did when this
// worker had read the new stream since ("read again"), and when its
// delete came first, the old stream's creation still the one it knew.
func TestKeptAdvisoryOfAnotherGivenUpStreamIsLeft(t *testing.T) {
	for _, readAgain := range []bool{true, false} {
		t.Run(fmt.Sprintf("read again %v", readAgain), func(t *testing.T) {
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
			held := func() []uint64 {
				t.Helper()
				var jobs []uint64
				s, err := js.Stream(ctx, topo.GivenUpStream())
				if err != nil {
					t.Fatal(err)
				}
				for seq := s.CachedInfo().State.FirstSeq; s.CachedInfo().State.Msgs > 0 && seq <= s.CachedInfo().State.LastSeq; seq++ {
					m, err := s.GetMsg(ctx, seq)
					if err != nil {
						continue
					}
					adv, err := advisoryOf(m.Header, m.Data)
					if err != nil {
						t.Fatal(err)
					}
					jobs = append(jobs, adv.StreamSeq)
				}
				return jobs
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
			for deadline := time.Now().Add(5 * time.Second); len(held()) == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if readAgain {
				if now := kept.read(ctx); len(now) != 1 || now[0].seq != old[0].seq || now[0].jobSeq != 9 {
					t.Fatalf("kept advisories now %+v; want job 9's at the old one's sequence %d", now, old[0].seq)
				}
			}
			kept.drop(ctx, old[0].seq, old[0].in) // job 7 rescued
			if got := held(); len(got) != 1 || got[0] != 9 {
				t.Errorf("the new given-up stream holds advisories of jobs %v after job 7's was dropped; want job 9's", got)
			}
		})
	}
}
