// Package fileread reads the small files a setting names (a key, a password,
// a token) so that a wrong path cannot hang or exhaust the program: a named
// pipe nobody writes to is read as empty rather than waited on forever (the
// program then ignored SIGTERM), and a device such as /dev/zero, or a file
// far larger than the setting's content can be, is refused after max bytes
// rather than read until memory runs out.
package fileread

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// TooLargeError says a file holds more than a setting's content can be.
type TooLargeError struct {
	Max int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("it holds more than %d bytes, more than the setting can be: is it the right file?", e.Max)
}

// Read returns the contents of the file at path, refusing one of more than
// max bytes with a *TooLargeError. The file is opened without blocking: a
// named pipe without a writer reads as empty, one with a writer (a shell's
// process substitution, <(…)) as what is written to it. Errors are os's,
// naming path.
func Read(path string, max int64) ([]byte, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, &os.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &TooLargeError{Max: max}
	}
	return b, nil
}
