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
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
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
//   - a Clerk secret or restricted key (sk_live_…, sk_test_…, rk_…), and
//     what follows a line break inside it, as it is or escaped (\n, \x0a,
//     \u000a): a key pasted across two lines is one secret;
//   - the value of Clerk's session cookies (__session=…, __client=…);
//   - the credential after "Bearer" (16 characters or more, so that prose
//     such as "bearer token invalid" is left alone);
//   - the credentials after "Basic" (base64 of user:password; a word of
//     lower-case letters alone, or fewer than 8 characters, is prose,
//     "basic authentication", "Basic HTTP", and left, unless it decodes to
//     a user:password).
var shapes = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*` +
	`|[sr]k_(?:live|test)_[A-Za-z0-9]{4,}(?:(?:\\[rn]|\\x0[adAD]|\\u000[adAD]|[\r\n])+[A-Za-z0-9]+)*` +
	`|__(?:session|client)(?:_[A-Za-z0-9]+)?=[^;\s"]+` +
	`|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}` +
	`|(?i:basic)\s+[A-Za-z0-9+/]{4,}={0,2}`)

// Text returns s with every known secret, in each of the forms text from
// elsewhere may hold it (see forms), every head or tail of one cut by
// someone else (see hidePieces), and every secret-shaped substring
// replaced by Placeholder. Secrets shorter than 8 bytes are ignored.
func Text(s string, secrets ...string) string {
	if len(s) < minSecretLen || len(secrets) == 0 {
		return takeOut(s, nil, nil)
	}
	var all []string
	for _, sec := range secrets {
		if len(sec) >= minSecretLen && shortestForm(len(sec)) <= len(s) {
			all = append(all, forms(sec, len(s))...)
		}
	}
	slices.SortStableFunc(all, longestFirst)
	return takeOut(s, all, cuttable(secrets))
}

// Known is secrets made ready to be taken out of many texts (the fields of
// one answer): the forms each may take (see forms) are made once, not for
// every text as Text makes them.
type Known struct {
	forms  []string // longest first
	pieces []string // see cuttable
}

// Prepare makes secrets ready for Known.Text.
func Prepare(secrets ...string) Known {
	var k Known
	for _, sec := range secrets {
		if len(sec) >= minSecretLen {
			k.forms = append(k.forms, forms(sec, math.MaxInt)...)
		}
	}
	slices.SortStableFunc(k.forms, longestFirst)
	k.pieces = cuttable(secrets)
	return k
}

// Text is Text(s, secrets...) for the secrets k was prepared with: a form
// longer than s cannot be in it, as Text leaves it out.
func (k Known) Text(s string) string {
	if len(s) < minSecretLen {
		return takeOut(s, nil, nil)
	}
	fit, _ := slices.BinarySearchFunc(k.forms, len(s), func(f string, n int) int { return cmp.Compare(n, len(f)) })
	return takeOut(s, k.forms[fit:], k.pieces)
}

// Longest first: a form that holds another (a JSON-escaped token holds
// the token's first part) is replaced whole, not in pieces.
func longestFirst(a, b string) int { return len(b) - len(a) }

// cuttable are the texts whose heads and tails hidePieces looks for: each
// secret, and the JSON form of one that JSON writes otherwise.
func cuttable(secrets []string) []string {
	out := slices.Clone(secrets)
	for _, sec := range secrets {
		if unreserved(sec) {
			continue // JSON writes it as it is
		}
		if q := jsonString(sec, true); q != sec {
			out = append(out, q)
		}
	}
	return out
}

// takeOut replaces in s each of forms (longest first), the heads and tails
// of pieces, and every secret-shaped substring.
func takeOut(s string, forms, pieces []string) string {
	for _, f := range forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Placeholder)
		}
	}
	for _, p := range pieces {
		s = hidePieces(s, p)
	}
	if !mayHaveShape(s) {
		return s
	}
	return shapes.ReplaceAllStringFunc(s, hide)
}

