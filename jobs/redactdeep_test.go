package jobs

import (
	"strings"
	"testing"
	"time"
)

// TestRedactDeepNestingLinear: a dead letter's payload is redacted once, in
// time linear in its size: a deeply nested body with a secret in it (any
// publisher can send one; it is dead-lettered) must not stall the worker.
func TestRedactDeepNestingLinear(t *testing.T) {
	const depth = 9000
	key := "sk_" + "live_SECRET2abcdefghijklmnopqrstuvwxyz0123"
	body := `{"session_id":"` + key + `","x":` + strings.Repeat(`{"a":`, depth) +
		`"` + strings.Repeat("y", 64<<10) + `"` + strings.Repeat("}", depth) + "}"
	start := time.Now()
	out, redacted := Redact(OpRevoke, []byte(body))
	took := time.Since(start)
	if len(redacted) == 0 || strings.Contains(string(out), key) {
		t.Fatalf("not redacted: %v", redacted)
	}
	if took > 2*time.Second {
		t.Fatalf("Redact took %v for a %d-byte body nested %d deep", took, len(body), depth)
	}
	t.Logf("took %v", took)
}
