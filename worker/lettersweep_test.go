package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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

	// Letters no worker writes but a user allowed on the stream could: an
	// id token of 3,000 bytes, one with a control character, subjects
	// that are no job's. The sweep goes past them, and its log stays
	// bounded.
	for _, subject := range []string{
		"sessions.dlq._.revoke." + strings.Repeat("x", 3000) + "." + gen + ".10",
		"sessions.dlq._.revoke.a\x01b." + gen + ".11",
		"sessions.dlq.revoke", "sessions.dlq.a.b.c.d.e.f.g",
	} {
		env.PublishRaw(t, strings.Replace(subject, ".dlq.", ".results.", 1), []byte(`{}`))
		env.PublishRaw(t, subject, []byte(`{}`))
	}
	both(key("before-1", 1))
	env.PublishRaw(t, alone, []byte(`{"job_id":"kept-1"}`))
	// Beside another job's result (its Job-Digest differs: a jobs stream
	// created again), a letter stays.
	other := key("other-1", 5)
	for subject, digest := range map[string]string{env.Topology.Subjects.Result(other): "job-a", env.Topology.Subjects.DeadLetter(other): "job-b"} {
		if _, err := env.JS.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Header: nats.Header{jobs.HeaderJobDigest: {digest}}, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	env.StartWorker(t)
	testenv.Eventually(t, 10*time.Second, "the letter stored before the worker started removed", func() bool { return len(letters()) == 4 })
	both(key("after-1", 2))
	testenv.Eventually(t, 10*time.Second, "the letter stored after it started removed", func() bool { return len(letters()) == 4 })

	for _, line := range strings.Split(env.Logs.String(), "\n") {
		if len(line) > 2000 || strings.Contains(line, `\u0001`) {
			t.Errorf("log line of %d bytes, or with a control character: %.200q", len(line), line)
		}
	}
	if got := letters(); len(got) != 4 || got[2] != alone || got[3] != env.Topology.Subjects.DeadLetter(other) {
		t.Errorf("dead letters left: %.300q; want the two that are no job's, the one without a result, %s, and the one beside another job's result", got, alone)
	}
	if n := env.StreamCount(t, env.Topology.ResultsStream); n != 7 {
		t.Errorf("%d results; want all 7 kept", n)
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
