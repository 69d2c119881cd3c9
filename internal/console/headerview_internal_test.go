package console

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// The entry page hides a header value whole exactly when jobs.ShowHeader,
// the judgement `publish dlq show` asks too, finds it may hold a secret.
// It judged by its own rules before, and disagreed with dlq show: it hid a
// member already redacted ({"refresh_token":"[REDACTED]"}), which dlq show
// printed, and showed a URL's password and a JWT escaped in JSON cut
// short, as dlq show did.
func TestSafeHeadersHideWhatShowHeaderJudgesSecret(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	// Longer than jobs.MaxShownHeader: withheld unread, only its length.
	long := strings.Repeat("a", jobs.MaxShownHeader+1)
	withheld := fmt.Sprintf("[withheld: %d bytes, longer than the %d a view reads]", len(long), jobs.MaxShownHeader)
	for _, c := range []struct {
		name, value string
		hidden      bool
		want        string // when hidden, if not the hidden marker
	}{
		{"Dlq-Error", "invalid revoke job: /refresh_token: unknown field (check the spelling against schemas/revoke.json)", false, ""},
		{"X-Relayed", `{"refresh_token":"[REDACTED]"}`, false, ""},
		{"Refresh-Token", "opaque", true, ""},
		{"X-Nats", "nats://alice:PW@host:4222", true, ""},
		{"Dlq-History", `[{"error":"` + strings.ReplaceAll(jwt, ".", `\u002e`), true, ""},
		{"Dlq-History", `[{"error":"x","refresh_token":"opaque"}]`, true, ""},
		{"X-Relayed", `{"job":{"refresh\u005ftoken":"opaque"},`, true, ""},
		{"X-Relayed", "session_id=sess_1&refresh_token=opaque", true, ""},
		{"X-Long", long, true, withheld},
		{"Refresh-Token", long, true, withheld},
	} {
		h := nats.Header{}
		h.Set(c.name, c.value)
		hv := safeHeaders(h)[0]
		if _, secret := jobs.ShowHeader(c.name, c.value); secret != c.hidden {
			t.Fatalf("jobs.ShowHeader(%q, %.80q) judges secret %v, the row says %v", c.name, c.value, secret, c.hidden)
		}
		want := c.value
		switch {
		case c.want != "":
			want = c.want
		case c.hidden:
			want = fmt.Sprintf("[hidden: may hold a secret, %d bytes]", len(c.value))
		}
		if hv.Hidden != c.hidden || hv.Value != want {
			t.Errorf("%s: %.80q shown as %.80q (hidden %v), want %.80q", c.name, c.value, hv.Value, hv.Hidden, want)
		}
	}
}
