//go:build !unix

package embedded

import "os"

// lockDir locks nothing where flock(2) is not to be had.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(lockPath(dir), os.O_CREATE|os.O_RDWR, 0o600)
}
