package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestNoSecretRendered: a dead letter that holds secrets where none should
// be (a refresh job stored unredacted, a header with a bearer token, a
// body that is not JSON) is shown without them, and markup in it is
// escaped, on every page that shows it.
func TestNoSecretRendered(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	const (
		refresh = "REFRESH-SECRET"
		expired = "EXPIRED-SECRET"
		// A production key, spelled in two parts so that no live-looking
		// key is committed.
		bearer = "Bearer sk_" + "live_0123456789abcdefABCDEF"
		jwt    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl"
		script = `<script>alert(1)</script>`
		// The scheme is case-insensitive, however it is spelled.
		oddBearer = "BeArEr opaque0123456789abcdefXYZ"
		// Under names the worker never writes, though they start like its
		// own: no shape to recognise, only the name.
		dlqToken = "opaqueDlqSessionToken0123456789"
		dlqBasic = "Basic " + "YWxpY2U6Y29ycmVjdC1ob3JzZQ=="
	)
	at := time.Now()
	msgs := []*nats.Msg{
		// A refresh job stored in the clear (testenv.JobBody carries the
		// two secrets), its error text quoting markup.
		deadLetter(subj, jobs.OpRefresh, jobs.ClassPermanent, "refresh-1", testenv.JobBody(jobs.OpRefresh, "refresh-1"), at),
		// A revoke whose headers carry a token and a JWT.
		deadLetter(subj, jobs.OpRevoke, jobs.ClassExhausted, "revoke-1", `{"job_id":"revoke-1","session_id":"sess_1"}`, at),
		// A refresh body that is not JSON.
		deadLetter(subj, jobs.OpRefresh, jobs.ClassInvalid, "raw-1", "refresh_token="+refresh, at),
	}
	msgs[0].Header.Set(jobs.HeaderError, "bad input "+script)
	msgs[1].Header.Set("Authorization", bearer)
	msgs[1].Header.Set("X-Session", jwt)
	msgs[1].Header.Set("X-Upstream", oddBearer)
	msgs[1].Header.Set(jobs.HeaderClerkMessage, "token "+jwt+" rejected")
	msgs[1].Header.Set("Dlq-Session-Token", dlqToken)
	msgs[1].Header.Set("Dlq-Authorization", dlqBasic)
	seed(t, env.JS, len(msgs), func(i int) *nats.Msg { return msgs[i] })

	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)
	pages := []string{"/", "/dlq", "/dlq?op=refresh"}
	for seq := 1; seq <= len(msgs); seq++ {
		pages = append(pages, fmt.Sprintf("/dlq/%d", seq))
	}
	for _, p := range pages {
		code, body := con.get(t, p)
		if code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
		for _, secret := range []string{refresh, expired, "sk_" + "live_0123456789", jwt, script, "opaque0123456789", dlqToken, dlqBasic} {
			if strings.Contains(body, secret) {
				t.Errorf("%s shows %q", p, secret)
			}
		}
	}
	_, body := con.get(t, "/dlq/1")
	if !regexp.MustCompile(`&#34;refresh_token&#34;: &#34;\[REDACTED\]&#34;`).MatchString(body) || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the refresh entry does not show its redacted payload and escaped error:\n%s", body)
	}
	_, body = con.get(t, "/dlq/2")
	// Dlq-Clerk-Message twice: in the headers and as the error's Clerk
	// message, judged alike (headerText).
	if n := strings.Count(body, "[hidden: may hold a secret"); n != 7 {
		t.Errorf("%d header values hidden on the revoke entry, want 7 (Authorization, X-Session, X-Upstream, Dlq-Clerk-Message twice, Dlq-Session-Token, Dlq-Authorization)", n)
	}
	_, body = con.get(t, "/dlq/3")
	if !strings.Contains(body, "not shown: it is not JSON and may hold a secret") {
		t.Error("a refresh body that is not JSON is not withheld")
	}
}

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

// TestNoSecretEscapedInAHeader: a header value that is JSON (Dlq-History,
// or any other) may write a secret's characters as escapes (a JWT's dots
// as \u002e), which hide it from a shape check of the raw text but not
// from a reader. The entry page judges such values as JSON reads them.
func TestNoSecretEscapedInAHeader(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	// Spelled in parts so that no live-looking secret is committed.
	jwt := "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlMTIzNDU2"
	escaped := strings.ReplaceAll(jwt, ".", `\u002e`)
	m := deadLetter(subj, jobs.OpRevoke, jobs.ClassExhausted, "escaped-1", `{"job_id":"escaped-1","session_id":"sess_1"}`, time.Now())
	m.Header.Set(jobs.HeaderHistory, `[{"at":"2026-12-06T20:00:00Z","error":"token `+escaped+` refused"}]`)
	m.Header.Set("X-Upstream", `{"token":"`+escaped+`"}`)
	seed(t, env.JS, 1, func(int) *nats.Msg { return m })

	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)
	code, body := con.get(t, "/dlq/1")
	if code != http.StatusOK {
		t.Fatalf("/dlq/1: %d", code)
	}
	for _, s := range []string{jwt, escaped, "c2lnbmF0dXJlMTIzNDU2"} {
		if strings.Contains(body, s) {
			t.Errorf("the entry shows %q", s)
		}
	}
	// The history's failure twice: in the headers and in the history
	// table, judged alike (headerText).
	if n := strings.Count(body, "[hidden: may hold a secret"); n != 3 {
		t.Errorf("%d header values hidden, want 3 (%s, its failure in the history, X-Upstream)", n, jobs.HeaderHistory)
	}
}
