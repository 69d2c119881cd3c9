package spectest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestLoad(t *testing.T) {
	s := Load(t)
	for _, name := range []string{"Session", "ClerkErrors", "Token", "Cookies", "JWKS", "User"} {
		if _, err := s.Schema(name); err != nil {
			t.Error(err)
		}
	}
}

// recorder is a testing.TB that keeps Errorf messages.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Helper() {}

// TestTransportCatches proves the validator is not a no-op: it must flag
// answers and requests that break the description.
func TestTransportCatches(t *testing.T) {
	s := Load(t)
	const session = `{"object":"session","id":"sess_1","user_id":"user_1","client_id":"client_1","status":"active","last_active_at":1,"expire_at":1,"abandon_at":1,"updated_at":1,"created_at":1}`
	// user has every field the User schema requires, and no other.
	const user = `{"id":"user_1","object":"user","external_id":null,"username":null,"first_name":null,"last_name":null,` +
		`"has_image":false,"primary_email_address_id":null,"primary_phone_number_id":null,"primary_web3_wallet_id":null,` +
		`"password_enabled":false,"two_factor_enabled":false,"totp_enabled":false,"backup_code_enabled":false,` +
		`"email_addresses":[],"phone_numbers":[],"web3_wallets":[],"passkeys":[],"external_accounts":[],"saml_accounts":[],` +
		`"enterprise_accounts":[],"public_metadata":{},"last_sign_in_at":null,"banned":false,"locked":true,` +
		`"lockout_expires_in_seconds":3600,"verification_attempts_remaining":null,"created_at":1,"updated_at":2,` +
		`"delete_self_enabled":true,"create_organization_enabled":true,"last_active_at":null,"mfa_enabled_at":null,` +
		`"mfa_disabled_at":null,"legal_accepted_at":null}`
	const refresh = `{"expired_token":"a","refresh_token":"b","request_origin":"c"}`
	clerkErr := func(code string) string {
		return `{"errors":[{"message":"m","long_message":"l","code":"` + code + `"}]}`
	}
	tests := []struct {
		name, method, path, auth, reqBody string
		status                            int
		ct, body                          string
		mode                              Mode
		wantErr                           string // substring of the reported violation; "" for none
	}{
		{"valid session", "GET", "/v1/sessions/sess_1", "Bearer k", "", 200, "application/json", session, Both, ""},
		{"session lacks required fields", "GET", "/v1/sessions/sess_1", "Bearer k", "", 200, "application/json", `{"object":"session","id":"sess_1"}`, Both, "violates"},
		{"session has an extra field", "GET", "/v1/sessions/sess_1", "Bearer k", "", 200, "application/json", strings.Replace(session, `"id"`, `"extra":1,"id"`, 1), Both, "violates"},
		{"bad status enum", "GET", "/v1/sessions/sess_1", "Bearer k", "", 200, "application/json", strings.Replace(session, `"active"`, `"zombie"`, 1), Both, "violates"},
		{"error body without errors", "GET", "/v1/sessions/sess_1", "Bearer k", "", 404, "application/json", `{"message":"nope"}`, Both, "violates"},
		{"error body not JSON", "GET", "/v1/sessions/sess_1", "Bearer k", "", 502, "text/html", `<html>`, Both, "violates"},
		{"valid error body", "GET", "/v1/sessions/sess_1", "Bearer k", "", 404, "application/json", `{"errors":[{"message":"m","long_message":"l","code":"resource_not_found"}]}`, Both, ""},
		{"paginated list", "GET", "/v1/sessions?user_id=u&paginated=true", "Bearer k", "", 200, "application/json", `{"data":[` + session + `],"total_count":1}`, Both, ""},
		{"paginated list with a bad item", "GET", "/v1/sessions?user_id=u&paginated=true", "Bearer k", "", 200, "application/json", `{"data":[{"id":1}],"total_count":1}`, Both, "violates"},
		{"request without bearer", "GET", "/v1/sessions/sess_1", "", "", 200, "application/json", session, Both, "request"},
		{"request with limit 0", "GET", "/v1/sessions?user_id=u&limit=0", "Bearer k", "", 200, "application/json", `[]`, Both, "request"},
		{"bad request ignored in ResponsesOnly", "GET", "/v1/sessions?user_id=u&limit=0", "Bearer k", "", 200, "application/json", `[]`, ResponsesOnly, ""},
		{"refresh body with unknown field", "POST", "/v1/sessions/sess_1/refresh", "Bearer k", `{"expired_token":"a","refresh_token":"b","request_origin":"c","x":1}`, 200, "application/json", `{"object":"token","jwt":"j"}`, Both, "request"},
		{"token lifetime too short", "POST", "/v1/sessions/sess_1/tokens", "Bearer k", `{"expires_in_seconds":1}`, 200, "application/json", `{"object":"token","jwt":"j"}`, Both, "request"},
		{"valid locked user", "POST", "/v1/users/user_1/lock", "Bearer k", "", 200, "application/json", user, Both, ""},
		{"unlocked user, lockout null", "POST", "/v1/users/user_1/unlock", "Bearer k", "", 200, "application/json", strings.Replace(user, `"locked":true,"lockout_expires_in_seconds":3600`, `"locked":false,"lockout_expires_in_seconds":null`, 1), Both, ""},
		{"user lacks lockout_expires_in_seconds", "POST", "/v1/users/user_1/lock", "Bearer k", "", 200, "application/json", strings.Replace(user, `"lockout_expires_in_seconds":3600,`, "", 1), Both, "violates"},
		{"user lockout as a string", "POST", "/v1/users/user_1/lock", "Bearer k", "", 200, "application/json", strings.Replace(user, `3600`, `"3600"`, 1), Both, "violates"},
		{"user has an extra field", "POST", "/v1/users/user_1/lock", "Bearer k", "", 200, "application/json", strings.Replace(user, `"id"`, `"lock_until":1,"id"`, 1), Both, "violates"},
		{"lock refused 403", "POST", "/v1/users/user_1/lock", "Bearer k", "", 403, "application/json", `{"errors":[{"message":"m","long_message":"l","code":"authorization_invalid"}]}`, Both, ""},
		{"refresh 401", "POST", "/v1/sessions/sess_1/refresh", "Bearer k", refresh, 401, "application/json", clerkErr("refresh_token_not_found"), Both, ""},
		{"refresh 400", "POST", "/v1/sessions/sess_1/refresh", "Bearer k", refresh, 400, "application/json", clerkErr("form_param_missing"), Both, ""},
		{"refresh 503", "POST", "/v1/sessions/sess_1/refresh", "Bearer k", refresh, 503, "application/json", clerkErr("service_unavailable"), Both, ""},
		{"refresh 404 is not listed", "POST", "/v1/sessions/sess_1/refresh", "Bearer k", refresh, 404, "application/json", clerkErr("resource_not_found"), Both, "not one the description lists"},
		{"refresh 422 is not listed", "POST", "/v1/sessions/sess_1/refresh", "Bearer k", refresh, 422, "application/json", clerkErr("form_param_missing"), Both, "not one the description lists"},
		{"gateway fault page", "GET", "/v1/sessions/sess_1", "Bearer k", "", 502, "text/html", `<html>`, Both, ""},
		{"gateway fault page on a 500", "GET", "/v1/sessions/sess_1", "Bearer k", "", 500, "text/html", `<html>`, Both, "Via"},
		{"unknown path in Both mode", "GET", "/v1/nothing_here", "Bearer k", "", 404, "application/json", `{"errors":[]}`, Both, "no operation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(tc.name, "gateway fault") {
					w.Header().Set("Via", gatewayVia)
				}
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			rec := &recorder{TB: t}
			hc := &http.Client{Transport: s.Transport(rec, nil, tc.mode)}
			var body io.Reader
			if tc.reqBody != "" {
				body = strings.NewReader(tc.reqBody)
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != tc.body {
				t.Errorf("body not passed through: %q", got)
			}
			all := strings.Join(rec.errs, "\n")
			switch {
			case tc.wantErr == "" && len(rec.errs) > 0:
				t.Errorf("unexpected violations:\n%s", all)
			case tc.wantErr != "" && !strings.Contains(all, tc.wantErr):
				t.Errorf("want a violation mentioning %q, got:\n%s", tc.wantErr, all)
			}
		})
	}
}
