package publishcli_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestShowSaysALetterWhoseJobSucceededIsNotReplayable: a dead letter the
// workers have not removed yet beside its job's result was shown
// "replayable yes", and replayed ran the job, which had succeeded, again.
func TestShowSaysALetterWhoseJobSucceededIsNotReplayable(t *testing.T) {
	h := newHarness(t)
	body := testenv.JobBody(jobs.OpCreate, "onboard-9")
	digest := jobs.Digest(h.topo.Subjects.Job(jobs.OpCreate), []byte(body))
	key := jobs.RecordKey{Op: jobs.OpCreate, JobID: "onboard-9", Gen: "seed", Seq: 9}
	now := time.Now()
	d := jobs.DeadLetter{Subject: h.topo.Subjects.Job(jobs.OpCreate), StreamSeq: 9, JobID: "onboard-9", Op: jobs.OpCreate,
		Error: jobs.ErrorInfo{Class: jobs.ClassMaxDeliveries, Message: "JetStream stopped delivering"}, FirstFailure: now, LastFailure: now}
	m := nats.NewMsg(h.topo.Subjects.DeadLetter(key))
	m.Header = d.Header()
	m.Header.Set(jobs.HeaderJobDigest, digest)
	m.Data = []byte(body)
	ack, err := h.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	res := nats.NewMsg(h.topo.Subjects.Result(key))
	res.Header.Set(jobs.HeaderJobDigest, digest)
	res.Data = []byte(`{"job_id":"onboard-9","op":"create","outcome":"succeeded"}`)
	if _, err := h.js.PublishMsg(t.Context(), res); err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(ack.Sequence, 10)

	if r := h.run(t, "dlq", "show", seq); !strings.Contains(r.stdout, "replayable   no: its job has a result") {
		t.Errorf("show: %v; want it not replayable, its job having a result", r)
	}
	var shown struct {
		Replayable bool `json:"replayable"`
	}
	testenv.DecodeJSON(t, []byte(h.run(t, "dlq", "show", seq, "--json").stdout), &shown)
	if shown.Replayable {
		t.Errorf("show --json says replayable")
	}
	if r := h.run(t, "dlq", "replay", seq); r.code != 5 || !strings.Contains(r.stdout, "replayed 0, skipped 1") {
		t.Errorf("replay: %v; want it skipped, exit 5", r)
	}
	if n := len(testenv.StreamMsgs(t, h.js, h.topo.JobsStream)); n != 0 {
		t.Errorf("the jobs stream holds %d jobs: the job that succeeded was sent again", n)
	}
}
