package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestBidiOverridesAreShownAsEscapes: a publisher's text with a
// bidirectional override (U+202E) or another format character would,
// rendered as it is, show the operator reversed text ("sess_1‮txt.exe"
// reads as another session id), in a list row, a header, the subject or
// the payload. The pages show such characters as escapes (\u202e), as
// `publish dlq show` does, and keep the rest of the text as it was.
func TestBidiOverridesAreShownAsEscapes(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	const rlo, lri = "\u202e", "\u2066"
	at := time.Now()
	invalid := deadLetter(subj, jobs.OpRevoke, jobs.ClassInvalid, "bidi-1", `{"job_id":"bidi-1","session_id":"sess_1`+rlo+`exe.txt"}`, at)
	invalid.Header.Set(jobs.HeaderError, "bad session "+rlo+"1_ssès")
	invalid.Header.Set(jobs.HeaderSubject, subj.Job(jobs.OpRevoke)+rlo)
	invalid.Header.Set("X-Note", "note "+lri+"hidden")
	raw := deadLetter(subj, jobs.OpRevoke, jobs.ClassInvalid, "bidi-2", "not json "+rlo+"reversed\nsecond line", at)
	raw.Header.Set(jobs.HeaderClerkMessage, "clerk "+rlo+"says")
	msgs := []*nats.Msg{invalid, raw}
	seed(t, env.JS, len(msgs), func(i int) *nats.Msg { return msgs[i] })

	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)
	for _, p := range []string{"/dlq", "/dlq/1", "/dlq/2"} {
		code, body := con.get(t, p)
		if code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
		if strings.ContainsAny(body, rlo+lri) {
			t.Errorf("%s renders a bidirectional format character as it is", p)
		}
		if !strings.Contains(body, `\u202e`) {
			t.Errorf("%s does not show the override as an escape", p)
		}
	}
	_, body := con.get(t, "/dlq/2")
	if !strings.Contains(body, "not json \\u202ereversed\nsecond line") {
		t.Errorf("the raw payload is not shown line by line with its override escaped")
	}
	_, body = con.get(t, "/dlq/1")
	if !strings.Contains(body, `note \u2066hidden`) {
		t.Errorf("the header value is not shown with its isolate escaped")
	}
}
