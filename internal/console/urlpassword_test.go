package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestURLPasswordsAreNotShown: a dead letter an older worker stored, or
// one written some other way, may hold a URL with its password
// (nats://svc:password@host) in its original subject or its failure
// texts. The header list hid it (jobs.ShowHeader), but the list row and
// the entry's fields, read from the same headers, showed it as it was.
func TestURLPasswordsAreNotShown(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	const pw = "hunter2hunter2"
	url := "nats://svc:" + pw + "@nats.internal:4222"
	m := deadLetter(subj, jobs.OpRevoke, jobs.ClassPermanent, "urlpw", `{"session_id":"sess_1"}`, time.Now())
	m.Header.Set(jobs.HeaderSubject, subj.Job(jobs.OpRevoke)+"."+url)
	m.Header.Set(jobs.HeaderError, "cannot reach "+url)
	seed(t, env.JS, 1, func(int) *nats.Msg { return m })

	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)
	for _, p := range []string{"/dlq", "/dlq/1"} {
		code, body := con.get(t, p)
		if code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
		if strings.Contains(body, pw) {
			t.Errorf("%s shows the URL's password", p)
		}
	}
}
