package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// A busy worker's pull (its slot taken, its prefetch full) has no request
// waiting at the server, so it is not told when its consumer is deleted.
// Created again under the same name, the new consumer serves the pull's
// next request, and the worker took its jobs as the old consumer's.

// TestBusyPullOfARecreatedConsumerLooksForRecordedJobs: a create stored
// after the old consumer's creation, recorded by a worker whose ack went
// with the old consumer, came through the busy pull as the new consumer's
// first delivery. Stamped with the old consumer's creation, it was not
// looked for (see mayBeAgain), and Clerk was asked to create a second
// session. The pull now ends once the worker reads the new creation.
func TestBusyPullOfARecreatedConsumerLooksForRecordedJobs(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(3*time.Second, 0))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	startBusyPull(t, env, emu.CreateSessions(user, 2))
	publishRecorded(t, env, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: "create-recorded"}})
	recreateConsumer(t, env, env.Topology)
	testenv.Eventually(t, 60*time.Second, "every job acked", func() bool {
		return env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	if n := callsTo(emu, emulator.OpCreateSession); n != 0 {
		t.Errorf("Clerk was asked %d times to create a session for a job already recorded", n)
	}
}

// TestBusyPullOfARecreatedConsumerEnds: once the worker has read the new
// consumer's creation, the busy pull went on taking the new consumer's
// jobs as the old one's, so that none of their naks was sent (withheld as
// reaching another consumer's delivery): a job Clerk failed waited the ack
// wait for each retry, not its backoff, for as long as the pull lasted.
func TestBusyPullOfARecreatedConsumerEnds(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	top := env.Topology
	top.AckWait = 30 * time.Second // a retry after the ack wait shows
	emu.SetFaults(emulator.Faults{Latency: 3 * time.Second})
	user := emu.CreateUser()
	startBusyPull(t, env, emu.CreateSessions(user, 2), func(c *worker.Config) { c.Topology = top })
	emu.SetFaults(emulator.Faults{}) // only the job in the slot is slow
	recreateConsumer(t, env, top)
	testenv.Eventually(t, 5*time.Second, "the worker reading the new consumer", func() bool {
		return strings.Contains(env.Logs.String(), "the consumer was created again")
	})
	failing := emu.CreateSessions(user, 1)[0]
	emu.FailSession(failing, 500)
	env.Publish(t, &jobs.RevokeArgs{SessionID: failing, Common: jobs.Common{JobID: "fails"}})
	// Three deliveries (the test topology's max), each retried after a
	// backoff of milliseconds; withheld naks would have them wait an ack
	// wait each.
	testenv.Eventually(t, 3*top.AckWait, "the failing job dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	if strings.Contains(env.Logs.String(), "it is not handed back, and comes again after the ack wait") {
		t.Errorf("a nak of the new consumer's job was withheld: its retry waited the ack wait")
	}
}

// startBusyPull starts a worker (concurrency 1, a prefetch of 2, edited by
// edits), publishes a revoke of each of two sessions, and waits until one
// runs and the other is prefetched: the pull's request is answered in
// full, and none waits at the server. It returns once a job stored now is
// stored more than a second after the consumer's creation.
func startBusyPull(t *testing.T, env *testenv.Env, sessions []string, edits ...func(*worker.Config)) {
	t.Helper()
	w := env.StartWorker(t, append([]func(*worker.Config){func(c *worker.Config) { c.Concurrency = 1 }}, edits...)...)
	created := time.Now() // the consumer was created before the worker was ready
	for _, id := range sessions {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 5*time.Second, "a job in the slot", func() bool { return w.Worker.Status().InFlight == 1 })
	time.Sleep(time.Until(created.Add(1500 * time.Millisecond)))
}

// recreateConsumer deletes the jobs consumer and creates it again as top
// says, as an operator would by hand.
func recreateConsumer(t *testing.T, env *testenv.Env, top jobs.Topology) {
	t.Helper()
	if err := env.JS.DeleteConsumer(t.Context(), top.JobsStream, top.Consumer); err != nil {
		t.Fatal(err)
	}
	if _, err := top.Ensure(t.Context(), env.JS); err != nil {
		t.Fatal(err)
	}
}
