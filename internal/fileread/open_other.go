//go:build !unix

package fileread

import "os"

// open opens path for reading (named pipes are unix's).
func open(path string) (*os.File, error) { return os.Open(path) }
