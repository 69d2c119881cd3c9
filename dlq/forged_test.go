package dlq_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayTakenIdKeepsTheLetter: a replay that JetStream acknowledges as
// a duplicate was taken for the same replay run again, and its dead letter
// deleted. A publisher who stored another job under the replay's message
// id first (it is made of the queue's creation time, the letter's sequence
// and its replay count) made the replayed job vanish: never queued, its
// dead letter gone. The stored job is now compared with the replayed one,
// and the letter kept unless they are the same job.
func TestReplayTakenIdKeepsTheLetter(t *testing.T) {
	e := newEnv(t)
	seq := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "real"})[0]
	m := nats.NewMsg(e.topo.Subjects.Job(jobs.OpRevoke))
	m.Data = []byte(testenv.JobBody(jobs.OpRevoke, "decoy"))
	m.Header.Set(jetstream.MsgIDHeader, dlq.ReplayMsgID(e.created(t), seq, 1))
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}

	rep, err := e.q.Replay(t.Context(), []uint64{seq})
	if err == nil || rep.Replayed != 0 || rep.Failed != 1 {
		t.Fatalf("replay over a taken id: %+v, %v; want it failed", rep, err)
	}
	if !errors.Is(err, jobs.ErrJobIDReused) || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Reason, "the dead letter is kept") {
		t.Errorf("error %q, problems %+v; want the error to match jobs.ErrJobIDReused and the reason to say the dead letter is kept", err, rep.Problems)
	}
	if left := e.dlqSeqs(t); !slices.Equal(left, []uint64{seq}) {
		t.Fatalf("dead letters left: %v; want %d kept", left, seq)
	}
}
