package jobs

import (
	"runtime"
	"strings"
	"testing"
)

// TestRedactDeepNestingLinear: a dead letter's payload is redacted in one
// pass, its work linear in its size: a deeply nested body with a secret in
// it (any publisher can send one; it is dead-lettered) must not stall the
// worker. Measured in bytes allocated, not time: encoding each level again
// (a MarshalJSON per object, which encoding/json compacts at every level)
// allocates the body once per level, gigabytes here.
func TestRedactDeepNestingLinear(t *testing.T) {
	const depth = 9000
	key := "sk_" + "live_SECRET2abcdefghijklmnopqrstuvwxyz0123"
	body := `{"session_id":"` + key + `","x":` + strings.Repeat(`{"a":`, depth) +
		`"` + strings.Repeat("y", 64<<10) + `"` + strings.Repeat("}", depth) + "}"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, redacted := Redact(OpRevoke, []byte(body))
	runtime.ReadMemStats(&after)
	if len(redacted) == 0 || strings.Contains(string(out), key) {
		t.Fatalf("not redacted: %v", redacted)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 200*uint64(len(body)) {
		t.Fatalf("Redact allocated %d bytes for a %d-byte body nested %d deep: more than linear", alloc, len(body), depth)
	}
}
