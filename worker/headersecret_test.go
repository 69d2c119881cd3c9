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

// TestRefreshHeaderListsAreSecrets: request_headers are a refresh job's
// secrets, and a header's values usually come as a list
// ({"Cookie": ["…"]}, as net/http keeps them). A list was known to the
// redaction only as its fmt.Sprint ("[…]"), which no echoed text holds, so
// an upstream quoting the request put the values in the dead letter, the
// reply and the log.
func TestRefreshHeaderListsAreSecrets(t *testing.T) {
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
	const listed, nested = "device-secret-0123456789", "nested-secret-9876543210"
	r := request(t, env, &jobs.RefreshArgs{SessionID: "sess_1", ExpiredToken: "expired-0123456789", RefreshToken: "refresh-0123456789",
		RequestOrigin: "https://a.example", RequestHeaders: map[string]any{
			"X-Device": []any{listed},
			"X-Nested": map[string]any{"v": []any{nested}},
		}})
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
	for _, s := range []string{listed, nested, "expired-0123456789", "refresh-0123456789"} {
		if strings.Contains(everything.String(), s) {
			t.Errorf("the refresh secret %q reached a dead letter, the reply or a log line", s)
		}
	}
}
