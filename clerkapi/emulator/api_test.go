package emulator_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

func TestAuthentication(t *testing.T) {
	h := start(t, emulator.WithSecretKeys("sk_test_first", "sk_test_second"))
	user := h.emu.CreateUser()
	tests := []struct {
		name, auth string
		status     int
		code       string
	}{
		{"first key", "Bearer sk_test_first", 200, ""},
		{"second key", "Bearer sk_test_second", 200, ""},
		{"scheme is case-insensitive", "bearer sk_test_first", 200, ""},
		{"default key not accepted once keys are given", "Bearer " + emulator.DefaultSecretKey, 401, "clerk_key_invalid"},
		{"unknown key", "Bearer sk_test_nope", 401, "clerk_key_invalid"},
		{"no header", "", 401, "authorization_header_format_invalid"},
		{"basic scheme", "Basic c2tfdGVzdDp4", 401, "authorization_header_format_invalid"},
		{"bearer without key", "Bearer ", 401, "authorization_header_format_invalid"},
		{"key with space", "Bearer sk_test_first extra", 401, "authorization_header_format_invalid"},
	}
	for _, tc := range tests {
		for _, path := range []string{"/v1/sessions?user_id=" + user, "/v1/jwks"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				a := h.do("GET", path, "", hdr{"Authorization", tc.auth})
				if a.status != tc.status {
					t.Fatalf("status %d, want %d (body %s)", a.status, tc.status, a.body)
				}
				if tc.code != "" && a.code(t) != tc.code {
					t.Errorf("code %q, want %q", a.code(t), tc.code)
				}
			})
		}
	}
}

func TestAPIVersion(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	base := "/v1/sessions?user_id=" + user
	tests := []struct {
		name, header, query string
		status              int
	}{
		{"none", "", "", 200},
		{"header 2026-05-12", "2026-05-12", "", 200},
		{"header 2025-04-10 (official SDK)", "2025-04-10", "", 200},
		{"header 2021-02-05", "2021-02-05", "", 200},
		{"query 2025-11-10", "", "2025-11-10", 200},
		{"query 2024-10-01", "", "2024-10-01", 200},
		{"unknown header", "2020-01-01", "", 400},
		{"garbage header", "latest", "", 400},
		{"unknown query", "", "2099-01-01", 400},
		{"both, even equal", "2026-05-12", "2026-05-12", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := base
			if tc.query != "" {
				path += "&__clerk_api_version=" + tc.query
			}
			a := h.do("GET", path, "", hdr{"Clerk-API-Version", tc.header})
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (body %s)", a.status, tc.status, a.body)
			}
			if tc.status == 400 && a.code(t) != "api_version_invalid" {
				t.Errorf("code %q, want api_version_invalid", a.code(t))
			}
		})
	}
}

