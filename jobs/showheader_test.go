package jobs_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// ShowHeader is the judgement every view of a dead letter's headers asks:
// each row is a header a view shows as it is (secret false), redacted in
// place (shown set), or hides whole (shown ""). Secrets are built in
// pieces, so that this file holds none that looks live.
func TestShowHeader(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	escJWT := strings.ReplaceAll(jwt, ".", `\u002e`)
	key := "sk_" + "live_" + "abcdefghijklmnop"
	const hide = "" // shown: nothing of it may be shown
	atCap := strings.Repeat("a", jobs.MaxShownHeader)
	// The longest tracestate the worker carries on from a job into its
	// dead letter: 32 members of a 256-byte key and a 256-byte value.
	member := "k" + strings.Repeat("0", 240) + "@" + strings.Repeat("v", 14) + "=" + strings.Repeat("x", 256)
	tracestate := strings.Repeat(member+",", 31) + member
	// About NATS's max_payload: a header a hostile publisher could have
	// put on a job, or another writer on a dead letter.
	huge := strings.Repeat("a", 1<<20)
	for _, c := range []struct {
		what, name, value string
		secret            bool
		shown             string // when secret
	}{
		{"the worker's text", "Dlq-Error", "clerk 500: internal", false, ""},
		{"the worker's text naming a refresh field", "Dlq-Error",
			"invalid revoke job: /refresh_token: unknown field (check the spelling against schemas/revoke.json)", false, ""},
		{"the worker's history", "Dlq-History", `[{"at":"2026-01-01T00:00:00Z","status":500,"error":"boom"}]`, false, ""},
		{"empty", "X-Empty", "", false, ""},
		{"a URL without a password", "X-Url", "nats://host:4222", false, ""},
		{"a URL's password already hidden", "X-Url", "nats://alice:xxxxx@host:4222", false, ""},
		{"an e-mail address", "X-From", "alice@example.com", false, ""},
		{"a member already redacted", "X-Relayed", `{"refresh_token":"[REDACTED]"}`, false, ""},
		{"long and harmless, at the cap", "X-Long", atCap, false, ""},
		{"the longest tracestate the worker writes", "tracestate", tracestate, false, ""},

		// Longer than MaxShownHeader: withheld unread, harmless or not,
		// never a prefix (which could cut a secret so that it no longer
		// looks like one).
		{"harmless, a byte over the cap", "X-Long", atCap + "a", true, hide},
		{"harmless, about max_payload", "X-Long", huge, true, hide},
		{"JSON about max_payload", "Dlq-History", `["` + huge + `"]`, true, hide},
		{"a key past the cap", "X-Long", huge + key, true, hide},

		{"a header named for a secret", "Refresh-Token", "opaque", true, hide},
		{"named for a secret, empty", "Authorization", "", true, hide},
		{"named for a secret behind a zero-width space", "Refresh-\u200bToken", "opaque", true, hide},
		{"named for a secret split by a control character", "Cook\x00ie", "opaque", true, hide},

		{"a URL holding a password", "X-Nats", "nats://alice:PW@host:4222", true, "nats://alice:xxxxx@host:4222"},
		{"a URL holding a token", "X-Api", "https://tok3n@api.example.com/", true, "https://xxxxx@api.example.com/"},
		{"a URL holding a password in another's text", "Dlq-Error", "dial nats://alice:PW@host:4222: refused", true,
			"dial nats://alice:xxxxx@host:4222: refused"},
		// A JSON string holding one is a secret-shaped value, replaced as
		// Redact replaces it in a payload, escapes undone.
		{"a URL holding a password in JSON", "X-Relayed", `{"url":"nats://alice:PW@host:4222"}`, true, `{"url":"[REDACTED]"}`},
		{"a URL's @ escaped in JSON", "X-Relayed", `["nats:\/\/alice:PW\u0040host"]`, true, `["[REDACTED]"]`},
		{"a URL's @ escaped in JSON cut short", "X-Relayed", `[{"error":"nats://alice:PW\u0040host`, true, hide},
		{"a URL's @ percent-encoded", "X-Relayed", "nats://alice:PW%40host", true, hide},
		// JSON may write a slash \/ (PHP's json_encode does): in JSON cut
		// short, a reader still reads nats://alice:PW@host.
		{"a URL's slashes escaped in JSON cut short", "X-Relayed", `[{"error":"nats:\/\/alice:PW@host`, true, hide},

		{"a JWT in another's text", "Dlq-Error", "clerk said " + jwt + " is bad", true, "clerk said [REDACTED] is bad"},
		{"a key alone", "X-Key", key, true, "[REDACTED]"},
		{"a JWT escaped in JSON", "Dlq-History", `[{"error":"` + escJWT + `"}]`, true, `[{"error":"[REDACTED]"}]`},
		{"a JWT escaped in JSON cut short", "Dlq-History", `[{"error":"` + escJWT, true, hide},
		{"a JWT escaped in JSON nested past what a reader decodes", "X-Deep",
			strings.Repeat("[", 10001) + `"` + escJWT + `"` + strings.Repeat("]", 10001), true, hide},
		{"a key split by a zero-width space", "X-Key", "sk_\u200b" + key[3:], true, hide},
		{"a key split by a control character", "X-Key", "sk_" + "live_" + "ab\x00cdefghijklmnop", true, hide},
		{"a bearer credential", "X-Auth-Echo", "Bearer abcdefghijklmnopqrstuv", true, "Bearer [REDACTED]"},

		{"a refresh member in JSON", "Dlq-History", `[{"error":"x","refresh_token":"opaque"}]`, true,
			`[{"error":"x","refresh_token":"[REDACTED]"}]`},
		{"a refresh member in JSON cut short", "X-Relayed", `[{"error":"x","refresh_token":"opaque`, true, hide},
		{"a refresh member escaped in JSON cut short", "X-Relayed", `{"job":{"refresh\u005ftoken":"opaque"},`, true, hide},
		{"a refresh field named in a form", "X-Relayed", "session_id=sess_1&refresh_token=opaque", true, hide},
		{"a refresh field named in a URL's fragment", "X-Callback", "https://app.example.com/cb#refresh_token=opaque", true, hide},
		{"a refresh field percent-encoded in a form", "X-Relayed", "a=1&refresh%5Ftoken=opaque", true, hide},
		{"a refresh member in JSON in a JSON string", "X-Relayed", `["{\"refresh_token\":\"opaque\"}"]`, true, `["[REDACTED]"]`},
	} {
		shown, secret := jobs.ShowHeader(c.name, c.value)
		want := c.value
		if c.secret {
			want = c.shown
		}
		if secret != c.secret || shown != want {
			t.Errorf("%s: ShowHeader(%.40q, %.80q) = %.80q, %v; want %.80q, %v", c.what, c.name, c.value, shown, secret, want, c.secret)
		}
	}
}
