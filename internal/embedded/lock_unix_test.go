//go:build unix

package embedded

import (
	"fmt"
	"syscall"
	"testing"
)

// A store directory on a filesystem without flock(2) (an NFS mount without
// lockd says ENOLCK, some FUSE and SMB mounts EOPNOTSUPP) made every start
// fail, "cannot be locked": such a directory is used unlocked, as before
// the lock; a lock another process holds still refuses the start.
func TestLockUnsupportedIsNotFatal(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.ENOLCK, true},
		{syscall.EOPNOTSUPP, true},
		{syscall.ENOTSUP, true},
		{syscall.ENOSYS, true},
		{fmt.Errorf("flock: %w", syscall.ENOLCK), true},
		{syscall.EWOULDBLOCK, false},
		{syscall.EBADF, false},
	} {
		if got := lockUnsupported(tc.err); got != tc.want {
			t.Errorf("lockUnsupported(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