func TestErrorBodyShape(t *testing.T) {
	h := start(t)
	a := h.do("GET", "/v1/sessions/sess_nope", "")
	if a.status != 404 {
		t.Fatalf("status %d", a.status)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var eb struct {
		Errors []map[string]json.RawMessage `json:"errors"`
		Meta   map[string]any               `json:"meta"`
		Trace  string                       `json:"clerk_trace_id"`
	}
	if err := json.Unmarshal(a.body, &eb); err != nil {
		t.Fatal(err)
	}
	if len(eb.Errors) != 1 || eb.Meta == nil {
		t.Fatalf("body %s: want one error and a meta object", a.body)
	}
	for _, f := range []string{"message", "long_message", "code", "meta"} {
		if _, ok := eb.Errors[0][f]; !ok {
			t.Errorf("error lacks %q: %s", f, a.body)
		}
	}
	if string(eb.Errors[0]["meta"]) != "{}" {
		t.Errorf("error meta %s, want {}", eb.Errors[0]["meta"])
	}
	if len(eb.Trace) != 32 || strings.Trim(eb.Trace, "0123456789abcdef") != "" {
		t.Errorf("trace id %q is not 32 hex digits", eb.Trace)
	}
	if got := a.header.Get("Clerk-Trace-Id"); got != eb.Trace {
		t.Errorf("Clerk-Trace-Id header %q, body %q", got, eb.Trace)
	}
	b := h.do("GET", "/v1/sessions/sess_nope", "")
	if b.json(t)["clerk_trace_id"] == eb.Trace {
		t.Error("two errors share a trace id")
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := start(t)
	sess := h.emu.CreateSessions("user_a", 1)[0]
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/v1/users", 404, "resource_not_found", ""},
		{"GET", "/v1", 404, "resource_not_found", ""},
		{"GET", "/v2/sessions", 404, "resource_not_found", ""},
		{"GET", "/", 404, "resource_not_found", ""},
		{"GET", "/v1/sessions/" + sess + "/nope", 404, "resource_not_found", ""},
		{"POST", "/v1/sessions/" + sess + "/tokens/", 404, "resource_not_found", ""},
		{"POST", "/v1/sessions/" + sess + "/tokens/a/b", 404, "resource_not_found", ""},
		{"GET", "/v1/sessions/", 404, "resource_not_found", ""},
		{"DELETE", "/v1/sessions/" + sess, 405, "method_not_allowed", "GET"},
		{"GET", "/v1/sessions/" + sess + "/revoke", 405, "method_not_allowed", "POST"},
		{"PUT", "/v1/sessions", 405, "method_not_allowed", "GET, POST"},
		{"POST", "/v1/jwks", 405, "method_not_allowed", "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			a := h.do(tc.method, tc.path, "")
			if a.status != tc.status || a.code(t) != tc.code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.code(t), tc.status, tc.code)
			}
			if got := a.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	if s, _ := h.emu.Session(sess); s.Status != clerkapi.StatusActive {
		t.Errorf("a rejected call changed the session: %s", s.Status)
	}
}

func decodeSessions(t *testing.T, b []byte) []clerkapi.Session {
	t.Helper()
	var ss []clerkapi.Session
	if err := json.Unmarshal(b, &ss); err != nil {
		t.Fatalf("body %q is not a session array: %v", b, err)
	}
	return ss
}

func ids(ss []clerkapi.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func TestListSessions(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	created := h.emu.CreateSessions(user, 25)
	other := h.emu.CreateSessions("user_other", 3)
	newestFirst := slices.Clone(created)
	slices.Reverse(newestFirst)
	if got := h.emu.UserSessionIDs(user); !slices.Equal(got, newestFirst) {
		t.Fatalf("UserSessionIDs is not newest first")
	}
	for _, id := range []string{created[0], created[5], created[24]} {
		if err := h.emu.SetSessionStatus(id, clerkapi.StatusRevoked); err != nil {
			t.Fatal(err)
		}
	}
	activeNewest := slices.DeleteFunc(slices.Clone(newestFirst), func(id string) bool {
		return id == created[0] || id == created[5] || id == created[24]
	})
	client := func(id string) string { s, _ := h.emu.Session(id); return s.ClientID }

	tests := []struct {
		name  string
		query string
		want  []string
		total int // for paginated=true; -1 when not paginated
	}{
		{"default limit 10, newest first", "user_id=" + user, newestFirst[:10], -1},
		{"limit and offset", "user_id=" + user + "&limit=5&offset=20", newestFirst[20:25], -1},
		{"offset past the end", "user_id=" + user + "&offset=25", []string{}, -1},
		{"limit 500", "user_id=" + user + "&limit=500", newestFirst, -1},
		{"paginated", "user_id=" + user + "&limit=3&offset=1&paginated=true", newestFirst[1:4], 25},
		{"paginated=false is a bare array", "user_id=" + user + "&limit=2&paginated=false", newestFirst[:2], -1},
		{"status active", "user_id=" + user + "&status=active&limit=500", activeNewest, -1},
		{"status revoked paginated", "user_id=" + user + "&status=revoked&paginated=true", []string{created[24], created[5], created[0]}, 3},
		{"status revoked with offset", "user_id=" + user + "&status=revoked&offset=1&limit=1&paginated=true", []string{created[5]}, 3},
		{"status ended: none", "user_id=" + user + "&status=ended&paginated=true", []string{}, 0},
		{"client_id", "client_id=" + client(created[3]), []string{created[3]}, -1},
		{"client_id and matching user", "client_id=" + client(created[3]) + "&user_id=" + user + "&paginated=true", []string{created[3]}, 1},
		{"client_id and other user", "client_id=" + client(created[3]) + "&user_id=user_other&paginated=true", []string{}, 0},
		{"client_id and status", "client_id=" + client(created[5]) + "&status=active&paginated=true", []string{}, 0},
		{"unknown user: empty, not 404", "user_id=user_unknown&paginated=true", []string{}, 0},
		{"unknown client", "client_id=client_unknown", []string{}, -1},
		{"other user", "user_id=user_other", []string{other[2], other[1], other[0]}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := h.do("GET", "/v1/sessions?"+tc.query, "")
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var got []clerkapi.Session
			if tc.total >= 0 {
				var page clerkapi.SessionList
				if err := json.Unmarshal(a.body, &page); err != nil {
					t.Fatalf("paginated body %q: %v", a.body, err)
				}
				if page.TotalCount != int64(tc.total) {
					t.Errorf("total_count %d, want %d", page.TotalCount, tc.total)
				}
				if page.Data == nil {
					t.Error("data is null, want []")
				}
				got = page.Data
			} else {
				if !strings.HasPrefix(string(a.body), "[") {
					t.Fatalf("body %q is not a bare array", a.body)
				}
				got = decodeSessions(t, a.body)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("got %v\nwant %v", ids(got), tc.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i-1].CreatedAt <= got[i].CreatedAt {
					t.Errorf("created_at not strictly decreasing at %d", i)
				}
			}
		})
	}
}

func TestListSessionsInvalidQuery(t *testing.T) {
	h := start(t)
	tests := []struct {
		query  string
		status int
		code   string
		param  string
	}{
		{"", 400, "missing_query_parameter", ""},
		{"status=active", 400, "missing_query_parameter", ""},
		{"user_id=", 400, "missing_query_parameter", ""},
		{"user_id=u_1&status=bogus", 422, "form_param_value_invalid", "status"},
		{"user_id=u_1&status=pending", 422, "form_param_value_invalid", "status"},
		{"user_id=u_1&limit=0", 422, "form_param_value_invalid", "limit"},
		{"user_id=u_1&limit=501", 422, "form_param_value_invalid", "limit"},
		{"user_id=u_1&limit=ten", 422, "form_param_format_invalid", "limit"},
		{"user_id=u_1&limit=1.5", 422, "form_param_format_invalid", "limit"},
		{"user_id=u_1&offset=-1", 422, "form_param_value_invalid", "offset"},
		{"user_id=u_1&offset=x", 422, "form_param_format_invalid", "offset"},
		{"user_id=u_1&paginated=maybe", 422, "form_param_format_invalid", "paginated"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			a := h.do("GET", "/v1/sessions?"+tc.query, "")
			if a.status != tc.status || a.code(t) != tc.code || a.param(t) != tc.param {
				t.Errorf("got %d %s param %q, want %d %s param %q", a.status, a.code(t), a.param(t), tc.status, tc.code, tc.param)
			}
		})
	}
}

