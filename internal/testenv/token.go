package testenv

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// TokenClaims are the claims of an emulator's session token that tests
// look at.
type TokenClaims struct {
	Iat, Exp int64
	Role     string // the "hasura" template's
}

// JWTClaims decodes a JWT's claims without checking its signature: the
// emulator signed it, and only what it says matters to a test. Its errors
// never quote the token.
func JWTClaims(t testing.TB, jwt string) TokenClaims {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c TokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	return c
}

// DecodeJSON decodes b into v, or fails the test saying why but not what
// b holds: an answer may carry a session token.
func DecodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %d bytes of JSON: %v", len(b), err)
	}
}
