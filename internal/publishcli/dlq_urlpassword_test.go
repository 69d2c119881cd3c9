package publishcli_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDLQTextHidesURLPasswords: a worker now stores a dead letter's
// subject with a URL's password hidden, and `dlq show --json` hides one
// again, but a letter an older worker stored (or one written some other
// way) may still hold nats://user:password@host in its original subject or
// its error: `dlq list` and `dlq show` as text printed it as it was.
func TestDLQTextHidesURLPasswords(t *testing.T) {
	h := newHarness(t)
	const pw = "hunter2hunter2"
	url := "nats://svc:" + pw + "@nats.internal:4222"
	now := time.Now()
	d := jobs.DeadLetter{
		Subject: h.topo.Subjects.Job(jobs.OpRevoke) + "." + url, StreamSeq: 7, JobID: "urlpw", Op: jobs.OpRevoke,
		Error:    jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "cannot reach " + url, ClerkCode: "form_param_invalid", ClerkMessage: "echoed " + url, HTTPStatus: 422},
		Attempts: 1, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: "w-old",
		History: []jobs.Failure{{At: now, Error: "cannot reach " + url, Status: 422}},
	}
	m := nats.NewMsg(h.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "urlpw", Gen: "seed", Seq: 1}))
	m.Header = d.Header()
	m.Data = []byte(`{"session_id":"sess_1"}`)
	ack, err := h.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(ack.Sequence, 10)
	for name, r := range map[string]result{
		"list":      h.runWith(t, runOpts{tty: true}, "dlq", "list"),
		"show":      h.run(t, "dlq", "show", seq),
		"list json": h.run(t, "dlq", "list", "--json"),
		"show json": h.run(t, "dlq", "show", seq, "--json"),
	} {
		if r.code != 0 {
			t.Errorf("%s: exit %d\n%v", name, r.code, r)
		}
		if strings.Contains(r.stdout+r.stderr, pw) {
			t.Errorf("%s: the URL's password was printed:\n%v", name, r)
		}
	}
}