func TestGetSessionShape(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	id := h.emu.CreateSessions(user, 1)[0]
	a := h.do("GET", "/v1/sessions/"+id, "")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	m := a.json(t)
	for _, f := range []string{"object", "id", "user_id", "client_id", "actor", "status", "last_active_organization_id",
		"last_active_at", "latest_activity", "expire_at", "abandon_at", "updated_at", "created_at", "tasks"} {
		if _, ok := m[f]; !ok {
			t.Errorf("session lacks %q", f)
		}
	}
	if m["object"] != "session" || m["id"] != id || m["user_id"] != user || m["status"] != "active" {
		t.Errorf("session %s", a.body)
	}
	if m["actor"] != nil || m["tasks"] != nil || m["last_active_organization_id"] != nil {
		t.Errorf("actor, tasks and last_active_organization_id should be null: %s", a.body)
	}
	if !strings.HasPrefix(m["client_id"].(string), "client_") || len(id) != len("sess_")+27 || len(user) != len("user_")+27 {
		t.Errorf("id shapes: %s %s %s", id, user, m["client_id"])
	}
	act, _ := m["latest_activity"].(map[string]any)
	if act["object"] != "session_activity" || act["id"] == "" || act["is_mobile"] != false {
		t.Errorf("latest_activity %v", act)
	}
	created := int64(m["created_at"].(float64))
	if now := time.Now().UnixMilli(); created > now || created < now-60_000 {
		t.Errorf("created_at %d is not Unix milliseconds near %d", created, now)
	}
	if got := int64(m["expire_at"].(float64)) - created; got != emulator.SessionLifetime.Milliseconds() {
		t.Errorf("expire_at - created_at = %d ms", got)
	}
	if a := h.do("GET", "/v1/sessions/sess_missing", ""); a.status != 404 || a.code(t) != "resource_not_found" {
		t.Errorf("unknown session: %d %s", a.status, a.body)
	}
	if a := h.do("GET", "/v1/sessions/"+url.PathEscape("sess_1/../x"), ""); a.status != 404 {
		t.Errorf("escaped slash in id: %d %s", a.status, a.body)
	}
}

