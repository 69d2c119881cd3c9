package worker_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRefreshHeadersAreSecrets: request_headers are a refresh job's
// secrets, and an upstream quoting the request must not put them in the
// dead letter, the reply or the log:
//   - lists: a header's values usually come as a list ({"Cookie": ["…"]},
//     as net/http keeps them), which the redaction knew only as its
//     fmt.Sprint ("[…]"), which no echoed text holds;
//   - escaped characters: the body is JSON, in which encoding/json writes
//     <, > and & as \u003c, \u003e and \u0026 (and " and \ escaped); the
//     redaction, knowing the value as it is, did not find that form.
func TestRefreshHeadersAreSecrets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers map[string]any
		secrets []string // what must not be seen: each value, or what follows its escaped character
	}{
		{"lists", map[string]any{
			"X-Device": []any{"device-secret-0123456789"},
			"X-Nested": map[string]any{"v": []any{"nested-secret-9876543210"}},
		}, []string{"device-secret-0123456789", "nested-secret-9876543210"}},
		{"escaped characters", map[string]any{
			"X-Amp":   "a&amp-secret-0123456789",
			"X-Angle": "<b>angle-secret-0123456789",
			"X-Quote": `q"quote-secret-0123456789`,
		}, []string{"amp-secret-0123456789", "angle-secret-0123456789", "quote-secret-0123456789"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			clerk := env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				_ = json.NewEncoder(w).Encode(map[string]any{
					"errors":         []map[string]any{{"code": "form_param_invalid", "message": "you sent " + string(body)}},
					"clerk_trace_id": "trace-1",
				})
			}))
			cfg := env.WorkerConfig()
			cfg.Logger = cfg.Logger.Level(-1) // everything
			env.StartWorkerWith(t, clerk, cfg)
			r := request(t, env, &jobs.RefreshArgs{SessionID: "sess_1", ExpiredToken: "expired-0123456789", RefreshToken: "refresh-0123456789",
				RequestOrigin: "https://a.example", RequestHeaders: tc.headers})
			if r.Outcome != jobs.Failed || r.Error == nil || !strings.Contains(r.Error.ClerkMessage, "you sent") {
				t.Fatalf("result %+v: want a failure quoting the request (else this proves nothing)", r)
			}
			var everything strings.Builder
			for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
				fmt.Fprintf(&everything, "%v %s\n", m.Header, m.Data)
			}
			b, _ := json.Marshal(r)
			everything.Write(b)
			everything.WriteString(env.Logs.String())
			for _, s := range append(tc.secrets, "expired-0123456789", "refresh-0123456789") {
				if strings.Contains(everything.String(), s) {
					t.Errorf("the refresh secret %q reached a dead letter, the reply or a log line", s)
				}
			}
		})
	}
}
