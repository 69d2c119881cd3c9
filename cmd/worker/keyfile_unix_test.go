//go:build unix

package main

import (
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A key file that is a device without end (/dev/zero) was read until memory
// ran out (a crash, "fatal error: out of memory"); a named pipe nobody
// writes to blocked the start for good, SIGTERM ignored. Both are refused,
// naming the setting; so is a NATS credentials file that is not a regular
// file, which nats.go reads whole at every connect, and a password file.
func TestKeyAndCredentialFilesThatAreNotFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	url := "nats://127.0.0.1:4222"
	for name, tc := range map[string]struct {
		args    []string
		setting string
	}{
		"key file /dev/zero":      {[]string{"--clerk-secret-key-file", "/dev/zero"}, "--clerk-secret-key-file"},
		"key file a pipe":         {[]string{"--clerk-secret-key-file", fifo}, "--clerk-secret-key-file"},
		"password file /dev/zero": {[]string{"--nats-url", url, "--nats-user", "u", "--nats-password-file", "/dev/zero"}, "--nats-password-file"},
		"password file a pipe":    {[]string{"--nats-url", url, "--nats-user", "u", "--nats-password-file", fifo}, "--nats-password-file"},
		"creds /dev/zero":         {[]string{"--nats-url", url, "--nats-creds", "/dev/zero"}, "--nats-creds"},
		"creds a pipe":            {[]string{"--nats-url", url, "--nats-creds", fifo}, "--nats-creds"},
		"TLS CA a pipe":           {[]string{"--nats-url", url, "--nats-tls-ca", fifo}, "--nats-tls-ca"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(tc.args, func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.setting) {
				t.Errorf("parseFlags = %v; want an error naming %s", err, tc.setting)
			}
		})
	}
}