func TestCreateSession(t *testing.T) {
	// The production key is spelled in two parts: no live-looking key is
	// committed.
	h := start(t, emulator.WithSecretKeys("sk_test_dev", "sk_"+"live_prod"))
	user := h.emu.CreateUser()
	dev := hdr{"Authorization", "Bearer sk_test_dev"}
	tests := []struct {
		name, body, contentType string
		auth                    hdr
		status                  int
		code, param             string
	}{
		{"ok", `{"user_id":"` + user + `"}`, "", dev, 200, "", ""},
		{"with organization", `{"user_id":"` + user + `","active_organization_id":"org_1"}`, "", dev, 200, "", ""},
		{"json with charset", `{"user_id":"` + user + `"}`, "application/json; charset=utf-8", dev, 200, "", ""},
		{"unknown user", `{"user_id":"user_nobody"}`, "", dev, 404, "resource_not_found", ""},
		{"missing user_id", `{}`, "", dev, 422, "form_param_missing", "user_id"},
		{"null body", `null`, "", dev, 422, "form_param_missing", "user_id"},
		{"empty user_id", `{"user_id":""}`, "", dev, 422, "form_param_missing", "user_id"},
		{"user_id not a string", `{"user_id":42}`, "", dev, 422, "form_param_type_invalid", "user_id"},
		{"malformed JSON", `{"user_id":`, "", dev, 400, "request_body_invalid", ""},
		{"not an object", `["user_id"]`, "", dev, 400, "request_body_invalid", ""},
		{"form encoded", `user_id=` + user, "application/x-www-form-urlencoded", dev, 415, "unsupported_content_type", ""},
		{"production instance", `{"user_id":"` + user + `"}`, "", hdr{"Authorization", "Bearer sk_" + "live_prod"}, 400, "request_invalid_for_environment", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := []hdr{tc.auth}
			if tc.contentType != "" {
				extra = append(extra, hdr{"Content-Type", tc.contentType})
			}
			a := h.do("POST", "/v1/sessions", tc.body, extra...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.status != 200 {
				if a.code(t) != tc.code || a.param(t) != tc.param {
					t.Errorf("code %s param %q, want %s %q", a.code(t), a.param(t), tc.code, tc.param)
				}
				return
			}
			var s clerkapi.Session
			if err := json.Unmarshal(a.body, &s); err != nil {
				t.Fatal(err)
			}
			if s.UserID != user || s.Status != clerkapi.StatusActive || s.Object != "session" {
				t.Errorf("created %+v", s)
			}
			if got, ok := h.emu.Session(s.ID); !ok || got.ID != s.ID {
				t.Errorf("created session not stored")
			}
			if strings.Contains(tc.body, "org_1") && (s.LastActiveOrganizationID == nil || *s.LastActiveOrganizationID != "org_1") {
				t.Errorf("last_active_organization_id %v", s.LastActiveOrganizationID)
			}
			if h.emu.UserSessionIDs(user)[0] != s.ID {
				t.Error("created session is not the newest of its user")
			}
		})
	}
}

