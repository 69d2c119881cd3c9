package emulator_test

import (
	"encoding/json"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

func TestControlAPI(t *testing.T) {
	h := start(t)
	noKey := hdr{"Authorization", ""} // the control API needs no key

	// Users and sessions.
	a := h.do("POST", "/_emulator/users", "", noKey)
	if a.status != 201 {
		t.Fatalf("create user: %d %s", a.status, a.body)
	}
	user, _ := a.json(t)["id"].(string)
	if !strings.HasPrefix(user, "user_") {
		t.Fatalf("user id %q", user)
	}
	a = h.do("POST", "/_emulator/users/"+user+"/sessions", `{"count":3}`, noKey)
	var created struct {
		SessionIDs []string `json:"session_ids"`
	}
	if err := json.Unmarshal(a.body, &created); err != nil || a.status != 201 || len(created.SessionIDs) != 3 {
		t.Fatalf("create sessions: %d %s", a.status, a.body)
	}
	if got := h.emu.UserSessionIDs(user); got[0] != created.SessionIDs[2] {
		t.Errorf("session ids not oldest first: %v vs %v", created.SessionIDs, got)
	}
	if a := h.do("POST", "/_emulator/users/user_custom/sessions", "", noKey); a.status != 201 || len(h.emu.UserSessionIDs("user_custom")) != 1 {
		t.Errorf("default count / unknown user: %d %s", a.status, a.body)
	}

	// Session state, with what a refresh needs.
	sid := created.SessionIDs[0]
	a = h.do("GET", "/_emulator/sessions/"+sid, "", noKey)
	var state struct {
		Session      clerkapi.Session `json:"session"`
		RefreshToken string           `json:"refresh_token"`
		SessionToken string           `json:"session_token"`
		RevokeCount  int              `json:"revoke_count"`
	}
	if err := json.Unmarshal(a.body, &state); err != nil || state.Session.ID != sid || state.RefreshToken != h.emu.RefreshToken(sid) || state.SessionToken == "" {
		t.Fatalf("session state: %d %s", a.status, a.body)
	}
	refresh := `{"expired_token":"` + state.SessionToken + `","refresh_token":"` + state.RefreshToken + `","request_origin":"https://x"}`
	if a := h.do("POST", "/v1/sessions/"+sid+"/refresh", refresh); a.status != 200 {
		t.Errorf("refresh with control API state: %d %s", a.status, a.body)
	}

	// Status and failure.
	if a := h.do("PUT", "/_emulator/sessions/"+sid+"/status", `{"status":"ended"}`, noKey); a.status != 200 || a.json(t)["status"] != "ended" {
		t.Errorf("set status: %d %s", a.status, a.body)
	}
	if a := h.do("PUT", "/_emulator/sessions/"+sid+"/failure", `{"status":503}`, noKey); a.status != 200 {
		t.Errorf("set failure: %d %s", a.status, a.body)
	}
	if a := h.do("GET", "/v1/sessions/"+sid, ""); a.status != 503 {
		t.Errorf("failure not applied: %d", a.status)
	}
	if a := h.do("PUT", "/_emulator/sessions/"+sid+"/failure", `{"status":0}`, noKey); a.status != 200 {
		t.Errorf("clear failure: %d", a.status)
	}
	if a := h.do("GET", "/v1/sessions/"+sid, ""); a.status != 200 {
		t.Errorf("failure not cleared: %d", a.status)
	}

	// Calls.
	a = h.do("GET", "/_emulator/calls", "", noKey)
	var log struct {
		Calls []emulator.Call `json:"calls"`
	}
	if err := json.Unmarshal(a.body, &log); err != nil || len(log.Calls) != 3 {
		t.Fatalf("calls: %s (%v)", a.body, err)
	}
	if c := log.Calls[1]; c.Status != 503 || c.Fault != "fail_session" || c.Op != "GetSession" || c.SessionID != sid {
		t.Errorf("call %+v", c)
	}
	if !strings.Contains(string(a.body), `"duration":"`) {
		t.Errorf("duration not a string: %s", a.body)
	}
	if a := h.do("DELETE", "/_emulator/calls", "", noKey); a.status != 204 || len(h.emu.Calls()) != 0 {
		t.Errorf("delete calls: %d", a.status)
	}

	// Faults.
	a = h.do("PUT", "/_emulator/faults", `{"error_rate":0.25,"latency":"5ms","jitter":"1ms"}`, noKey)
	if a.status != 200 || h.emu.Faults() != (emulator.Faults{ErrorRate: 0.25, Latency: 5 * time.Millisecond, Jitter: time.Millisecond}) {
		t.Errorf("put faults: %d %s %+v", a.status, a.body, h.emu.Faults())
	}
	if a := h.do("GET", "/_emulator/faults", "", noKey); a.json(t)["latency"] != "5ms" || a.json(t)["error_rate"] != 0.25 {
		t.Errorf("get faults: %s", a.body)
	}
	if a := h.do("PUT", "/_emulator/faults", `{}`, noKey); a.status != 200 || h.emu.Faults() != (emulator.Faults{}) {
		t.Errorf("PUT replaces all faults: %+v", h.emu.Faults())
	}

	// Rate limit.
	if a := h.do("PUT", "/_emulator/rate_limit", `{"requests":100,"window":"10s"}`, noKey); a.status != 200 || a.json(t)["requests"] != 100.0 || a.json(t)["window"] != "10s" {
		t.Errorf("put rate limit: %d %s", a.status, a.body)
	}
	if n, w := h.emu.RateLimit(); n != 100 || w != 10*time.Second {
		t.Errorf("RateLimit %d %v", n, w)
	}
	if a := h.do("GET", "/_emulator/rate_limit", "", noKey); a.json(t)["requests"] != 100.0 || a.json(t)["mode"] != "fixed" {
		t.Errorf("get rate limit: %s", a.body)
	}
	if a := h.do("PUT", "/_emulator/rate_limit", `{"requests":50,"window":"1s","mode":"sliding"}`, noKey); a.status != 200 || a.json(t)["mode"] != "sliding" {
		t.Errorf("put sliding rate limit: %d %s", a.status, a.body)
	}
	if a := h.do("PUT", "/_emulator/rate_limit", `{"requests":60,"window":"1s"}`, noKey); a.status != 200 || a.json(t)["mode"] != "sliding" || h.emu.RateLimitMode() != emulator.SlidingWindow {
		t.Errorf("a PUT without mode keeps it: %d %s", a.status, a.body)
	}

	// Seed and health.
	a = h.do("POST", "/_emulator/seed", `{"users":2,"sessions_per_user":4}`, noKey)
	var seeded struct {
		UserIDs []string `json:"user_ids"`
	}
	if err := json.Unmarshal(a.body, &seeded); err != nil || len(seeded.UserIDs) != 2 || len(h.emu.UserSessionIDs(seeded.UserIDs[1])) != 4 {
		t.Errorf("seed: %d %s", a.status, a.body)
	}
	if a := h.do("GET", "/_emulator/health", "", noKey); a.status != 200 || a.json(t)["status"] != "ok" {
		t.Errorf("health: %d %s", a.status, a.body)
	}
}

func TestControlAPIErrors(t *testing.T) {
	h := start(t)
	sid := h.emu.CreateSessions("user_a", 1)[0]
	tests := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/_emulator/nope", "", 404, "resource_not_found"},
		{"GET", "/_emulator/users", "", 405, "method_not_allowed"},
		{"POST", "/_emulator/faults", "{}", 405, "method_not_allowed"},
		{"PUT", "/_emulator/faults", `{"error_rate":2}`, 422, "form_param_value_invalid"},
		{"PUT", "/_emulator/faults", `{"latency":"-1s"}`, 422, "form_param_value_invalid"},
		{"PUT", "/_emulator/faults", `{"latency":"soon"}`, 400, "request_body_invalid"},
		{"PUT", "/_emulator/faults", `{"eror_rate":0.1}`, 400, "request_body_invalid"},
		{"PUT", "/_emulator/faults", `{`, 400, "request_body_invalid"},
		{"PUT", "/_emulator/rate_limit", `{"requests":1,"window":"later"}`, 422, "form_param_value_invalid"},
		{"PUT", "/_emulator/rate_limit", `{"requests":1,"window":"1s","mode":"leaky"}`, 422, "form_param_value_invalid"},
		{"POST", "/_emulator/users/user_a/sessions", `{"count":0}`, 422, "form_param_value_invalid"},
		{"POST", "/_emulator/users/user_a/sessions", `{"count":"3"}`, 400, "request_body_invalid"},
		{"POST", "/_emulator/seed", `{"users":0}`, 422, "form_param_value_invalid"},
		{"POST", "/_emulator/seed", `{"users":2000000,"sessions_per_user":1}`, 422, "form_param_value_invalid"},
		{"GET", "/_emulator/sessions/sess_nope", "", 404, "resource_not_found"},
		{"PUT", "/_emulator/sessions/" + sid + "/status", `{"status":"zombie"}`, 422, "form_param_value_invalid"},
		{"PUT", "/_emulator/sessions/sess_nope/status", `{"status":"ended"}`, 404, "resource_not_found"},
		{"PUT", "/_emulator/sessions/" + sid + "/failure", `{"status":200}`, 422, "form_param_value_invalid"},
		{"PUT", "/_emulator/faults", `{"pad":"` + strings.Repeat("x", emulator.MaxBodyBytes) + `"}`, 413, "request_body_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path+" "+text.Truncate(tc.body, 30), func(t *testing.T) {
			a := h.do(tc.method, tc.path, tc.body, hdr{"Authorization", ""})
			if a.status != tc.status || a.code(t) != tc.code {
				t.Errorf("got %d %s, want %d %s: %s", a.status, a.code(t), tc.status, tc.code, text.Truncate(string(a.body), 200))
			}
		})
	}
	if h.emu.Faults() != (emulator.Faults{}) {
		t.Errorf("rejected PUTs changed faults: %+v", h.emu.Faults())
	}
	if len(h.emu.Calls()) != 0 {
		t.Error("control requests were logged as API calls")
	}
}
