package publishcli_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestUsageHintOnlyForUsageErrors: every exit 2 ended with "Run '... --help'
// for usage.", also when the command line was right and what it was given
// was refused (a job failing its schema, a declined confirmation): the
// pointer to --help sent the operator to read flags that were fine.
func TestUsageHintOnlyForUsageErrors(t *testing.T) {
	h := newHarness(t)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "hint-1"})
	badFile := writeFile(t, "bad.ndjson", `{"session_id":"not a session"}`+"\n")
	for _, tc := range []struct {
		name string
		o    runOpts
		args []string
		hint bool
	}{
		{"unknown flag", runOpts{}, []string{"revoke", "sess_abc", "--bogus"}, true},
		{"too many arguments", runOpts{}, []string{"revoke", "sess_a", "sess_b"}, true},
		{"flags that exclude each other", runOpts{}, []string{"revoke", "sess_abc", "--wait", "--reply-to", "x.y"}, true},
		{"unknown command", runOpts{}, []string{"revok"}, true},
		{"job failing its schema", runOpts{}, []string{"revoke", "not a session"}, false},
		{"file of invalid jobs", runOpts{}, []string{"revoke", "--file", badFile}, false},
		{"declined confirmation", runOpts{tty: true, stdin: "no\n"}, []string{"dlq", "purge", "--all"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.runWith(t, tc.o, tc.args...)
			if r.code != publishcli.ExitUsage {
				t.Fatalf("exit %d, want %d\n%s", r.code, publishcli.ExitUsage, r)
			}
			if got := strings.Contains(r.stderr, "--help' for usage"); got != tc.hint {
				t.Errorf("pointer to --help shown: %v, want %v\n%s", got, tc.hint, r)
			}
		})
	}
}