// forms are the texts that show sec when an upstream quotes it. A secret
// sent in a JSON body is echoed as the body wrote it (encoding/json
// escapes <, > and &; " and \ always), and either form may come back
// escaped again: in a Go-quoted error (net/http's "malformed MIME header
// line: %q"), percent-encoded in a URL or a form (a proxy's page quoting
// the request), HTML-escaped, or inside base64 (a gateway logging the
// request as base64). A known secret is found in none of those as it is,
// nor is an opaque one (a refresh token) shaped like a secret. Forms
// shorter than minSecretLen, or longer than room (the text searched), are
// left out.
func forms(sec string, room int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if len(f) >= minSecretLen && len(f) <= room && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sent := []string{sec}
	if !unreserved(sec) { // else every escaping writes it as it is
		sent = append(sent, jsonString(sec, true), jsonString(sec, false))
	}
	for _, sent := range sent {
		if !unreserved(sent) {
			for _, f := range []string{jsonString(sent, false), goQuoted(sent), percentEncoded(sent),
				url.QueryEscape(sent), url.PathEscape(sent), html.EscapeString(sent)} {
				add(f)
			}
		}
		add(sent)
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			for _, f := range base64Cores(enc, sent, room) {
				add(f)
			}
		}
	}
	return out
}

// unreserved reports whether s holds only letters, digits and - . _ ~,
// which no escaping changes.
func unreserved(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~", r))
	})
}

// minPiece is the length from which a piece of a known secret is hidden.
const minPiece = 12

// hidePieces replaces in s every head or tail of sec of minPiece bytes or
// more: someone else (a proxy bounding its message, net/http quoting a
// broken status line up to a space, an upstream putting one half of what
// it quotes in a message and the other in a long message) may have cut the
// secret, and its part is no longer the whole secret Text looks for, nor
// shaped like one. Only a secret of twice that length or more is so cut.
func hidePieces(s, sec string) string {
	if len(sec) < 2*minPiece || len(s) < minPiece {
		return s
	}
	head, tail := sec[:minPiece], sec[len(sec)-minPiece:]
	for from := 0; from < len(s); {
		i := strings.Index(s[from:], head)
		if i < 0 {
			break
		}
		i += from
		n := minPiece
		for n < len(sec) && i+n < len(s) && s[i+n] == sec[n] {
			n++
		}
		s = s[:i] + Placeholder + s[i+n:]
		from = i + len(Placeholder)
	}
	for end := len(s); end >= minPiece; {
		i := strings.LastIndex(s[:end], tail)
		if i < 0 {
			break
		}
		j, n := i+minPiece, minPiece
		for n < len(sec) && i > 0 && s[i-1] == sec[len(sec)-n-1] {
			i, n = i-1, n+1
		}
		s = s[:i] + Placeholder + s[j:]
		end = i
	}
	return s
}

// shortestForm is the length of the shortest form of a secret of n bytes:
// escaping only lengthens it, and a base64 core may be a little shorter.
func shortestForm(n int) int {
	short := min(n, n/3*4)
	for lead := 1; lead < 3; lead++ {
		short = min(short, (lead+n)/3*4-4)
	}
	return short
}

// jsonString is s as encoding/json writes it in a string, without the
// quotes; escapeHTML as json.Marshal does, else as an Encoder told not to.
func jsonString(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if enc.Encode(s) != nil {
		return s
	}
	q := strings.TrimSuffix(b.String(), "\n")
	return q[1 : len(q)-1]
}

// goQuoted is s as strconv.Quote (fmt's %q) writes it, without the quotes.
func goQuoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// percentEncoded is s with every byte but the unreserved ones (RFC 3986:
// letters, digits, - . _ ~) written %XX, as JavaScript's
// encodeURIComponent and Python's quote(safe="") write most of them;
// url.QueryEscape and url.PathEscape each leave some (+ or a space as +).
func percentEncoded(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// base64Cores are the parts of enc's encoding of sec that are the same
// wherever sec sits in the bytes encoded: sec may start at any of three
// offsets of a 3-byte group, and only whole groups of its own bytes encode
// alike each time. A few bytes at either end of sec may stay, not the
// secret.
func base64Cores(enc *base64.Encoding, sec string, room int) []string {
	var out []string
	for lead := range 3 {
		from, to := 0, (lead+len(sec))/3*4
		if lead > 0 {
			from = 4
		}
		if to <= from || to-from > room {
			continue
		}
		b := enc.EncodeToString(append(make([]byte, lead), sec...))
		out = append(out, b[from:to])
	}
	return out
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

// headerName matches header names that may carry a secret.
var headerName = regexp.MustCompile(`(?i)(authorization|cookie|token|secret|password|passwd|api[-_]?key|session[-_]?key|credential|jwt)`)

// HeaderName reports whether a header named name may carry a secret
// (Authorization, Cookie, Refresh-Token, X-Api-Key): its value is not
// shown, even if a dead letter carries one where none should be. A
// refresh token is shaped like nothing: only the name tells. No header
// the worker writes is named so.
func HeaderName(name string) bool { return headerName.MatchString(name) }

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
