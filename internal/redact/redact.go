// Package redact takes secrets out of text that came from elsewhere before
// it is stored, logged or shown.
//
// Clerk, a proxy or a load balancer in front of it may echo request data in
// an error body: the Authorization header, a refresh job's tokens. Text like
// that is untrusted. Text replaces every secret the caller holds (the Clerk
// key, a job's own secret fields) and anything shaped like one (a JWT, a Clerk
// secret key, a bearer token) with Placeholder.
package redact

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Placeholder replaces a secret.
const Placeholder = "[REDACTED]"

// minSecretLen is the length below which a known secret is not searched
// for: a one-letter "secret" would blank out every word holding the letter.
// Real keys and tokens are far longer.
const minSecretLen = 8

// shapes match secrets by their look:
//   - a JWT (base64url JSON header "eyJ…", payload, signature);
//   - a Clerk secret or restricted key (sk_live_…, sk_test_…, rk_…);
//   - the value of Clerk's session cookies (__session=…, __client=…);
//   - the credential after "Bearer" (16 characters or more, so that prose
//     such as "bearer token invalid" is left alone);
//   - the credentials after "Basic" (base64 of user:password; a word of
//     lower-case letters alone, or fewer than 8 characters, is prose,
//     "basic authentication", "Basic HTTP", and left, unless it decodes to
//     a user:password).
var shapes = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*` +
	`|[sr]k_(?:live|test)_[A-Za-z0-9]{4,}` +
	`|__(?:session|client)(?:_[A-Za-z0-9]+)?=[^;\s"]+` +
	`|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}` +
	`|(?i:basic)\s+[A-Za-z0-9+/]{4,}={0,2}`)

// Text returns s with every known secret and every secret-shaped substring
// replaced by Placeholder. Secrets shorter than 8 bytes are ignored.
func Text(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecretLen && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Placeholder)
		}
	}
	if !mayHaveShape(s) {
		return s
	}
	return shapes.ReplaceAllStringFunc(s, hide)
}

// hide is what Text puts for m, a match of shapes: m itself when it is
// prose after all ("basic authentication").
func hide(m string) string {
	// Keep the scheme word or the cookie's name, so that the reader still
	// sees what it was.
	if strings.HasPrefix(m, "__") {
		name, _, _ := strings.Cut(m, "=")
		return name + "=" + Placeholder
	}
	if i := strings.IndexAny(m, " \t\r\n"); i > 0 && !strings.HasPrefix(m, "eyJ") && !strings.HasPrefix(m[1:], "k_") {
		if cred := strings.TrimLeft(m[i:], " \t\r\n"); containsFold(m[:i], "basic") && (isWord(cred) || len(cred) < 8) && !isUserPass(cred) {
			return m
		}
		return m[:i+1] + Placeholder
	}
	return Placeholder
}

// isWord reports whether s reads as a word ("authentication",
// "Configuration"): letters, lower-case after the first. Base64 mixes
// cases and digits.
func isWord(s string) bool {
	return len(s) > 0 && ('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') && !strings.ContainsFunc(s[1:], func(r rune) bool { return r < 'a' || r > 'z' })
}

// isUserPass reports whether s is base64 of a basic credential, which
// holds a colon (RFC 7617): a password may encode to lower-case letters
// alone ("nick:2j9rs9m" is bmljazoyajlyczlt) and a short one to fewer than
// 8 characters, which the word and length tests alone would leave as prose.
func isUserPass(s string) bool {
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	return err == nil && bytes.IndexByte(b, ':') >= 0
}

// Looks reports whether s is, or holds, something shaped like a secret.
func Looks(s string) bool {
	if !mayHaveShape(s) {
		return false
	}
	for _, m := range shapes.FindAllString(s, -1) {
		if hide(m) != m {
			return true
		}
	}
	return false
}

// mayHaveShape is a cheap pre-check: every shape holds one of these. The
// bearer and basic schemes match in any case, as the shapes do ("BeArEr"
// too).
func mayHaveShape(s string) bool {
	return strings.Contains(s, "eyJ") || strings.Contains(s, "sk_") || strings.Contains(s, "rk_") || strings.Contains(s, "__") ||
		containsFold(s, "bearer") || containsFold(s, "basic")
}

// containsFold reports whether s holds sub, an ASCII lower-case word, in
// any case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if (s[i]|0x20) == sub[0] && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// Values are the texts a decoded JSON value holds, to pass to Text as
// secrets: a string itself, and every string (and other scalar, as
// fmt.Sprint writes it) in an array or object, at any depth. A request
// header's values come as a list ({"Cookie": ["…"]}): its fmt.Sprint,
// "[…]", is a text no echo of the request holds, so each value counts.
func Values(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, Values(e)...)
		}
		return out
	case []string:
		return x
	case map[string]any:
		return Values(slices.Collect(maps.Values(x)))
	}
	return []string{fmt.Sprint(v)}
}
