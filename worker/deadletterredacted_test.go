package worker_test

import (
	"slices"
	"strings"
	"testing"
)

// TestDeadLetterWithoutBodyKeepsEveryRedactedName: a dead letter stored
// without its body (over max_payload) adds "body" to the names its
// Dlq-Redacted header lists, and keeps those already there as they are,
// the first one too when it is a member named "" (listed as `""`, sorted
// first).
func TestDeadLetterWithoutBodyKeepsEveryRedactedName(t *testing.T) {
	tok := "sk_" + "live_" + strings.Repeat("x", 40)
	body := `{"":"` + tok + `","b":"` + tok + `","session_id":"sess_1","note":"` + strings.Repeat("word ", 3200) + `"}`
	_, _, dl, data := bigJobsDeadLetter(t, body)
	if want := []string{`""`, "b", "body"}; !slices.Equal(dl.Redacted, want) || len(data) != 0 {
		t.Errorf("dead letter redacted %q with %d bytes of body; want %q and none", dl.Redacted, len(data), want)
	}
}
