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
type Secret struct{ sealed[[]byte] }

// sealed is what Secret and Token share: a value that prints as
// [REDACTED] (as "" when there is none) whatever the verb, as JSON or
// through log/slog.
type sealed[T any] struct {
	// p is a pointer so that a value fmt cannot call methods on (in an
	// unexported field) prints as an address, never the secret.
	p *T
}

// IsZero reports whether it holds nothing.
func (s sealed[T]) IsZero() bool { return s.p == nil }

func (s sealed[T]) String() string {
	if s.p == nil {
		return ""
	}
	return Redacted
}

// Format prints [REDACTED] for every verb.
func (s sealed[T]) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalJSON writes "[REDACTED]": a Result logged as JSON carries no
// secret. Use Secret.Reveal or Token.JWT for the secret itself.
func (s sealed[T]) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// LogValue keeps log/slog from showing the secret.
func (s sealed[T]) LogValue() slog.Value { return slog.StringValue(s.String()) }

func newSecret(raw json.RawMessage) Secret {
	if len(raw) == 0 || string(raw) == "null" {
		return Secret{}
	}
	b := append([]byte(nil), raw...)
	return Secret{sealed[[]byte]{&b}}
}

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
	return Token{sealed[string]{&t.JWT}}, nil
}

// GoString keeps %#v from showing the secret.
func (s Secret) GoString() string { return "clerkjobs.Secret(" + s.String() + ")" }

// Token is a Clerk session token (a signed JWT). Like Secret, it prints as
// [REDACTED] whatever the verb; JWT returns it.
type Token struct{ sealed[string] }

// JWT is the token itself, for the Authorization header of a request.
func (t Token) JWT() string {
	if t.p == nil {
		return ""
	}
	return *t.p
}

// GoString keeps %#v from showing the token.
func (t Token) GoString() string { return "clerkjobs.Token(" + t.String() + ")" }
