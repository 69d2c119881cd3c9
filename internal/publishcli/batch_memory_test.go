package publishcli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// TestBadBatchLinesAreNotKept: a batch's invalid lines are counted and the
// first few listed; what made the others invalid is not kept (a batch of a
// million bad lines must not hold a million errors).
func TestBadBatchLinesAreNotKept(t *testing.T) {
	var b strings.Builder
	const n = 100000
	for i := range n {
		fmt.Fprintf(&b, `{"session_id":"not a session id %d","extra":1}`+"\n", i)
	}
	file := filepath.Join(t.TempDir(), "bad.ndjson")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	size := uint64(b.Len())
	b = strings.Builder{}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	var out, errOut strings.Builder
	code := publishcli.RunEnv(t.Context(), []string{"revoke", "--file", file}, publishcli.Env{
		Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "NATS_URL" {
				return "nats://127.0.0.1:1"
			}
			return ""
		},
	})
	close(stop)
	<-done
	if code != 2 || !strings.Contains(errOut.String(), fmt.Sprintf("%d of %d jobs", n, n)) {
		t.Fatalf("exit %d: %.300s", code, errOut.String())
	}
	live := peak.Load() - min(peak.Load(), base.HeapAlloc)
	t.Logf("input %d bytes, peak live heap above start %d bytes (%.1fx)", size, live, float64(live)/float64(size))
	if live > 4*size {
		t.Errorf("peak live heap %d bytes for %d bytes of invalid lines: more than 4x the input, the errors of every line are kept", live, size)
	}
}
