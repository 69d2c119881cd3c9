package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestBackstopLeavesAJobItsConsumerDeliversAgain: JetStream gave up on a
// job, and the backstop noted it: a sweep (nothing pending, nothing acked
// since, the advisory unheard) or the advisory. Before the rescue's grace
// was over, an operator had the consumer deliver its jobs again: deleted
// it (the worker created it again, and the new consumer delivers the job
// afresh), or reset it (its API) to the job's sequence. The job came
// again: Clerk failed it once, and it waits its nak delay, pending in the
// consumer. The rescue read nothing of the consumer for a job a sweep
// found, and for an advisory's asked only whether the consumer had
// delivered it: it dead-lettered the job as max_deliveries ("JetStream
// stopped delivering") and deleted it, while the consumer was to run it
// again.
func TestBackstopLeavesAJobItsConsumerDeliversAgain(t *testing.T) {
	for _, tt := range []struct {
		name            string
		advisory, reset bool
		// sweep: the sweep interval for an advisory, the first sweep
		// finding nothing; sweeps after it read the given-up stream's
		// copy of the advisory, which must not be taken for one no
		// worker heard, judged by the consumer created since.
		sweep time.Duration
	}{
		{name: "swept, consumer deleted"},
		{name: "swept, consumer reset", reset: true},
		{name: "advisory, consumer deleted", advisory: true, sweep: time.Hour},
		{name: "advisory and its kept copy, consumer deleted", advisory: true, sweep: 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each on a server of its own, mostly waiting out ack waits
			testBackstopLeavesAJobItsConsumerDeliversAgain(t, tt.advisory, tt.reset, tt.sweep)
		})
	}
}

func testBackstopLeavesAJobItsConsumerDeliversAgain(t *testing.T, advisory, reset bool, sweep time.Duration) {
	env := testenv.New(t)
	ctx := context.Background()
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	job := env.Publish(t, &jobs.RevokeArgs{SessionID: id}).Sequence
	crashLoop(t, env, 1)
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *testenv.Running {
		return env.StartWorker(t, func(c *worker.Config) {
			c.Retry.NakDelay, c.Retry.NakDelayMax, c.Retry.Jitter = 10*time.Second, 10*time.Second, 0
			if advisory {
				c.SweepInterval = sweep // its first, with the job pending, finds nothing
			}
		})
	}
	var w *testenv.Running
	if advisory {
		emu.SetFaults(emulator.Faults{ErrorRate: 1})
		w = start() // hears the advisory at the last ack wait's end
	}
	// JetStream gives up after the last ack wait (at a pull, with no
	// worker listening: the advisory unheard), and nothing is acked since.
	testenv.Eventually(t, 20*time.Second, "JetStream giving up on the job", func() bool {
		if !advisory {
			if _, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 0
	})
	if !advisory {
		emu.SetFaults(emulator.Faults{ErrorRate: 1})
		w = start()
	}
	time.Sleep(time.Second) // the backstop has noted the job (a sweep every 500 ms, or the advisory)
	if reset {
		subject := fmt.Sprintf("$JS.API.CONSUMER.RESET.%s.%s", env.Topology.JobsStream, env.Topology.Consumer)
		m, err := env.NC.Request(subject, fmt.Appendf(nil, `{"seq":%d}`, job), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil || resp.Error != nil {
			t.Fatalf("reset the consumer: %s (%v)", m.Data, err)
		}
	} else if err := env.JS.DeleteConsumer(ctx, env.Topology.JobsStream, env.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the job delivered again, failed and handed back", func() bool {
		return callsTo(emu, emulator.OpRevokeSession) > 0 && w.Worker.Status().InFlight == 0
	})
	time.Sleep(2 * env.Topology.AckWait) // past the rescue's grace, within the nak delay
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 30*time.Second, "the job settled", func() bool {
		return env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	if r := env.Results(t); len(r) != 1 {
		t.Errorf("%d results; want the job run again and recorded", len(r))
	}
	for _, dl := range deadLetters(t, env) {
		t.Errorf("the job its consumer delivered again was dead-lettered: %+v", dl)
	}
}
