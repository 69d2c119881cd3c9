//go:build unix

package fileread_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

// A named pipe whose writer has not written yet when it is read (a secret
// agent's, `publish --file fifo`) is waited for and read whole. Left
// non-blocking after the open, it read as "resource temporarily
// unavailable" on macOS, where Go does not poll named pipes.
func TestReadPipeBeforeItsWriterWrites(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	// Opened read-write, the writer is there before Read opens the pipe,
	// and writes once Read is (most likely) waiting.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // not an assertion: Read must wait however long
		w.WriteString("pw\n")
		w.Close()
	}()
	if b, err := fileread.Read(fifo, 64); err != nil || string(b) != "pw\n" {
		t.Errorf("Read(a pipe written after the open) = %q, %v; want \"pw\\n\"", b, err)
	}
}
