package publishcli

import (
	"strings"
	"testing"
)

// dlq show prints a header value that is not JSON cleared of secret shapes
// only, so a JSON value cut short holding a refresh_token member (opaque,
// shaped like nothing) was printed whole; the worker's Dlq-Error naming
// the field is still printed as it is.
func TestShownHeaderHidesCutShortJSONHoldingARefreshField(t *testing.T) {
	for _, v := range []string{
		`[{"error":"x","refresh_token":"opaque`,
		`{"job":{"refresh\u005ftoken":"opaque"},`,
		`session_id=sess_1&refresh_token=opaque`,
	} {
		if got := shownHeader("X-Relayed", v); strings.Contains(got, "opaque") {
			t.Errorf("shownHeader(%q) = %q", v, got)
		}
	}
	const dlqErr = "invalid revoke job: /refresh_token: unknown field (check the spelling against schemas/revoke.json)"
	if got := shownHeader("Dlq-Error", dlqErr); got != dlqErr {
		t.Errorf("shownHeader(Dlq-Error) = %q, want it as it is", got)
	}
}
