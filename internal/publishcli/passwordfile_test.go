package publishcli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// TestPublishReadsNATSPasswordFile: publish takes the password from the
// file NATS_PASSWORD_FILE names, as the worker does (one definition, in
// natsconn), so that it stays out of the environment of the programs a
// script runs. A password the server refuses is said with the settings to
// check, never repeated.
func TestPublishReadsNATSPasswordFile(t *testing.T) {
	url, pw := deployServer(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		code          int
	}{
		{"the password", pw["svc_a"] + "\n", publishcli.ExitOK},
		{"a wrong password", "hunter2hunter2\n", publishcli.ExitUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "pw")
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			h := &harness{url: url}
			r := h.runWith(t, runOpts{env: map[string]string{"NATS_USER": "svc_a", "NATS_PASSWORD_FILE": file}},
				"revoke", "sess_1", "--tenant", "svc_a", "--json")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %v", r.code, tc.code, r)
			}
			if tc.code != 0 && !strings.Contains(r.stderr, "--nats-password-file") {
				t.Errorf("stderr %q: want the settings to check, --nats-password-file among them", r.stderr)
			}
			if out := r.stdout + r.stderr; strings.Contains(out, "hunter2") || strings.Contains(out, pw["svc_a"]) {
				t.Errorf("the output repeats a password: %v", r)
			}
		})
	}
}