func TestBodyLimits(t *testing.T) {
	h := start(t)
	id := h.emu.CreateSessions("user_a", 1)[0]
	big := `{"expires_in_seconds":60,"pad":"` + strings.Repeat("x", emulator.MaxBodyBytes) + `"}`
	if a := h.do("POST", "/v1/sessions/"+id+"/tokens", big); a.status != 413 || a.code(t) != "request_body_too_large" {
		t.Errorf("1 MiB body: %d %s", a.status, a.body)
	}
	// Without Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest("POST", h.srv.URL+"/sessions/"+id+"/revoke", struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Authorization", "Bearer "+emulator.DefaultSecretKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || req.ContentLength > 0 {
		t.Errorf("chunked 1 MiB body: %d (Content-Length %d)", resp.StatusCode, req.ContentLength)
	}
	if s, _ := h.emu.Session(id); s.Status != clerkapi.StatusActive {
		t.Error("a rejected revoke revoked the session")
	}
	// Just under the limit is fine.
	ok := `{"pad":"` + strings.Repeat("x", emulator.MaxBodyBytes-20) + `"}`
	if a := h.do("POST", "/v1/sessions/"+id+"/tokens", ok); a.status != 200 {
		t.Errorf("body under 1 MiB: %d %s", a.status, a.body)
	}
}

