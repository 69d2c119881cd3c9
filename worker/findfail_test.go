package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/netproxy"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRedeliveryWhoseLookupFailsDoesNotRunAgain: a create whose first
// delivery stored its result and lost its acknowledgement is redelivered,
// and the look for its record fails (JetStream does not answer in time, as
// during a leader change). The job ran again: a second session for one
// create job. It is handed back instead, and found recorded later.
func TestRedeliveryWhoseLookupFailsDoesNotRunAgain(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	gen := generation(t, env)
	ack := env.Publish(t, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: "create-recorded"}})
	k := jobs.RecordKey{Op: jobs.OpCreate, JobID: "create-recorded", Gen: gen, Seq: ack.Sequence}
	takeDelivery(t, env, 1) // the first delivery, never acked
	r, _ := json.Marshal(jobs.Result{JobID: k.JobID, Op: k.Op, Outcome: jobs.Succeeded, StreamSeq: k.Seq, FinishedAt: time.Now()})
	if _, err := env.JS.Publish(context.Background(), env.Topology.Subjects.Result(k), r); err != nil {
		t.Fatal(err)
	}
	px := netproxy.Start(t, env.NATSURL)
	// The redelivery's look for the job's result gets no answer within
	// the worker's 10 s.
	px.HoldAfter([]byte("$JS.API.STREAM.MSG.GET."+env.Topology.ResultsStream+" "), 11*time.Second)
	startWorkerVia(t, px, env)
	testenv.Eventually(t, 40*time.Second, "the job acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	if n := len(emu.UserSessionIDs(user)); n != 0 {
		t.Errorf("%d sessions created for a create job already recorded; want none", n)
	}
	if callsTo(emu, emulator.OpCreateSession) != 0 {
		t.Errorf("Clerk was asked to create a session for a job already recorded")
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters for a job already recorded", n)
	}
}
