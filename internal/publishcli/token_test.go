package publishcli_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// TestTokenRequestedTwice: `token --wait --job-id X` run again found the
// first request's record, printed it without a token, and exited 0. Now
// it exits 6 and says the token went to the first request.
func TestTokenRequestedTwice(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t)
	for _, tc := range []struct {
		name   string
		code   int
		stdout string
		stderr string
	}{
		{name: "first", code: 0, stdout: "token"},
		{name: "again", code: publishcli.ExitJobIDReused, stderr: "request a new one with another --job-id"},
	} {
		r := h.run(t, "token", sess, "--wait", "--job-id", "tok-twice", "--timeout", "20s")
		if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
			t.Fatalf("%s: want exit %d: %v", tc.name, tc.code, r)
		}
		if tc.code != 0 && strings.Contains(r.stdout, "eyJ") {
			t.Fatalf("%s: a token printed: %v", tc.name, r)
		}
	}
}

// TestTenantReplyTo: `--tenant svc_a --reply-to _INBOX.svc_b.x` was
// queued, then dead-lettered by the worker as invalid. Now it is refused
// before publishing, naming the flag (or the line's reply_to).
func TestTenantReplyTo(t *testing.T) {
	h := newHarness(t)
	batch := writeFile(t, "batch.ndjson", `{"session_id":"sess_1","reply_to":"_INBOX.svc_b.x"}`+"\n"+`{"session_id":"sess_2","reply_to":"_INBOX.svc_b.x"}`+"\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"another tenant's inbox", []string{"--tenant", "svc_a", "revoke", "sess_1", "--reply-to", "_INBOX.svc_b.x"}, publishcli.ExitUsage, "--reply-to _INBOX.svc_b.x is not an inbox of tenant svc_a"},
		{"the tenant name as the last token", []string{"--tenant", "svc_a", "revoke", "sess_1", "--reply-to", "_INBOX.svc_a"}, publishcli.ExitUsage, "--reply-to _INBOX.svc_a is not an inbox of tenant svc_a"},
		{"in a batch", []string{"--tenant", "svc_a", "revoke", "--file", batch}, publishcli.ExitUsage, "reply_to _INBOX.svc_b.x is not an inbox of tenant svc_a"},
		{"its own inbox", []string{"--tenant", "svc_a", "revoke", "sess_1", "--reply-to", "_INBOX.svc_a.x"}, 0, ""},
		{"no tenant", []string{"revoke", "sess_1", "--reply-to", "_INBOX.svc_b.x"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.jobsMsgs(t))
			r := h.run(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("want exit %d and %q: %v", tc.code, tc.stderr, r)
			}
			if after := len(h.jobsMsgs(t)); tc.code != 0 && after != before {
				t.Fatalf("refused, yet %d jobs published", after-before)
			}
		})
	}
}
