package publishcli_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDLQTextHidesSecretShapes: what a dead letter's headers say about
// its failure is the worker's text quoting Clerk (or a proxy in front of
// it, or whoever wrote the letter). A worker clears it of secret shapes
// before storing it, but one from before that did not, and `publish ...
// --wait` and the console clear it again when they show it: `dlq list`
// and `dlq show` printed it as it was.
func TestDLQTextHidesSecretShapes(t *testing.T) {
	h := newHarness(t)
	for i, s := range secretShapes {
		echo := "upstream echoed Authorization: " + s.text
		now := time.Now()
		jobID := "leak" + strconv.Itoa(i)
		d := jobs.DeadLetter{
			Subject: h.topo.Subjects.Job(jobs.OpRevoke), StreamSeq: 7, JobID: jobID, Op: jobs.OpRevoke,
			Error:    jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: echo, ClerkCode: "form_param_invalid", ClerkMessage: echo, HTTPStatus: 422},
			Attempts: 1, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: "w-old",
			History: []jobs.Failure{{At: now, Error: echo, Status: 422}},
		}
		m := nats.NewMsg(h.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: jobID, Gen: "seed", Seq: uint64(i + 1)}))
		m.Header = d.Header()
		m.Data = []byte(`{"session_id":"sess_1"}`)
		ack, err := h.js.PublishMsg(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(s.name, func(t *testing.T) {
			for name, r := range map[string]result{
				"list":      h.runWith(t, runOpts{tty: true}, "dlq", "list"),
				"show":      h.run(t, "dlq", "show", strconv.FormatUint(ack.Sequence, 10)),
				"list json": h.run(t, "dlq", "list", "--json"),
				"show json": h.run(t, "dlq", "show", strconv.FormatUint(ack.Sequence, 10), "--json"),
			} {
				if r.code != 0 || !strings.Contains(r.stdout, "[REDACTED]") {
					t.Errorf("%s: want exit 0 and the message redacted: %v", name, r)
				}
				if strings.Contains(r.stdout+r.stderr, s.secret) {
					t.Errorf("%s: the secret was printed:\n%v", name, r)
				}
			}
		})
	}
}

// TestJSONOutputEscapesWhatActsOnATerminal: --json prints what was stored
// exactly, but a bidirectional override, DEL or a C1 control in it would
// act on the terminal it is printed on: they are escaped (\u202e), which
// decodes to the same text.
func TestJSONOutputEscapesWhatActsOnATerminal(t *testing.T) {
	h := newHarness(t)
	hostile := "evil\u202egnp.exe\x7f\u0085"
	seqs := h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "bidi", body: `{"session_id":"` + hostile + `"}`})
	for _, args := range [][]string{{"dlq", "show", fmt.Sprint(seqs[0]), "--json"}, {"dlq", "list", "--json"}} {
		r := h.run(t, args...)
		if r.code != 0 {
			t.Fatalf("%q: %v", args, r)
		}
		if strings.ContainsAny(r.stdout, "\u202e\x7f\u0085") {
			t.Errorf("%q printed a character that acts on a terminal: %q", args, r.stdout)
		}
	}
	r := h.run(t, "dlq", "show", fmt.Sprint(seqs[0]), "--json")
	if !strings.Contains(r.stdout, `\u202e`) {
		t.Errorf("the payload's override is not there, escaped: %s", r.stdout)
	}
}
