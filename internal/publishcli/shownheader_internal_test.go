package publishcli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// dlq show prints a header value as jobs.ShowHeader, the console's
// judgement too, has it: as it is, redacted in place, or only its length.
// It judged by its own rules before: it printed a URL's password and a JWT
// escaped in JSON cut short, as the console showed them, and told a
// member already redacted apart from the console, which hid it.
func TestShownHeaderFollowsShowHeader(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	cutShort := `[{"error":"` + strings.ReplaceAll(jwt, ".", `\u002e`)
	hidden := func(v string) string { return fmt.Sprintf("[hidden: may hold a secret, %d bytes]", len(v)) }
	const dlqErr = "invalid revoke job: /refresh_token: unknown field (check the spelling against schemas/revoke.json)"
	// Longer than jobs.MaxShownHeader: withheld unread, only its length.
	long := strings.Repeat("a", jobs.MaxShownHeader+1)
	withheld := func(v string) string {
		return fmt.Sprintf("[withheld: %d bytes, longer than the %d a view reads]", len(v), jobs.MaxShownHeader)
	}
	for _, c := range []struct {
		name, value string
		secret      bool
		want        string
	}{
		{"Dlq-Error", dlqErr, false, dlqErr},
		{"X-Relayed", `{"refresh_token":"[REDACTED]"}`, false, `{"refresh_token":"[REDACTED]"}`},
		{"Refresh-Token", "opaque", true, hidden("opaque")},
		{"X-Nats", "nats://alice:PW@host:4222", true, "nats://alice:xxxxx@host:4222"},
		{"Dlq-History", cutShort, true, hidden(cutShort)},
		{"Dlq-History", `[{"error":"x","refresh_token":"opaque"}]`, true, `[{"error":"x","refresh_token":"[REDACTED]"}]`},
		{"X-Relayed", `{"job":{"refresh\u005ftoken":"opaque"},`, true, hidden(`{"job":{"refresh\u005ftoken":"opaque"},`)},
		{"X-Relayed", "session_id=sess_1&refresh_token=opaque", true, hidden("session_id=sess_1&refresh_token=opaque")},
		{"X-Long", long, true, withheld(long)},
		{"Refresh-Token", long, true, withheld(long)},
	} {
		if _, secret := jobs.ShowHeader(c.name, c.value); secret != c.secret {
			t.Fatalf("jobs.ShowHeader(%q, %.80q) judges secret %v, the row says %v", c.name, c.value, secret, c.secret)
		}
		if got := shownHeader(c.name, c.value); got != c.want {
			t.Errorf("shownHeader(%q, %.80q) = %.80q, want %.80q", c.name, c.value, got, c.want)
		}
	}
}
