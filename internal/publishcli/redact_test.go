package publishcli_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// secretShapes are what a proxy in front of Clerk may echo, each with the
// part that must never be printed.
var secretShapes = []struct{ name, text, secret string }{
	{"jwt", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlLXBhcnQ", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ"},
	{"live key", "sk_" + "live_0123456789abcdefABCDEF", "sk_" + "live_0123456789abcdef"},
	{"test key", "sk_test_0123456789abcdefABCDEF", "sk_test_0123456789abcdef"},
	{"bearer", "Bearer abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789"},
}

// leaks are the failure messages fakeWorker sends for sessions
// sess_leak<i>: a secret of each shape, and an escape sequence.
var leaks = func() map[string]string {
	m := map[string]string{}
	for i, s := range secretShapes {
		m[fmt.Sprintf("sess_leak%d", i)] = "upstream echoed Authorization: " + s.text + " \x1b]0;pwned\x07\x1b[2J"
	}
	return m
}()

// TestOutsideTextIsRedactedAndEscaped: a failure's message (the worker's
// answer, which may quote Clerk or a proxy) was printed as is by --wait,
// and a batch's result lines did not even escape control characters; a
// value failing its schema was repeated on stderr. Now no secret shape and
// no raw control character reaches the output. --json printed the
// failure's texts as the answer held them, secrets included (as dlq
// --json once did): they are cleared of secret shapes there too.
func TestOutsideTextIsRedactedAndEscaped(t *testing.T) {
	h := newHarness(t)
	fakeWorker(t, h)
	for i, s := range secretShapes {
		t.Run(s.name, func(t *testing.T) {
			sess := fmt.Sprintf("sess_leak%d", i)
			file := writeFile(t, "batch.ndjson", `{"session_id":"`+sess+`"}`+"\n"+`{"session_id":"sess_1"}`+"\n")
			runs := map[string]result{
				"single --wait":        h.run(t, "revoke", sess, "--wait", "--timeout", "10s"),
				"batch --wait":         h.run(t, "revoke", "--file", file, "--wait", "--timeout", "10s"),
				"single --wait --json": h.run(t, "revoke", sess, "--wait", "--timeout", "10s", "--json"),
				"batch --wait --json":  h.run(t, "revoke", "--file", file, "--wait", "--timeout", "10s", "--json"),
			}
			for name, r := range runs {
				if r.code != publishcli.ExitJobFailed || !strings.Contains(r.stdout, "[REDACTED]") {
					t.Errorf("%s: want exit 1 and the message redacted: %v", name, r)
				}
				out := r.stdout + r.stderr
				if strings.Contains(out, s.secret) || strings.Contains(out, "\x1b") || strings.Contains(out, "\x07") {
					t.Errorf("%s: the secret or a control character was printed: %q", name, out)
				}
			}
			// A secret given where a session id goes fails the schema: the
			// error names the flag, not the value.
			r := h.run(t, "token", s.text, "--wait")
			if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--session") || strings.Contains(r.stdout+r.stderr, s.secret) {
				t.Errorf("token %s: want exit 2 without the value: %v", s.name, r)
			}
		})
	}
}
