package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestNoSecretInAnyField: a secret-shaped value planted in any field a
// dead letter carries (its headers, its subject, its history, its
// payload) appears on no page: not the list, not the entry, not the
// overview, not a plan's dry run.
func TestNoSecretInAnyField(t *testing.T) {
	// Spelled in parts so that no live-looking secret is committed.
	secrets := map[string]string{
		"jwt":            "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlMTIzNDU2",
		"secret key":     "sk_" + "live_0123456789abcdefXYZ",
		"session cookie": "__session=" + "abcdefghijklmnop0123",
	}
	fields := []struct {
		name  string
		plant func(d *jobs.DeadLetter, m *nats.Msg, s string)
	}{
		{"job id", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.JobID = s }},
		{"original subject", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Subject = "sessions.revoke." + s }},
		{"dead-letter subject", func(_ *jobs.DeadLetter, m *nats.Msg, s string) {
			m.Subject = "sessions.dlq._.revoke." + strings.ReplaceAll(s, ".", "-") + ".g.1"
		}},
		{"op", func(_ *jobs.DeadLetter, m *nats.Msg, s string) { m.Header.Set(jobs.HeaderOp, s) }},
		{"class", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Error.Class = jobs.ErrorClass(s) }},
		{"error", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Error.Message = "failed: " + s }},
		{"clerk code", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Error.ClerkCode = s }},
		{"clerk message", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Error.ClerkMessage = "bad " + s }},
		{"trace id", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Error.TraceID = s }},
		{"field", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Error.Field = "/" + s }},
		{"worker", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Worker = s }},
		{"history", func(d *jobs.DeadLetter, _ *nats.Msg, s string) {
			d.History = []jobs.Failure{{At: time.Now(), Error: "e " + s, Code: s, TraceID: s}}
		}},
		{"redacted fields", func(d *jobs.DeadLetter, _ *nats.Msg, s string) { d.Redacted = []string{s} }},
		{"replay count", func(_ *jobs.DeadLetter, m *nats.Msg, s string) { m.Header.Set(jobs.HeaderReplays, s) }},
		{"header name", func(_ *jobs.DeadLetter, m *nats.Msg, s string) {
			m.Header[strings.ReplaceAll(s, "=", "-")] = []string{"x"}
		}},
		{"payload", func(_ *jobs.DeadLetter, m *nats.Msg, s string) {
			m.Data = fmt.Appendf(nil, `{"job_id":%q,"session_id":"sess_1"}`, s)
		}},
	}
	env := testenv.New(t)
	subj := env.Topology.Subjects
	type planted struct{ field, shape, secret string }
	var letters []planted
	var msgs []*nats.Msg
	for _, f := range fields {
		for shape, s := range secrets {
			d := jobs.DeadLetter{
				Subject: subj.Job(jobs.OpRevoke), StreamSeq: 1, JobID: "plain", Op: jobs.OpRevoke, Attempts: 1, Deliveries: 1, Worker: "w",
				Error: jobs.ErrorInfo{Class: jobs.ClassExhausted, Message: "boom", ClerkCode: "internal_clerk_error", HTTPStatus: 503, TraceID: "t"},
			}
			m := nats.NewMsg(subj.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "plain", Gen: "g", Seq: uint64(len(msgs) + 1)}))
			m.Data = []byte(`{"job_id":"plain","session_id":"sess_1"}`)
			f.plant(&d, m, s)
			h := d.Header()
			for k, v := range m.Header {
				h[k] = v
			}
			m.Header = h
			msgs = append(msgs, m)
			letters = append(letters, planted{f.name, shape, s})
		}
	}
	seed(t, env.JS, len(msgs), func(i int) *nats.Msg { return msgs[i] })
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)

	// Pages that show every letter: each shape is planted in every field,
	// so which field leaked shows on the entry pages below.
	check := func(page, body string) {
		t.Helper()
		for shape, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s shows the %s", page, shape)
			}
		}
	}
	for _, p := range []string{"/", "/dlq", fmt.Sprintf("/dlq?n=%d", len(msgs))} {
		code, body := con.get(t, p)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", p, code)
		}
		check(p, body)
	}
	for i, l := range letters {
		p := fmt.Sprintf("/dlq/%d", i+1)
		code, body := con.get(t, p)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", p, code)
		}
		if strings.Contains(body, l.secret) {
			t.Errorf("%s shows the %s planted in %s", p, l.shape, l.field)
		}
	}
	// A dry run quotes job ids, subjects and reasons.
	status, plan := con.post(t, "/dlq/plan", url.Values{"action": {"replay"}, "scope": {"matching"}})
	if status != http.StatusSeeOther {
		t.Fatalf("plan: %d", status)
	}
	var body string
	testenv.Eventually(t, 20*time.Second, "the dry run", func() bool {
		_, body = con.get(t, plan)
		return strings.Contains(body, "would skip")
	})
	check(plan, body)
}