func TestRevokeSession(t *testing.T) {
	h := start(t)
	ids := h.emu.CreateSessions("user_a", 5)
	for i, body := range []string{"", "null", "{}", `{"ignored":true}`} {
		t.Run(fmt.Sprintf("body %q", body), func(t *testing.T) {
			a := h.do("POST", "/v1/sessions/"+ids[i]+"/revoke", body)
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var s clerkapi.Session
			_ = json.Unmarshal(a.body, &s)
			if s.ID != ids[i] || s.Status != clerkapi.StatusRevoked {
				t.Errorf("answer %+v", s)
			}
			if got, _ := h.emu.Session(ids[i]); got.Status != clerkapi.StatusRevoked || got.UpdatedAt < got.CreatedAt {
				t.Errorf("stored %+v", got)
			}
			if n := h.emu.RevokeCount(ids[i]); n != 1 {
				t.Errorf("RevokeCount %d", n)
			}
		})
	}
	t.Run("again is idempotent", func(t *testing.T) {
		before, _ := h.emu.Session(ids[0])
		a := h.do("POST", "/v1/sessions/"+ids[0]+"/revoke", "")
		var s clerkapi.Session
		_ = json.Unmarshal(a.body, &s)
		if a.status != 200 || !sameSession(s, before) {
			t.Errorf("second revoke: %d %s", a.status, a.body)
		}
		if n := h.emu.RevokeCount(ids[0]); n != 2 {
			t.Errorf("RevokeCount %d after two revokes, want 2", n)
		}
	})
	t.Run("ended session unchanged", func(t *testing.T) {
		_ = h.emu.SetSessionStatus(ids[4], clerkapi.StatusEnded)
		a := h.do("POST", "/v1/sessions/"+ids[4]+"/revoke", "")
		if a.status != 200 || a.json(t)["status"] != "ended" {
			t.Errorf("revoke of ended: %d %s", a.status, a.body)
		}
	})
	t.Run("pending can be revoked", func(t *testing.T) {
		id := h.emu.CreateSessions("user_a", 1)[0]
		_ = h.emu.SetSessionStatus(id, clerkapi.StatusPending)
		if a := h.do("POST", "/v1/sessions/"+id+"/revoke", ""); a.json(t)["status"] != "revoked" {
			t.Errorf("revoke of pending: %s", a.body)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if a := h.do("POST", "/v1/sessions/sess_nope/revoke", ""); a.status != 404 || a.code(t) != "resource_not_found" {
			t.Errorf("%d %s", a.status, a.body)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		id := h.emu.CreateSessions("user_a", 1)[0]
		if a := h.do("POST", "/v1/sessions/"+id+"/revoke", "{"); a.status != 400 || a.code(t) != "request_body_invalid" {
			t.Errorf("%d %s", a.status, a.body)
		}
		if h.emu.RevokeCount(id) != 0 {
			t.Error("a rejected revoke was counted")
		}
	})
}

func sameSession(a, b clerkapi.Session) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestStrictRevoke(t *testing.T) {
	h := start(t, emulator.WithStrictRevoke())
	id := h.emu.CreateSessions("user_a", 1)[0]
	if a := h.do("POST", "/v1/sessions/"+id+"/revoke", ""); a.status != 200 {
		t.Fatalf("first revoke: %d %s", a.status, a.body)
	}
	a := h.do("POST", "/v1/sessions/"+id+"/revoke", "")
	if a.status != 400 || a.code(t) != "session_not_active" {
		t.Errorf("second revoke: %d %s", a.status, a.body)
	}
	if n := h.emu.RevokeCount(id); n != 1 {
		t.Errorf("RevokeCount %d, want 1", n)
	}
}

// parseToken verifies an RS256 token against key and returns its claims.
func parseToken(t *testing.T, tok string, key *rsa.PublicKey) (jwt.MapClaims, *jwt.Token) {
	t.Helper()
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	return parsed.Claims.(jwt.MapClaims), parsed
}

func num(c jwt.MapClaims, k string) int64 {
	f, _ := c[k].(float64)
	return int64(f)
}

func TestCreateSessionToken(t *testing.T) {
	h := start(t,
		emulator.WithTemplate("hasura", map[string]any{"aud": "hasura", "uid": "{{user.id}}", "sess": "{{session.id}}", "role": "admin", "sub": "ignored"}, 10*time.Minute),
		emulator.WithTemplate("plain", nil, 0),
	)
	user := h.emu.CreateUser()
	id := h.emu.CreateSessions(user, 1)[0]
	revoked := h.emu.CreateSessions(user, 1)[0]
	_ = h.emu.SetSessionStatus(revoked, clerkapi.StatusRevoked)

	tests := []struct {
		name, path, body string
		status           int
		code, param      string
		lifetime         int64
	}{
		{"default", "/tokens", "", 200, "", "", 60},
		{"empty object", "/tokens", "{}", 200, "", "", 60},
		{"null lifetime", "/tokens", `{"expires_in_seconds":null}`, 200, "", "", 60},
		{"lifetime 30", "/tokens", `{"expires_in_seconds":30}`, 200, "", "", 30},
		{"lifetime max", "/tokens", `{"expires_in_seconds":315360000}`, 200, "", "", 315360000},
		{"lifetime 29", "/tokens", `{"expires_in_seconds":29}`, 422, "form_param_value_invalid", "expires_in_seconds", 0},
		{"lifetime too long", "/tokens", `{"expires_in_seconds":315360001}`, 422, "form_param_value_invalid", "expires_in_seconds", 0},
		{"lifetime string", "/tokens", `{"expires_in_seconds":"60"}`, 422, "form_param_type_invalid", "expires_in_seconds", 0},
		{"lifetime fraction", "/tokens", `{"expires_in_seconds":60.5}`, 422, "form_param_type_invalid", "expires_in_seconds", 0},
		{"template", "/tokens/hasura", "", 200, "", "", 600},
		{"template with lifetime", "/tokens/hasura", `{"expires_in_seconds":45}`, 200, "", "", 45},
		{"template default lifetime", "/tokens/plain", "", 200, "", "", 60},
		{"unknown template", "/tokens/nope", "", 404, "resource_not_found", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := h.do("POST", "/v1/sessions/"+id+tc.path, tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.status != 200 {
				if a.code(t) != tc.code || a.param(t) != tc.param {
					t.Errorf("code %s param %q, want %s %q", a.code(t), a.param(t), tc.code, tc.param)
				}
				return
			}
			var tok clerkapi.Token
			if err := json.Unmarshal(a.body, &tok); err != nil || tok.Object != "token" {
				t.Fatalf("answer %s", a.body)
			}
			c, parsed := parseToken(t, tok.JWT, h.emu.PublicKey())
			if parsed.Header["kid"] == "" || parsed.Header["alg"] != "RS256" {
				t.Errorf("header %v", parsed.Header)
			}
			if c["iss"] != emulator.DefaultIssuer || c["sub"] != user || c["azp"] == "" {
				t.Errorf("claims %v", c)
			}
			if got := num(c, "exp") - num(c, "iat"); got != tc.lifetime {
				t.Errorf("lifetime %d s, want %d", got, tc.lifetime)
			}
			if num(c, "nbf") > num(c, "iat") {
				t.Errorf("nbf %d after iat %d", num(c, "nbf"), num(c, "iat"))
			}
			switch {
			case strings.HasSuffix(tc.path, "/hasura"):
				if c["aud"] != "hasura" || c["uid"] != user || c["sess"] != id || c["role"] != "admin" || c["jti"] == nil {
					t.Errorf("template claims %v", c)
				}
			case tc.path == "/tokens":
				if c["sid"] != id {
					t.Errorf("sid %v, want %s", c["sid"], id)
				}
			}
		})
	}
	t.Run("not active", func(t *testing.T) {
		for _, p := range []string{"/tokens", "/tokens/hasura"} {
			if a := h.do("POST", "/v1/sessions/"+revoked+p, ""); a.status != 404 || a.code(t) != "resource_not_found" {
				t.Errorf("%s on a revoked session: %d %s", p, a.status, a.body)
			}
		}
	})
	t.Run("unknown session", func(t *testing.T) {
		if a := h.do("POST", "/v1/sessions/sess_nope/tokens", ""); a.status != 404 {
			t.Errorf("%d %s", a.status, a.body)
		}
	})
}

func TestJWKS(t *testing.T) {
	h := start(t)
	id := h.emu.CreateSessions("user_a", 1)[0]
	a := h.do("GET", "/v1/jwks", "")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(a.body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s", a.body)
	}
	k := set.Keys[0]
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || !strings.HasPrefix(k["kid"], "ins_") {
		t.Errorf("key %v", k)
	}
	n, err1 := base64.RawURLEncoding.DecodeString(k["n"])
	e, err2 := base64.RawURLEncoding.DecodeString(k["e"])
	if err1 != nil || err2 != nil {
		t.Fatalf("n/e not base64url: %v %v", err1, err2)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if !pub.Equal(h.emu.PublicKey()) {
		t.Fatal("JWKS key is not the signing key")
	}
	var tok clerkapi.Token
	_ = json.Unmarshal(h.do("POST", "/v1/sessions/"+id+"/tokens", "").body, &tok)
	_, parsed := parseToken(t, tok.JWT, pub)
	if parsed.Header["kid"] != k["kid"] {
		t.Errorf("token kid %v, JWKS kid %s", parsed.Header["kid"], k["kid"])
	}
}

func TestRefreshSession(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	ids := h.emu.CreateSessions(user, 3)
	id, other, revoked := ids[0], ids[1], ids[2]
	_ = h.emu.SetSessionStatus(revoked, clerkapi.StatusRevoked)
	expired := h.emu.SessionToken(id, -time.Minute)
	refresh := h.emu.RefreshToken(id)
	if refresh == "" || expired == "" || refresh == h.emu.RefreshToken(other) {
		t.Fatal("no refresh token or expired token")
	}
	// A token signed by another emulator (another key) is not ours.
	stranger := emulator.New(emulator.WithSigningKey(mustKey(t)))
	strangerSess := stranger.CreateSessions(user, 1)[0]
	strangerTok := stranger.SessionToken(strangerSess, -time.Minute)

	body := func(fields map[string]any) string {
		b, _ := json.Marshal(fields)
		return string(b)
	}
	good := func(extra map[string]any) string {
		m := map[string]any{"expired_token": expired, "refresh_token": refresh, "request_origin": "https://app.example.com"}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return body(m)
	}
	tests := []struct {
		name, session, body string
		status              int
		code, param         string
	}{
		{"token", id, good(nil), 200, "", ""},
		{"token format", id, good(map[string]any{"format": "token", "request_headers": map[string]any{"User-Agent": []string{"x"}, "Accept": []string{}}, "request_originating_ip": "10.0.0.1"}), 200, "", ""},
		{"cookie format", id, good(map[string]any{"format": "cookie"}), 200, "", ""},
		{"missing expired_token", id, good(map[string]any{"expired_token": nil}), 400, "form_param_missing", "expired_token"},
		{"missing refresh_token", id, good(map[string]any{"refresh_token": nil}), 400, "form_param_missing", "refresh_token"},
		{"missing request_origin", id, good(map[string]any{"request_origin": nil}), 400, "form_param_missing", "request_origin"},
		{"empty body", id, "", 400, "form_param_missing", "expired_token"},
		{"unknown field", id, good(map[string]any{"foo": 1}), 400, "form_param_unknown", "foo"},
		{"bad format", id, good(map[string]any{"format": "xml"}), 400, "form_param_value_invalid", "format"},
		{"headers not an object", id, good(map[string]any{"request_headers": "x"}), 400, "form_param_type_invalid", "request_headers"},
		{"header value a string", id, good(map[string]any{"request_headers": map[string]any{"User-Agent": "x"}}), 400, "form_param_type_invalid", "request_headers"},
		{"header value a number", id, good(map[string]any{"request_headers": map[string]any{"X-N": []any{1}}}), 400, "form_param_type_invalid", "request_headers"},
		{"malformed JSON", id, `{"expired_token":`, 400, "request_body_invalid", ""},
		{"wrong refresh token", id, good(map[string]any{"refresh_token": "nope"}), 401, "refresh_token_not_found", ""},
		{"refresh token of another session", id, good(map[string]any{"refresh_token": h.emu.RefreshToken(other)}), 401, "refresh_token_not_found", ""},
		{"expired token garbage", id, good(map[string]any{"expired_token": "not.a.jwt"}), 401, "expired_session_token_invalid", ""},
		{"expired token of another session", id, good(map[string]any{"expired_token": h.emu.SessionToken(other, -time.Minute)}), 401, "expired_session_token_invalid", ""},
		{"expired token signed by another key", id, good(map[string]any{"expired_token": strangerTok}), 401, "expired_session_token_invalid", ""},
		{"revoked session", revoked, body(map[string]any{"expired_token": h.emu.SessionToken(revoked, -time.Minute), "refresh_token": h.emu.RefreshToken(revoked), "request_origin": "https://a"}), 401, "session_refresh_session_not_active", ""},
		// The description lists only 400 and 401 for RefreshSession.
		{"unknown session", "sess_nope", good(nil), 401, "refresh_token_not_found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := h.do("POST", "/v1/sessions/"+tc.session+"/refresh", tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.status != 200 {
				if a.code(t) != tc.code || a.param(t) != tc.param {
					t.Errorf("code %s param %q, want %s %q", a.code(t), a.param(t), tc.code, tc.param)
				}
				return
			}
			var res clerkapi.RefreshResult
			if err := json.Unmarshal(a.body, &res); err != nil {
				t.Fatal(err)
			}
			var jwtStr string
			if strings.Contains(tc.body, `"cookie"`) {
				if res.Cookies == nil || res.Cookies.Object != "cookies" || len(res.Cookies.Cookies) < 1 {
					t.Fatalf("cookies answer %s", a.body)
				}
				v, _, _ := strings.Cut(strings.TrimPrefix(res.Cookies.Cookies[0], "__session="), ";")
				if !strings.HasPrefix(res.Cookies.Cookies[0], "__session=") {
					t.Fatalf("first cookie %q", res.Cookies.Cookies[0])
				}
				jwtStr = v
			} else {
				if res.Token == nil || res.Token.Object != "token" {
					t.Fatalf("token answer %s", a.body)
				}
				jwtStr = res.Token.JWT
			}
			c, _ := parseToken(t, jwtStr, h.emu.PublicKey())
			if c["sid"] != id || c["sub"] != user || c["azp"] != "https://app.example.com" {
				t.Errorf("refreshed claims %v", c)
			}
		})
	}
	if s, _ := h.emu.Session(id); s.LatestActivity.IPAddress != "10.0.0.1" {
		t.Errorf("request_originating_ip not recorded: %+v", s.LatestActivity)
	}
}

func mustKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// WithIssuer changes the iss claim of both kinds of token: a test of an
// issuer check can make the emulator sign for the issuer it expects.
func TestWithIssuer(t *testing.T) {
	const iss = "https://clerk.issuer.example"
	h := start(t, emulator.WithIssuer(iss), emulator.WithTemplate("plain", nil, time.Minute))
	id := h.emu.CreateSessions(h.emu.CreateUser(), 1)[0]
	for _, path := range []string{"/tokens", "/tokens/plain"} {
		a := h.do("POST", "/v1/sessions/"+id+path, "")
		var tok clerkapi.Token
		if err := json.Unmarshal(a.body, &tok); a.status != 200 || err != nil {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
		if c, _ := parseToken(t, tok.JWT, h.emu.PublicKey()); c["iss"] != iss {
			t.Errorf("%s: iss %v, want %s", path, c["iss"], iss)
		}
	}
}
