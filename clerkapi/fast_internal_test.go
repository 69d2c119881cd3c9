package clerkapi

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func FuzzIsIDMatchesIDPattern(f *testing.F) {
	for _, s := range []string{"sess_1", "user_2abcXYZ", "_a", "a_", "a", "", "A_b", "sess__1", "sess_1\n", "sess_é", "a_b_c", "../users"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isID(s), idPattern.MatchString(s); got != want {
			t.Fatalf("isID(%q) = %v, idPattern says %v", s, got, want)
		}
	})
}

func TestReadBodyIsLimitedReadAll(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 70_000} {
		body := bytes.Repeat([]byte("x"), n)
		for _, cl := range []int64{-1, 0, int64(n), int64(n) - 1, int64(n) + 10, maxResponseBytes} {
			got, err := readBody(iotest.OneByteReader(bytes.NewReader(body)), cl)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("n=%d content-length=%d: %d bytes, %v", n, cl, len(got), err)
			}
		}
	}
	// The limit holds whatever Content-Length says.
	big := strings.NewReader(strings.Repeat("y", maxResponseBytes+10))
	got, err := readBody(big, 100)
	if err != nil || len(got) != maxResponseBytes {
		t.Fatalf("read %d bytes, %v; want the first %d", len(got), err, maxResponseBytes)
	}
	// Errors pass through as ReadAll's do.
	_, err = readBody(iotest.TimeoutReader(strings.NewReader("abc")), 3)
	if err == nil {
		t.Fatal("no error from a failing body")
	}
}

// TestReadBodyReservesOnlyWhatComes: an answer that announces nearly the
// limit (16 MiB) and sends three bytes made readBody reserve the whole 16
// MiB before the first byte, per call in flight: a stalled or hostile
// upstream held gigabytes at a high concurrency.
func TestReadBodyReservesOnlyWhatComes(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readBody(strings.NewReader("abc"), maxResponseBytes-1)
	runtime.ReadMemStats(&after)
	if err != nil || string(got) != "abc" {
		t.Fatalf("read %q, %v", got, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Errorf("reserved %d bytes for a 3-byte answer announcing %d; want at most %d", n, maxResponseBytes-1, 2<<20)
	}
}
