//go:build unix

package publishcli_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// A file flag naming a device without end (/dev/zero) was read until memory
// ran out (a crash); one naming a named pipe nobody writes to blocked for
// good, SIGTERM ignored. Each is now refused, the flag named, exit 2.
func TestFileFlagsThatAreNotFiles(t *testing.T) {
	h := newHarness(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	for _, tc := range []struct {
		name, named string
		args        []string
	}{
		{"token file /dev/zero", "token file", []string{"console", "--listen", "127.0.0.1:0", "--token-file", "/dev/zero"}},
		{"token file a pipe", "token file", []string{"console", "--listen", "127.0.0.1:0", "--token-file", fifo}},
		{"basic-auth file /dev/zero", "basic-auth file", []string{"console", "--listen", "127.0.0.1:0", "--basic-auth-file", "/dev/zero"}},
		{"--file a pipe", "", []string{"revoke", "--file", fifo}},
		{"--nats-password-file /dev/zero", "--nats-password-file", []string{"status", "--nats-user", "u", "--nats-password-file", "/dev/zero"}},
		{"--nats-creds a pipe", "--nats-creds", []string{"status", "--nats-creds", fifo}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run(t, tc.args...)
			if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, tc.named) {
				t.Errorf("want exit %d naming %q: %v", publishcli.ExitUsage, tc.named, r)
			}
		})
	}
}
