package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestJobOfADeletedConsumerIsNotRunAgain: the consumer is deleted (by
// hand) while a create runs. Its result is stored, its ack goes nowhere,
// and the consumer the worker creates again delivers the job anew, as its
// first delivery: the job ran again, unlooked for, and a second session
// was created. A job stored before its consumer was created is looked for
// first, as a redelivery is.
func TestJobOfADeletedConsumerIsNotRunAgain(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(2*time.Second, 0))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	w := env.StartWorker(t)
	env.Publish(t, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: "create-orphan"}})
	testenv.Eventually(t, 5*time.Second, "the create in flight", func() bool { return w.Worker.Status().InFlight == 1 })
	if err := env.JS.DeleteConsumer(context.Background(), env.Topology.JobsStream, env.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the job gone from the stream", func() bool {
		return env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	time.Sleep(2500 * time.Millisecond) // a create sent again would be answered by now
	n := callsTo(emu, emulator.OpCreateSession)
	if n != 1 || len(emu.UserSessionIDs(user)) != 1 {
		t.Errorf("the create was sent %d times, %d sessions; want once, one", n, len(emu.UserSessionIDs(user)))
	}
	if r := env.Results(t); len(r) != 1 {
		t.Errorf("%d results; want 1", len(r))
	}
}

// TestRecordedJobOfARecreatedConsumerIsNotRunAgain: a worker stored a
// job's result and died before its ack, and the consumer was deleted and
// created again meanwhile. The new consumer delivers the job as its first
// delivery, which never looked for a record: the create ran again.
func TestRecordedJobOfARecreatedConsumerIsNotRunAgain(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ctx := context.Background()
	publishRecorded(t, env, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: "create-recorded"}})
	if err := env.JS.DeleteConsumer(ctx, env.Topology.JobsStream, env.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the new consumer is created after the job was stored
	env.StartWorker(t)
	testenv.Eventually(t, 20*time.Second, "the job acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	if callsTo(emu, emulator.OpCreateSession) != 0 {
		t.Errorf("Clerk was asked to create a session for a job already recorded")
	}
}

// publishRecorded publishes a create job and stores its result, as a
// worker that ran it and lost its ack (a crash, a consumer deleted) would
// have left it.
func publishRecorded(t *testing.T, env *testenv.Env, a *jobs.CreateArgs) {
	t.Helper()
	ack := env.Publish(t, a)
	k := jobs.RecordKey{Op: jobs.OpCreate, JobID: a.JobID, Gen: generation(t, env), Seq: ack.Sequence}
	r, _ := json.Marshal(jobs.Result{JobID: k.JobID, Op: k.Op, Outcome: jobs.Succeeded, StreamSeq: k.Seq, FinishedAt: time.Now()})
	if _, err := env.JS.Publish(t.Context(), env.Topology.Subjects.Result(k), r); err != nil {
		t.Fatal(err)
	}
}
