package worker_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestStaleHeldCopyIsNotHandedBackAtStop: jobs wait in a busy worker's
// prefetch buffer past their ack wait, and JetStream gives them to another
// taker, which runs them. Then the busy worker's circuit opens: it holds
// the jobs its pull prefetched, stale copies among them, and hands them
// back when it stops. A nak names only the consumer and the job, so the
// stale copy's nak reached the other taker's running delivery and handed
// the job out once more (a create would make a second session). The
// pull's end already left such copies alone (TestStaleCopyIsNotHandedBackAtStop);
// the paused branch held them and handed them back all the same.
func TestStaleHeldCopyIsNotHandedBackAtStop(t *testing.T) {
	env := testenv.New(t)
	defer func() {
		if t.Failed() {
			t.Log(env.Logs.String())
		}
	}()
	ctx := t.Context()
	topo := env.Topology
	// The busy worker's own Clerk: its slot's call answers after a few ack
	// waits, and then rejects the key, which opens the circuit. Its pull
	// prefetches one job meanwhile (concurrency 1).
	own := emulator.NewServer()
	t.Cleanup(own.Close)
	own.Emulator.SetFaults(emulator.Faults{RejectKey: true, Latency: 3 * topo.AckWait})
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(own.URL))
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.WorkerConfig()
	cfg.Instance, cfg.Concurrency, cfg.DrainTimeout = "busy", 1, time.Second
	busy := env.StartWorkerWith(t, clerk, cfg)
	// A create prefetched: run twice, it makes a second session.
	user := env.Clerk.Emulator.CreateUser()
	env.Publish(t, &jobs.RevokeArgs{SessionID: env.Clerk.Emulator.CreateSessions(user, 1)[0]})
	env.Publish(t, &jobs.CreateArgs{UserID: user})
	cons, err := env.JS.Consumer(ctx, topo.JobsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "a job in the slot and one prefetched", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 2 && busy.Worker.Status().InFlight == 1
	})
	// The other taker: the prefetched job, once its ack wait passes,
	// kept alive for the rest of the test.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*topo.AckWait))
	if err != nil {
		t.Fatal(err)
	}
	taken := map[uint64]jetstream.Msg{}
	for m := range batch.Messages() {
		meta, _ := m.Metadata()
		taken[meta.Sequence.Stream] = m
	}
	if len(taken) != 1 {
		t.Fatalf("the other taker got %d jobs; want the prefetched one", len(taken))
	}
	go func() {
		tick := time.NewTicker(topo.AckWait / 4)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, m := range taken {
				_ = m.InProgress()
			}
		}
	}()
	testenv.Eventually(t, 10*time.Second, "the circuit open, the stale copy held", func() bool {
		st := busy.Worker.Status()
		return st.CircuitOpen && st.InFlight == 2
	})
	busy.Stop(t)
	// A job the other taker holds, delivered again now, is one handed out
	// while it runs. The nak is sent before Stop returns; look for a while.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		again, err := cons.FetchNoWait(2)
		if err != nil {
			t.Fatal(err)
		}
		for m := range again.Messages() {
			meta, _ := m.Metadata()
			if _, ok := taken[meta.Sequence.Stream]; ok {
				t.Errorf("job %d delivered again while the other taker runs it: the busy worker's stale held copy was handed back", meta.Sequence.Stream)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
