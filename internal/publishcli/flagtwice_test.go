package publishcli_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// TestFlagGivenTwiceIsRefused: pflag keeps a flag's last value unsaid, so
// `revoke-all --user A --user B` published one job, for B, and exited 0:
// the operator offboarding two users left A's sessions alive. A
// single-valued flag given twice with different values is a usage error
// now, before anything is published; a list flag repeats, and the same
// value twice is no contradiction.
func TestFlagGivenTwiceIsRefused(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name  string
		args  []string
		flags string // named in the error; "" when the run is fine
	}{
		{"user twice", []string{"revoke-all", "--user", "user_A", "--user", "user_B"}, "--user"},
		{"session twice", []string{"revoke", "--session", "sess_A", "--session=sess_B"}, "--session"},
		{"two flags twice", []string{"list", "--user", "user_A", "--limit", "5", "--user", "user_B", "--limit", "10"}, "--limit, --user"},
		{"persistent flag twice", []string{"revoke", "sess_A", "--tenant", "svc_a", "--tenant", "svc_b"}, "--tenant"},
		{"old and new name of a flag", []string{"revoke", "sess_A", "--server", "nats://127.0.0.1:1", "--nats-url", "nats://127.0.0.1:2"}, "--nats-url, --server"},
		{"same value twice", []string{"revoke-all", "--user", "user_A", "--user", "user_A"}, ""},
		{"list flag repeated", []string{"revoke-all", "--user", "user_C", "--except", "sess_1", "--except", "sess_2"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.jobsMsgs(t))
			r := h.run(t, tc.args...)
			published := len(h.jobsMsgs(t)) - before
			if tc.flags == "" {
				if r.code != publishcli.ExitOK || published != 1 {
					t.Fatalf("%d jobs published, want 1\n%s", published, r)
				}
				return
			}
			if r.code != publishcli.ExitUsage || published != 0 {
				t.Fatalf("%d jobs published, want none and exit %d\n%s", published, publishcli.ExitUsage, r)
			}
			if want := tc.flags + " given more than once"; !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q\n%s", want, r)
			}
			if strings.Contains(r.stderr, "user_B") || strings.Contains(r.stderr, "svc_b") {
				t.Errorf("stderr repeats a value (one may be a secret)\n%s", r)
			}
		})
	}
}
