package publishcli_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// A URL with a password in it (nats://alice:PASSWORD@host), pasted into
// any flag, argument or variable but the NATS server's URL, is never
// repeated: before, every error that quoted the value it refused (--since,
// --rate, --class, a sequence, a file name, an unknown command or flag,
// the console's --listen, a stream name, a duration) printed the password
// on standard error, and a job id holding one was published and printed,
// the password then stored in record subjects and Dlq-Job-Id.
func TestURLPasswordGivenToAnotherSettingIsNeverRepeated(t *testing.T) {
	h := newHarness(t)
	pw := "Pw" + "7dKq2mXz9RtB"
	u := "nats://alice:" + pw + "@nats.example:4222"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"session argument", nil, []string{"revoke", u}, publishcli.ExitUsage},
		{"--job-id", nil, []string{"revoke", "sess_abc", "--job-id", u}, publishcli.ExitUsage},
		{"job_id in a file", nil, []string{"revoke", "--file", writeFile(t, "job.json", `{"session_id":"sess_abc","job_id":"`+u+`"}`)}, publishcli.ExitUsage},
		{"--tenant", nil, []string{"revoke", "sess_abc", "--tenant", u}, publishcli.ExitUsage},
		{"--jobs-stream", nil, []string{"revoke", "sess_abc", "--jobs-stream", u}, publishcli.ExitUsage},
		{"CLERKJOBS_RESULTS_STREAM", map[string]string{"CLERKJOBS_RESULTS_STREAM": u}, []string{"revoke", "sess_abc", "--wait"}, publishcli.ExitUsage},
		{"--prefix", nil, []string{"revoke", "sess_abc", "--prefix", u}, publishcli.ExitUnavailable},
		{"--timeout", nil, []string{"revoke", "sess_abc", "--wait", "--timeout", u}, publishcli.ExitUsage},
		{"--traceparent", nil, []string{"revoke", "sess_abc", "--traceparent", u}, publishcli.ExitUsage},
		{"unknown command", nil, []string{u}, publishcli.ExitUsage},
		{"unknown flag", nil, []string{"revoke", "sess_abc", "--" + u}, publishcli.ExitUsage},
		{"--file", nil, []string{"revoke", "--file", u}, publishcli.ExitUsage},
		{"dlq list --since", nil, []string{"dlq", "list", "--since", u}, publishcli.ExitUsage},
		{"dlq list --class", nil, []string{"dlq", "list", "--class", u}, publishcli.ExitUsage},
		{"dlq show", nil, []string{"dlq", "show", u}, publishcli.ExitUsage},
		{"dlq replay --rate", nil, []string{"dlq", "replay", "--all", "--rate", u}, publishcli.ExitUsage},
		{"dlq purge --op", nil, []string{"dlq", "purge", "--op", u}, publishcli.ExitUsage},
		{"status --consumer", nil, []string{"status", "--consumer", u}, publishcli.ExitUsage},
		{"console --listen", nil, []string{"console", "--listen", u}, publishcli.ExitUsage},
		{"CONSOLE_LISTEN", map[string]string{"CONSOLE_LISTEN": u}, []string{"console"}, publishcli.ExitUsage},
		{"--nats-inbox-prefix", nil, []string{"revoke", "sess_abc", "--nats-inbox-prefix", u}, publishcli.ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.runWith(t, runOpts{env: tc.env}, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.code, r)
			}
			if strings.Contains(r.stdout+r.stderr, pw) {
				t.Errorf("the password is repeated\n%s", r)
			}
		})
	}
	if msgs := h.jobsMsgs(t); len(msgs) != 0 {
		t.Errorf("%d jobs published, want none", len(msgs))
	}
}

// A value of 100 KB given to a flag was repeated whole in the error that
// refuses it (twice for --listen): each word of the error is now cut to
// 256 bytes, the flag still named.
func TestLongValueIsNotRepeatedWhole(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("a", 100_000)
	for _, tc := range []struct {
		name  string
		args  []string
		named string
	}{
		{"dlq list --since", []string{"dlq", "list", "--since", long}, "--since"},
		{"dlq list --class", []string{"dlq", "list", "--class", long}, "--class"},
		{"console --listen", []string{"console", "--listen", long}, "listen address"},
		{"unknown command", []string{long}, "unknown command"},
		{"--file", []string{"revoke", "--file", long}, "--file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run(t, tc.args...)
			if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, tc.named) || len(r.stderr) > 2000 {
				t.Errorf("exit %d, %d bytes on standard error (%.300q); want %d, naming %s, in at most 2000 bytes", r.code, len(r.stderr), r.stderr, publishcli.ExitUsage, tc.named)
			}
		})
	}
}
