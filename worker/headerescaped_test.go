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

// TestRefreshHeaderSecretsWithEscapedCharacters: a refresh's body is JSON,
// in which encoding/json writes <, > and & as \u003c, \u003e and \u0026
// (and " and \ escaped). An upstream quoting the body held such a header
// value only in that form, which the redaction, knowing the value as it
// is, did not find: it reached the dead letter, the reply and the log.
func TestRefreshHeaderSecretsWithEscapedCharacters(t *testing.T) {
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
	// What follows the character escaped is what must not be seen.
	tails := map[string]string{
		"X-Amp":   "a&device-secret-0123456789",
		"X-Angle": "<b>angle-secret-0123456789",
		"X-Quote": `q"quote-secret-0123456789`,
	}
	headers := map[string]any{}
	for k, v := range tails {
		headers[k] = v
	}
	r := request(t, env, &jobs.RefreshArgs{SessionID: "sess_1", ExpiredToken: "expired-0123456789", RefreshToken: "refresh-0123456789",
		RequestOrigin: "https://a.example", RequestHeaders: headers})
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
	for _, s := range []string{"device-secret-0123456789", "angle-secret-0123456789", "quote-secret-0123456789"} {
		if strings.Contains(everything.String(), s) {
			t.Errorf("the refresh header secret ending %q reached a dead letter, the reply or a log line", s)
		}
	}
}
