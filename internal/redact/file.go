package redact

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FileError is err, from reading the file at path that holds a secret (a
// token, a password, a private key), for a person. The secret itself given
// in place of its file's path is the mistake to expect, and os's error
// repeats the path: it is shown only when it reads as a path, absolute and
// in a directory that exists other than the root, and is otherwise
// described by its length. A base64 token starts with "/" one time in 64,
// and a "/" within it names no directory.
func FileError(path string, err error) error {
	var pe *os.PathError
	if !errors.As(err, &pe) || isPath(path) {
		return err
	}
	return fmt.Errorf("cannot read it: %w; the value (%d characters) is not repeated, in case it is the secret itself: give the path of a file holding it", pe.Err, len(path))
}

// isPath reports whether path is absolute and names a file in a directory
// that exists, not the root.
func isPath(path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	dir := filepath.Dir(path)
	if dir == filepath.Dir(dir) {
		return false // the root, where no secret's file is kept
	}
	info, err := os.Stat(dir)
	return err == nil && info.IsDir()
}
