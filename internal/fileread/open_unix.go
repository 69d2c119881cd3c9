//go:build unix

package fileread

import (
	"os"
	"runtime"
	"syscall"
)

// open opens path for reading without waiting for a named pipe's writer:
// a pipe without one reads as empty (end of file), one whose writer has
// not written yet is waited for. Go waits for it through its poller, but
// on macOS, where it does not poll named pipes (os/file_unix.go, Go issue
// 24164), the reads are made blocking instead: left non-blocking, such a
// pipe read as "resource temporarily unavailable" (a secret agent's,
// `publish --file fifo`). Elsewhere they stay the poller's: on FreeBSD a
// blocking read of a pipe that never had a writer may wait for one.
func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		if err := syscall.SetNonblock(int(f.Fd()), false); err != nil {
			f.Close()
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
	return f, nil
}
