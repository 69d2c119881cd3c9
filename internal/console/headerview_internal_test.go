package console

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// A dead letter's text header naming a refresh job's secret field (the
// worker's "/refresh_token: unknown field") is the worker's words, shown;
// a JSON one holding that field is hidden. jobs.Redact drops a body that
// is not JSON and names such a field, which read a text header as a
// secret.
func TestSafeHeadersShowTextNamingARefreshField(t *testing.T) {
	h := nats.Header{}
	h.Set("Dlq-Error", "invalid revoke job: /refresh_token: unknown field (check the spelling against schemas/revoke.json)")
	h.Set("Dlq-History", `[{"error":"x","refresh_token":"opaque"}]`)
	for _, v := range safeHeaders(h) {
		switch v.Name {
		case "Dlq-Error":
			if v.Hidden || !strings.Contains(v.Value, "/refresh_token: unknown field") {
				t.Errorf("Dlq-Error shown as %q (hidden %v), want the worker's text", v.Value, v.Hidden)
			}
		case "Dlq-History":
			if !v.Hidden {
				t.Errorf("Dlq-History holding a refresh_token member shown: %q", v.Value)
			}
		}
	}
}

// A header value that is JSON cut short (a relayed Dlq-History, a header
// a publisher set) is not JSON, so it was judged by its shapes alone: a
// refresh token in a member named refresh_token, shaped like nothing, was
// shown. Text that names the field as a JSON member or a form's name does
// not come from the worker's words.
func TestSafeHeadersHideCutShortJSONHoldingARefreshField(t *testing.T) {
	for _, v := range []string{
		`[{"error":"x","refresh_token":"opaque`,
		`{"job":{"refresh\u005ftoken":"opaque"},`,
		`session_id=sess_1&refresh_token=opaque`,
	} {
		h := nats.Header{}
		h.Set("X-Relayed", v)
		for _, hv := range safeHeaders(h) {
			if !hv.Hidden || strings.Contains(hv.Value, "opaque") {
				t.Errorf("%q shown as %q (hidden %v)", v, hv.Value, hv.Hidden)
			}
		}
	}
}
