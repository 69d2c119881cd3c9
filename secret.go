package clerkjobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a Secret or a Token prints as.
const Redacted = "[REDACTED]"

// Secret is the secret answer of a token or refresh job (a token, or
// cookies), as the worker sent it to the requester's inbox and nowhere
// else. Printing it, with any fmt verb (%v, %+v, %#v, %s, %q, %x), as JSON
// or through log/slog, shows [REDACTED]: only Reveal and Token hand it out.
// The zero Secret holds nothing and prints as an empty string.
type Secret struct {
	// p is a pointer so that a Secret inside a value fmt cannot call
	// methods on (an unexported field) prints as an address, never bytes.
	p *[]byte
}

func newSecret(raw json.RawMessage) Secret {
	if len(raw) == 0 || string(raw) == "null" {
		return Secret{}
	}
	b := append([]byte(nil), raw...)
	return Secret{p: &b}
}

// IsZero reports whether s holds nothing.
func (s Secret) IsZero() bool { return s.p == nil }

// Reveal returns the secret as the JSON the worker sent: {"object":"token",
// "jwt":...} or {"object":"cookies","cookies":[...]}. Handle it as the
// secret it is.
func (s Secret) Reveal() json.RawMessage {
	if s.p == nil {
		return nil
	}
	return append(json.RawMessage(nil), *s.p...)
}

// ErrNotAToken is returned by Secret.Token for a secret that holds no
// token (a refresh job's cookies).
var ErrNotAToken = errors.New("the secret is not a session token")

// Token reads the secret as a session token.
func (s Secret) Token() (Token, error) {
	var t struct {
		JWT string `json:"jwt"`
	}
	// The decoding error is not wrapped: it could quote the secret.
	if s.p == nil || json.Unmarshal(*s.p, &t) != nil || t.JWT == "" {
		return Token{}, ErrNotAToken
	}
	return Token{jwt: &t.JWT}, nil
}

func (s Secret) String() string { return redacted(s.p == nil) }

// GoString keeps %#v from showing the secret.
func (s Secret) GoString() string { return "clerkjobs.Secret(" + redacted(s.p == nil) + ")" }

// Format prints [REDACTED] for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalJSON writes "[REDACTED]": a Result logged as JSON carries no
// secret. Use Reveal to forward the secret itself.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// LogValue keeps log/slog from showing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Token is a Clerk session token (a signed JWT). Like Secret, it prints as
// [REDACTED] whatever the verb; JWT returns it.
type Token struct {
	jwt *string
}

// JWT is the token itself, for the Authorization header of a request.
func (t Token) JWT() string {
	if t.jwt == nil {
		return ""
	}
	return *t.jwt
}

// IsZero reports whether t holds no token.
func (t Token) IsZero() bool { return t.jwt == nil }

func (t Token) String() string { return redacted(t.jwt == nil) }

// GoString keeps %#v from showing the token.
func (t Token) GoString() string { return "clerkjobs.Token(" + redacted(t.jwt == nil) + ")" }

// Format prints [REDACTED] for every verb.
func (t Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// MarshalJSON writes "[REDACTED]"; use JWT for the token itself.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// LogValue keeps log/slog from showing the token.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

func redacted(empty bool) string {
	if empty {
		return ""
	}
	return Redacted
}
