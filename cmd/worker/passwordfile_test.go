package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestWorkerReadsNATSPasswordFile: on Kubernetes the password comes from a
// Secret mounted as a file (NATS_PASSWORD_FILE), not from the environment,
// which `kubectl describe` and child processes show. The worker connects
// with it; given beside NATS_PASSWORD, it is refused without repeating
// either.
func TestWorkerReadsNATSPasswordFile(t *testing.T) {
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["_INBOX.denied.>"]}}`)
	emu := emulator.NewServer()
	t.Cleanup(emu.Close)
	file := filepath.Join(t.TempDir(), "nats-password")
	if err := os.WriteFile(file, []byte("worker\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NATS_URL": s.ClientURL(), "NATS_USER": "worker", "NATS_PASSWORD_FILE": file,
		"CLERK_SECRET_KEY": emulator.DefaultSecretKey, "CLERK_API_URL": emu.URL}
	args := []string{"--metrics-addr", "", "--log-format", "json", "--instance", "w1"}

	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, logs, logs) }()
	testenv.Eventually(t, 20*time.Second, "worker started", func() bool {
		select {
		case code := <-done:
			t.Fatalf("the worker exited with %d:\n%s", code, logs.String())
		default:
		}
		return strings.Contains(logs.String(), "worker started")
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after stopping:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}

	env["NATS_PASSWORD"] = "hunter2hunter2"
	var stderr testenv.SyncBuffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "--nats-password-file (NATS_PASSWORD_FILE)") {
		t.Errorf("NATS_PASSWORD beside NATS_PASSWORD_FILE: exit %d, %q; want 2, naming both", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "hunter2") || strings.Contains(stderr.String(), "worker\n") {
		t.Errorf("the error repeats a password: %q", stderr.String())
	}
}
