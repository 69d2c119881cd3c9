package publishcli_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDLQShowHidesAHeaderNamedForASecret: a dead letter relayed or written
// by another tool may carry a header the worker never sets, named for what
// it holds (Refresh-Token, X-Session-Token, Cookie). A refresh token is
// shaped like nothing: only the name tells. The console hides such a
// value by its name; `dlq show` (text and --json) printed it.
func TestDLQShowHidesAHeaderNamedForASecret(t *testing.T) {
	h := newHarness(t)
	const opaque = "OpaqueRefreshValue7Q2"
	now := time.Now()
	d := jobs.DeadLetter{
		Subject: h.topo.Subjects.Job(jobs.OpRevoke), StreamSeq: 7, JobID: "relayed", Op: jobs.OpRevoke,
		Error:    jobs.ErrorInfo{Class: jobs.ClassInvalid, Message: "invalid revoke job: /refresh_token: unknown field"},
		Attempts: 1, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: "w1",
		History: []jobs.Failure{{At: now, Error: "boom"}},
	}
	m := nats.NewMsg(h.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "relayed", Gen: "seed", Seq: 1}))
	m.Header = d.Header()
	m.Header.Set("Refresh-Token", opaque)
	m.Header.Set("X-Session-Token", opaque)
	m.Data = []byte(`{"session_id":"sess_1"}`)
	ack, err := h.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(ack.Sequence, 10)
	for _, args := range [][]string{{"dlq", "show", seq}, {"dlq", "show", seq, "--json"}} {
		r := h.run(t, args...)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, opaque) {
			t.Errorf("%q: want exit 0 and the header's value hidden:\n%v", args, r)
		}
		if !strings.Contains(r.stdout, "/refresh_token: unknown field") {
			t.Errorf("%q: the worker's Dlq-Error text is not shown:\n%v", args, r)
		}
	}
}
