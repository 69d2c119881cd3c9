package publishcli_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDLQRefreshSecretsNestedOrMalformed: a refresh job's secrets are
// redacted from a dead letter "on whatever subject they arrive", but only
// a top-level member of a JSON object was: a refresh token (opaque, shaped
// like nothing) one level down, in an array, or in a body that is not
// quite JSON (a trailing comma), published by mistake on another op's
// subject, was stored in the dead-letter stream for its 90 days, and
// `publish dlq show` printed it. So was one under a misspelt name
// (refreshToken), or in a body encoded twice (a JSON string).
func TestDLQRefreshSecretsNestedOrMalformed(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	rt := emu.RefreshToken(sess)
	if redact.Looks(rt) {
		t.Fatalf("the emulator's refresh token is shaped like a secret: the test needs an opaque one")
	}
	env.StartWorker(t)
	bodies := map[string]string{
		"nested":    `{"session_id":"` + sess + `","job":{"refresh_token":"` + rt + `"}}`,
		"in array":  `[{"session_id":"` + sess + `","refresh_token":"` + rt + `"}]`,
		"not JSON":  `{"session_id":"` + sess + `","refresh_token":"` + rt + `",}`,
		"headers":   `{"session_id":"` + sess + `","wrapped":[{"request_headers":{"Cookie":["__client=` + rt + `"]}}]}`,
		"expired":   `{"jobs":[{"expired_token":"` + rt + `"}]}`,
		"truncated": `{"session_id":"` + sess + `","refresh_token":"` + rt,
		"camelCase": `{"session_id":"` + sess + `","refreshToken":"` + rt + `"}`,
		"top level": `{"session_id":"` + sess + `","refresh_token":"` + rt + `"}`,
		// A JSON body encoded twice: one string.
		"as a string": strconv.Quote(`{"session_id":"` + sess + `","refresh_token":"` + rt + `"}`),
		"form":        `session_id=` + sess + `&refresh_token=` + rt,
		// The names as a reader reads them once unescaped, or spaced.
		"escaped, not JSON":    `{"session_id":"` + sess + `","refresh\u005ftoken":"` + rt + `",}`,
		"percent-encoded":      `session_id=` + sess + `&refresh%5Ftoken=` + rt,
		"escaped, as a string": strconv.Quote(`{"session_id":"` + sess + `","refresh\u005ftoken":"` + rt + `"}`),
		"spaced name":          `{"session_id":"` + sess + `","refresh_token ":"` + rt + `"}`,
	}
	i := 0
	for name, body := range bodies {
		i++
		m := nats.NewMsg(h.topo.Subjects.Job(jobs.OpRevoke))
		m.Data = []byte(body)
		m.Header.Set("Nats-Msg-Id", "nested-"+strconv.Itoa(i))
		if _, err := h.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for h.dlqCount(t) < len(bodies) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs dead-lettered", h.dlqCount(t), len(bodies))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range h.streamMsgs(t, h.topo.DeadLetterStream) {
		if strings.Contains(string(m.Data), rt) {
			t.Errorf("dead letter %d stores the refresh token: %s", m.Sequence, m.Data)
		}
		for _, args := range [][]string{{"dlq", "show", strconv.FormatUint(m.Sequence, 10)}, {"dlq", "show", strconv.FormatUint(m.Sequence, 10), "--json"}} {
			r := h.run(t, args...)
			if strings.Contains(r.stdout+r.stderr, rt) {
				t.Errorf("%q printed the refresh token:\n%v", args, r)
			}
			// The worker's words about the job (a field it refused, by its
			// name) are still shown.
			if len(args) == 3 && !strings.Contains(r.stdout, "Dlq-Error: invalid revoke job") {
				t.Errorf("%q does not show the Dlq-Error header's text:\n%v", args, r)
			}
		}
	}
}
