//go:build unix

package embedded

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on a file in dir, held until the returned
// file is closed (or the process ends). errDirInUse: another process holds it.
// On a filesystem without flock(2) (lockUnsupported) the directory is used
// unlocked, as it was before there was a lock, rather than not at all.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if lockUnsupported(err) {
			return f, nil
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errDirInUse
		}
		return nil, err
	}
	return f, nil
}

// lockUnsupported says err is flock(2)'s on a filesystem that cannot lock:
// an NFS mount without lockd (ENOLCK), some FUSE and SMB mounts
// (EOPNOTSUPP, ENOTSUP), a kernel without it (ENOSYS).
func lockUnsupported(err error) bool {
	for _, e := range []syscall.Errno{syscall.ENOLCK, syscall.EOPNOTSUPP, syscall.ENOTSUP, syscall.ENOSYS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
