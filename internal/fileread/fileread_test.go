//go:build unix

package fileread_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/fileread"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("sk_test_abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := fileread.Read(small, 64); err != nil || string(b) != "sk_test_abc\n" {
		t.Errorf("Read(small) = %q, %v", b, err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 65), 0o600); err != nil {
		t.Fatal(err)
	}
	var tl *fileread.TooLargeError
	if _, err := fileread.Read(big, 64); !errors.As(err, &tl) {
		t.Errorf("Read(65 bytes, max 64) = %v, want a *TooLargeError", err)
	}
	// A device without end was read until memory ran out.
	if _, err := fileread.Read("/dev/zero", 64); !errors.As(err, &tl) {
		t.Errorf("Read(/dev/zero) = %v, want a *TooLargeError", err)
	}
	// A named pipe nobody writes to blocked the open forever.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	if b, err := fileread.Read(fifo, 64); err != nil || len(b) != 0 {
		t.Errorf("Read(a pipe without a writer) = %q, %v; want empty", b, err)
	}
	if _, err := fileread.Read(dir, 64); err == nil {
		t.Error("Read(a directory) = nil error")
	}
}
