package console_test

import (
	"fmt"
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
	msgs[1].Header.Set(jobs.HeaderClerkMessage, "token "+jwt+" rejected")
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
		for _, secret := range []string{refresh, expired, "sk_" + "live_0123456789", jwt, script} {
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
	if n := strings.Count(body, "[hidden: may hold a secret"); n != 3 {
		t.Errorf("%d header values hidden on the revoke entry, want 3 (Authorization, X-Session, Dlq-Clerk-Message)", n)
	}
	_, body = con.get(t, "/dlq/3")
	if !strings.Contains(body, "not shown: it is not JSON and may hold a secret") {
		t.Error("a refresh body that is not JSON is not withheld")
	}
}
