//go:build unix

package embedded

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on a file in dir, held until the returned
// file is closed (or the process ends). errDirInUse: another process holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errDirInUse
		}
		return nil, err
	}
	return f, nil
}
