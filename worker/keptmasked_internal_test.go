package worker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestBackstopHeardAdvisoryOfAJobAKeptOneNamedFirst: the given-up stream
// kept an advisory of a job from a consumer deleted since, which no worker
// heard; the consumer made again delivered the job afresh, and gave up on
// it in turn, its advisory heard here, while an older job ran (pending,
// the ack floor below). The kept advisory, noted first, held the job's
// place among the candidates: the one heard was dropped, and the job
// waited for the ack floor to pass it (the older job settled), not the
// rescue's grace.
//
// Unheard too (no backstop running when JetStream gave up again), the
// newer kept advisory was left for the older one's end.
func TestBackstopHeardAdvisoryOfAJobAKeptOneNamedFirst(t *testing.T) {
	for _, heard := range []bool{true, false} {
		t.Run(map[bool]string{true: "heard", false: "kept"}[heard], func(t *testing.T) {
			t.Parallel() // each on a server of its own, mostly waiting out ack waits
			testBackstopNewerAdvisory(t, heard)
		})
	}
}

func testBackstopNewerAdvisory(t *testing.T, heard bool) {
	srv := embedded.StartTest(t)
	w := newEmulatedWorker(t, srv.Conn, func(cfg *Config) {
		cfg.Topology.AckWait, cfg.Topology.MaxDeliver = 2*time.Second, 3
		cfg.SweepInterval = time.Hour // the kept advisory read at the start only
	})
	ctx := t.Context()
	topo := w.cfg.Topology
	if _, err := w.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(srv.Conn)
	if err != nil {
		t.Fatal(err)
	}
	count := func(stream string) uint64 {
		t.Helper()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	var seqs []uint64
	for _, id := range []string{"sess_older", "sess_givenup"} {
		m, err := jobs.NewMessage(topo.Subjects, &jobs.GetArgs{SessionID: id})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	job := seqs[1]
	// The former consumer's advisory; the consumer is deleted, and made
	// again.
	old := &nats.Msg{Subject: topo.MaxDeliveriesSubject(), Data: fmt.Appendf(nil, `{"stream_seq":%d,"deliveries":%d,"timestamp":%q}`,
		job, topo.MaxDeliver+jobs.BackstopMargin, time.Now().UTC().Format(time.RFC3339Nano))}
	if err := srv.Conn.PublishMsg(old); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); count(topo.GivenUpStream()) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if err := js.DeleteConsumer(ctx, topo.JobsStream, topo.Consumer); err != nil {
		t.Fatal(err)
	}
	cons, err := w.ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.observeConsumer(cons.CachedInfo())
	// The older job runs (kept in progress) for the whole test.
	b, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var held jetstream.Msg
	for m := range b.Messages() {
		if md, _ := m.Metadata(); md != nil && md.Sequence.Stream == seqs[0] {
			held = m
		}
	}
	if held == nil {
		t.Fatal("the older job was not delivered")
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
				_ = held.InProgress()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	ch, unsub := w.listenMaxDeliveries()
	defer unsub()
	if heard {
		go w.backstop(ctx, ch)
	}
	// The job crashes on every delivery: JetStream gives up, heard here.
	given := func() bool {
		ci, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ci.NumAckPending == 1
	}
	for i := 0; !given(); i++ {
		if i == 12 {
			ci, _ := cons.Info(ctx)
			t.Fatalf("JetStream did not give up on the job: %d kept, consumer %+v %+v pending %d", count(topo.GivenUpStream()), ci.Delivered, ci.AckFloor, ci.NumAckPending)
		}
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range b.Messages() { // not acked: a crash
		}
	}
	for deadline := time.Now().Add(5 * time.Second); count(topo.GivenUpStream()) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !heard {
		go w.backstop(ctx, nil)
	}
	deadline := time.Now().Add(4 * (topo.AckWait + time.Second))
	for count(topo.DeadLetterStream) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if count(topo.DeadLetterStream) == 0 {
		t.Errorf("the job JetStream gave up on is not dead-lettered while an older job runs (%d advisories kept)", count(topo.GivenUpStream()))
	}
}
