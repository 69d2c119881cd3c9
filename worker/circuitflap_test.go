package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestPauseHoldsPrefetchedJobs: the jobs a worker had prefetched were
// handed back each time its circuit opened, and each hand-back spent one of
// the job's deliveries: a circuit that opened as often as the consumer's
// max deliveries (3 in tests) could end the jobs at the head of the queue
// as max_deliveries dead letters, never run. They are now held while the
// worker pauses, kept alive past the ack wait, and run when it resumes.
func TestPauseHoldsPrefetchedJobs(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	// Every call takes 300 ms, so that a pause (a call refused) comes long
	// after the pull requests that the slots' jobs sent: a job on the wire
	// as a pull ends still comes back after the ack wait (see endPull).
	faults := func(rejectKey bool) emulator.Faults {
		return emulator.Faults{RejectKey: rejectKey, Latency: 300 * time.Millisecond}
	}
	ctx := context.Background()
	const concurrency = 2 // a prefetch of 2
	w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = concurrency })
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	emu.SetFaults(faults(true))
	const n = 30
	for _, id := range emu.CreateSessions(emu.CreateUser(), n) {
		env.Publish(t, &jobs.GetArgs{SessionID: id})
	}
	circuitOpen := func(want bool) func() bool {
		return func() bool { return w.Worker.Status().CircuitOpen == want }
	}
	testenv.Eventually(t, 10*time.Second, "the circuit open", circuitOpen(true))
	// Past the ack wait, the jobs in the slots and the prefetched ones are
	// all still this worker's: none was handed back (a nak would have
	// taken it out of the ack-pending ones), none redelivered.
	time.Sleep(2 * env.Topology.AckWait)
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := w.Worker.Status().InFlight
	if info.NumAckPending <= concurrency || info.NumRedelivered != 0 {
		t.Errorf("while paused past the ack wait: %d jobs delivered and not settled, %d redelivered; want more than the %d slots' jobs (the prefetched ones held), and 0",
			info.NumAckPending, info.NumRedelivered, concurrency)
	}
	if held != info.NumAckPending {
		t.Errorf("status in_flight %d while paused; want the %d jobs delivered (the held ones count)", held, info.NumAckPending)
	}
	// Resumed, the held jobs run on the delivery they were held with.
	emu.SetFaults(faults(false))
	testenv.Eventually(t, 10*time.Second, "the held jobs done", func() bool { return len(env.Results(t)) >= info.NumAckPending })
	for _, r := range env.Results(t) {
		if r.Deliveries != 1 {
			t.Errorf("job %s ran on delivery %d; want 1: a pause must not spend deliveries", r.JobID, r.Deliveries)
		}
	}
	// Pause and resume again, twice: no pause costs a job its run.
	emu.SetFaults(faults(true))
	for range 2 {
		testenv.Eventually(t, 10*time.Second, "the circuit open", circuitOpen(true))
		emu.SetFaults(faults(false))
		testenv.Eventually(t, 10*time.Second, "the circuit closed", circuitOpen(false))
		emu.SetFaults(faults(true))
	}
	emu.SetFaults(faults(false))
	testenv.Eventually(t, 60*time.Second, "every job done", func() bool { return len(env.Results(t)) == n })
	if got := env.StreamCount(t, env.Topology.DeadLetterStream); got != 0 {
		t.Errorf("%d dead letters; want 0", got)
	}
}

// TestLongPauseHandsBackHeldJobs: a worker paused for three ack waits hands
// back the prefetched jobs it holds, so that a replica whose circuit stays
// open (its key rotated out from under it) does not keep them from the
// others for good; the jobs already started stay held.
func TestLongPauseHandsBackHeldJobs(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	const concurrency = 2
	w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = concurrency })
	const n = 10
	pauseHolding(t, env, w, concurrency, n)
	testenv.Eventually(t, 3*env.Topology.AckWait+5*time.Second, "the held jobs handed back", func() bool {
		return w.Worker.Status().InFlight == concurrency
	})
	if !strings.Contains(env.Logs.String(), "handing back the prefetched jobs") {
		t.Errorf("the hand-back was not logged")
	}
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 30*time.Second, "every job done", func() bool { return len(env.Results(t)) == n })
	if got := env.StreamCount(t, env.Topology.DeadLetterStream); got != 0 {
		t.Errorf("%d dead letters; want 0", got)
	}
}

// TestLongPauseHandsBackHeldJobsAtTheShortenedAckWait: the three ack waits
// after which a pause hands back the held jobs were counted from the ack
// wait read when the pause began. An operator who shortened the consumer's
// ack wait during the pause (here from 10 s to 1 s) saw the jobs held for
// three of the old ack waits, 30 s, ten times what the README says.
func TestLongPauseHandsBackHeldJobsAtTheShortenedAckWait(t *testing.T) {
	env := testenv.New(t)
	const concurrency = 2
	w := env.StartWorker(t, func(c *worker.Config) {
		c.Concurrency = concurrency
		c.Topology.AckWait = 10 * time.Second
	})
	pauseHolding(t, env, w, concurrency, 10)
	editConsumer(t, env, func(c *jetstream.ConsumerConfig) { c.AckWait = time.Second })
	// Three of the new ack waits (3 s), and room for the worker to read it
	// on a loaded machine: still well short of three of the old (30 s).
	testenv.Eventually(t, 18*time.Second, "the held jobs handed back", func() bool {
		return w.Worker.Status().InFlight == concurrency
	})
}

// pauseHolding has Clerk reject the key (every call taking 300 ms),
// publishes n get jobs, and waits until worker w (of concurrency slots) has
// paused holding prefetched jobs beside the ones it started.
func pauseHolding(t *testing.T, env *testenv.Env, w *testenv.Running, concurrency, n int) {
	t.Helper()
	emu := env.Clerk.Emulator
	emu.SetFaults(emulator.Faults{RejectKey: true, Latency: 300 * time.Millisecond})
	for _, id := range emu.CreateSessions(emu.CreateUser(), n) {
		env.Publish(t, &jobs.GetArgs{SessionID: id})
	}
	testenv.Eventually(t, 10*time.Second, "the circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	testenv.Eventually(t, 10*time.Second, "the prefetched jobs held beside the started ones", func() bool {
		return w.Worker.Status().InFlight > concurrency
	})
}
