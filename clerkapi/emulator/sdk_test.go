package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	"github.com/clerk/clerk-sdk-go/v2/session"
	sdkuser "github.com/clerk/clerk-sdk-go/v2/user"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkapi/internal/spectest"
)

// TestOfficialSDK drives Clerk's own Go SDK (v2) against the emulator,
// unchanged: only BackendConfig points it here. Its requests and the
// emulator's answers are checked against the OpenAPI description.
func TestOfficialSDK(t *testing.T) {
	const key = "sk_test_sdk_0123456789"
	srv := emulator.NewServer(emulator.WithSecretKeys(key), emulator.WithSigningKey(testKey()),
		emulator.WithTemplate("backend", map[string]any{"aud": "jobs", "user": "{{user.id}}"}, 5*time.Minute))
	defer srv.Close()
	e := srv.Emulator
	user := e.CreateUser()
	ids := e.CreateSessions(user, 5)

	hc := &http.Client{Timeout: 5 * time.Second, Transport: spectest.Optional(t).Transport(t, nil, spectest.Both)}
	cfg := &clerk.ClientConfig{BackendConfig: clerk.BackendConfig{
		URL: clerk.String(srv.URL), Key: clerk.String(key), HTTPClient: hc,
	}}
	sessions := session.NewClient(cfg)
	ctx := context.Background()

	t.Run("Get", func(t *testing.T) {
		s, err := sessions.Get(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != ids[0] || s.UserID != user || s.Status != "active" || s.Object != "session" || s.LatestActivity == nil {
			t.Errorf("session %+v", s)
		}
		if s.Response == nil || s.Response.StatusCode != 200 {
			t.Errorf("response %+v", s.Response)
		}
	})

	t.Run("List", func(t *testing.T) {
		list, err := sessions.List(ctx, &session.ListParams{
			UserID:     clerk.String(user),
			Status:     clerk.String("active"),
			ListParams: clerk.ListParams{Limit: clerk.Int64(2), Offset: clerk.Int64(1)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if list.TotalCount != 5 || len(list.Sessions) != 2 || list.Sessions[0].ID != ids[3] || list.Sessions[1].ID != ids[2] {
			t.Errorf("list total %d: %v", list.TotalCount, list.Sessions)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		s, err := sessions.Revoke(ctx, &session.RevokeParams{ID: ids[4]})
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != "revoked" || e.RevokeCount(ids[4]) != 1 {
			t.Errorf("revoked %+v, count %d", s, e.RevokeCount(ids[4]))
		}
	})

	t.Run("Create", func(t *testing.T) {
		s, err := sessions.Create(ctx, &session.CreateParams{UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		if s.UserID != user || s.Status != "active" {
			t.Errorf("created %+v", s)
		}
	})

	set, err := jwks.NewClient(cfg).Get(ctx, &jwks.GetParams{})
	if err != nil {
		t.Fatalf("jwks: %v", err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Algorithm != "RS256" {
		t.Fatalf("jwks %+v", set.Keys)
	}

	t.Run("CreateToken", func(t *testing.T) {
		tok, err := sessions.CreateToken(ctx, &session.CreateTokenParams{ID: ids[0]})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Object != "token" {
			t.Errorf("object %q", tok.Object)
		}
		claims, err := jwt.Verify(ctx, &jwt.VerifyParams{Token: tok.JWT, JWK: set.Keys[0]})
		if err != nil {
			t.Fatalf("SDK cannot verify the session token: %v", err)
		}
		if claims.SessionID != ids[0] || claims.Subject != user || claims.Issuer != emulator.DefaultIssuer {
			t.Errorf("claims %+v", claims)
		}
	})

	t.Run("CreateToken with lifetime", func(t *testing.T) {
		tok, err := sessions.CreateToken(ctx, &session.CreateTokenParams{ID: ids[0], ExpiresInSeconds: clerk.Int64(3600)})
		if err != nil {
			t.Fatal(err)
		}
		claims, err := jwt.Verify(ctx, &jwt.VerifyParams{Token: tok.JWT, JWK: set.Keys[0]})
		if err != nil {
			t.Fatal(err)
		}
		if got := *claims.Expiry - *claims.IssuedAt; got != 3600 {
			t.Errorf("lifetime %d", got)
		}
	})

	t.Run("CreateToken from template", func(t *testing.T) {
		tok, err := sessions.CreateToken(ctx, &session.CreateTokenParams{ID: ids[0], TemplateName: "backend"})
		if err != nil {
			t.Fatal(err)
		}
		type custom struct {
			User string `json:"user"`
		}
		claims, err := jwt.Verify(ctx, &jwt.VerifyParams{Token: tok.JWT, JWK: set.Keys[0],
			CustomClaimsConstructor: func(context.Context) any { return &custom{} }})
		if err != nil {
			t.Fatalf("SDK cannot verify the template token: %v", err)
		}
		if c, _ := claims.Custom.(*custom); c == nil || c.User != user || claims.Subject != user {
			t.Errorf("template claims %+v", claims)
		}
		if got := *claims.Expiry - *claims.IssuedAt; got != 300 {
			t.Errorf("template lifetime %d", got)
		}
	})

	users := sdkuser.NewClient(cfg)
	t.Run("Lock and Unlock", func(t *testing.T) {
		u, err := users.Lock(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != user || !u.Locked || u.LockoutExpiresInSeconds == nil || *u.LockoutExpiresInSeconds != 3600 {
			t.Errorf("locked %+v", u)
		}
		_, err = sessions.Create(ctx, &session.CreateParams{UserID: user})
		var apiErr *clerk.APIErrorResponse
		if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 403 || apiErr.Errors[0].Code != "user_locked" {
			t.Errorf("sign-in of a locked user: %v", err)
		}
		u, err = users.Unlock(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if u.Locked || u.LockoutExpiresInSeconds != nil {
			t.Errorf("unlocked %+v", u)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name   string
			call   func() error
			status int
			code   string
		}{
			{"unknown session", func() error { _, err := sessions.Get(ctx, "sess_nope"); return err }, 404, "resource_not_found"},
			{"unknown template", func() error {
				_, err := sessions.CreateToken(ctx, &session.CreateTokenParams{ID: ids[0], TemplateName: "nope"})
				return err
			}, 404, "resource_not_found"},
			{"token for revoked session", func() error {
				_, err := sessions.CreateToken(ctx, &session.CreateTokenParams{ID: ids[4]})
				return err
			}, 404, "resource_not_found"},
			{"bad key", func() error {
				bad := session.NewClient(&clerk.ClientConfig{BackendConfig: clerk.BackendConfig{
					URL: clerk.String(srv.URL), Key: clerk.String("sk_test_bad"), HTTPClient: hc}})
				_, err := bad.Get(ctx, ids[0])
				return err
			}, 401, "clerk_key_invalid"},
			{"lock unknown user", func() error { _, err := users.Lock(ctx, "user_nope"); return err }, 404, "resource_not_found"},
			{"server error", func() error {
				e.FailSession(ids[1], 503)
				defer e.FailSession(ids[1], 0)
				_, err := sessions.Get(ctx, ids[1])
				return err
			}, 503, "service_unavailable"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				var apiErr *clerk.APIErrorResponse
				if !errors.As(err, &apiErr) {
					t.Fatalf("error %T %v: the SDK did not parse the errors body", err, err)
				}
				if apiErr.HTTPStatusCode != tc.status || len(apiErr.Errors) == 0 || apiErr.Errors[0].Code != tc.code || apiErr.TraceID == "" {
					t.Errorf("error %+v", apiErr)
				}
			})
		}
	})
}
