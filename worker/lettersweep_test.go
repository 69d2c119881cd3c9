package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// A dead letter whose writer died before it looked for the job's result,
// stored after the result's writer had looked: no delivery of the job is
// left to see both. The sweep removes it, whether it was stored before the
// worker started or after, or in a dead-letter stream created again; a
// letter without a result stays.
func TestSweepRemovesADeadLetterBesideAResult(t *testing.T) {
	env := testenv.New(t)
	gen := generation(t, env)
	key := func(id string, seq uint64) jobs.RecordKey {
		return jobs.RecordKey{Op: jobs.OpRevoke, JobID: id, Gen: gen, Seq: seq}
	}
	both := func(k jobs.RecordKey) {
		env.PublishRaw(t, env.Topology.Subjects.Result(k), []byte(`{"job_id":"`+k.JobID+`"}`))
		env.PublishRaw(t, env.Topology.Subjects.DeadLetter(k), []byte(`{"job_id":"`+k.JobID+`"}`))
	}
	letters := func() []string {
		var subjects []string
		for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
			subjects = append(subjects, m.Subject)
		}
		return subjects
	}
	alone := env.Topology.Subjects.DeadLetter(key("kept-1", 3))

	both(key("before-1", 1))
	env.PublishRaw(t, alone, []byte(`{"job_id":"kept-1"}`))
	env.StartWorker(t)
	testenv.Eventually(t, 10*time.Second, "the letter stored before the worker started removed", func() bool { return len(letters()) == 1 })
	both(key("after-1", 2))
	testenv.Eventually(t, 10*time.Second, "the letter stored after it started removed", func() bool { return len(letters()) == 1 })

	if got := letters(); got[0] != alone {
		t.Errorf("dead letters left: %q; want the one without a result, %s", got, alone)
	}
	if n := env.StreamCount(t, env.Topology.ResultsStream); n != 2 {
		t.Errorf("%d results; want both kept", n)
	}

	// A dead-letter stream deleted and created again numbers its letters
	// from 1: the sweep starts over.
	ctx := context.Background()
	if err := env.JS.DeleteStream(ctx, env.Topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	if _, err := env.JS.CreateStream(ctx, env.Topology.DeadLetterStreamConfig()); err != nil {
		t.Fatal(err)
	}
	both(key("recreated-1", 4))
	testenv.Eventually(t, 10*time.Second, "the letter in the recreated stream removed", func() bool { return len(letters()) == 0 })
}
