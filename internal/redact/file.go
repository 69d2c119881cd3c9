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
// repeats the path: a relative one is described by its length instead, as
// no token, password or PEM block is written like an absolute path.
func FileError(path string, err error) error {
	var pe *os.PathError
	if !errors.As(err, &pe) || filepath.IsAbs(path) {
		return err
	}
	return fmt.Errorf("cannot read it: %w; the value (%d characters) is not repeated, in case it is the secret itself: give the path of a file holding it", pe.Err, len(path))
}
