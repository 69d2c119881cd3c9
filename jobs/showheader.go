package jobs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/clerkjobs/clerkjobs/internal/redact"
)

// ShowHeader is the one judgement of whether a dead letter's header value
// may be shown to a person as it is stored: every view of dead letters
// (the console's entry page, `publish dlq show` as text and as JSON) asks
// it, so that they never disagree. It lives here, beside Redact, because
// it is the dead-letter record's meaning, not a view's: the same rules
// decide what a letter may hold.
//
// secret reports that value may hold a secret: a view must not show it as
// it is. shown is then value with every secret found replaced in place
// (Redact's [REDACTED], the password of a URL as xxxxx), for a view that
// shows what is left, or "" when nothing of it may be shown: a view hides
// it whole. When secret is false, shown is value.
//
// Hidden whole are:
//   - a value under a header named for a secret (redact.HeaderName:
//     Refresh-Token, Cookie), its name judged without its invisible
//     characters: a refresh token is shaped like nothing, only the name
//     tells;
//   - text that is not JSON naming a refresh job's secret field as a JSON
//     member or a form's name (JSON cut short, a form, a URL's fragment):
//     the token beside it is shaped like nothing. The worker's words naming
//     a field (Dlq-Error's "/refresh_token: unknown field") are not that;
//   - a value in which a reader would still find a secret once redacted in
//     place: with its escapes undone (a JWT's dots written \u002e in JSON
//     cut short, a URL's @ written %40) or its control and invisible
//     characters dropped (a zero-width space inside a key);
//   - a value longer than MaxShownHeader, not judged at all (see there).
func ShowHeader(name, value string) (shown string, secret bool) {
	if len(value) > MaxShownHeader {
		return "", true
	}
	if redact.HeaderName(visible(name)) {
		return "", true
	}
	shown, ok := redactHeaderValue(value)
	switch {
	case !ok || headerHoldsSecret(shown):
		return "", true
	case shown != value:
		return shown, true
	}
	return value, false
}

// MaxShownHeader is the longest header value, in bytes, that ShowHeader
// judges: a longer one is withheld whole, unread. Judging is linear in the
// value's length (JSON decoding, each regular expression's pass over each
// reading), and a value a little under NATS's max_payload (1 MiB) cost a
// view 0.3 s to over a second, on every page view of its letter. The worker
// writes no header near it: each Dlq-* header at most 1024 bytes,
// Dlq-History 4096, and of the trace headers it carries on from the job
// (bounded by the W3C limits OpenTelemetry parses them by), baggage 8192
// and tracestate 16447 (32 members of a 256-byte key and value). Only a
// letter written some other way holds a longer one. A prefix is never
// shown instead: a cut could split a secret so that it no longer looks
// like one.
const MaxShownHeader = 32 << 10

// HiddenHeader is how a view shows a header value that ShowHeader hides
// whole, the same in every view: withheld unread when it is longer than
// MaxShownHeader, hidden as one that may hold a secret otherwise; its
// length only, never a part of it.
func HiddenHeader(value string) string {
	if len(value) > MaxShownHeader {
		return fmt.Sprintf("[withheld: %d bytes, longer than the %d a view reads]", len(value), MaxShownHeader)
	}
	return fmt.Sprintf("[hidden: may hold a secret, %d bytes]", len(value))
}

// redactHeaderValue is v with every secret it finds replaced in place: a
// JSON value's strings judged as Redact judges a payload's (decoded, so
// that an escape hides nothing), then every secret shape and URL password
// in the text. ok is false when Redact dropped the value whole.
func redactHeaderValue(v string) (out string, ok bool) {
	out = v
	if json.Valid([]byte(v)) {
		b, redacted := Redact(OpGet, []byte(v)) // a value without secrets comes back as it is
		if b == nil && len(redacted) > 0 {
			return "", false
		}
		out = string(b)
	}
	return redact.All(out), true
}

// headerHoldsSecret reports whether a reader would find a secret in s, a
// header value redacted in place: in each of its texts (a JSON value's
// strings and member names, decoded; other text as it is), as it stands,
// once unescaped, and without its invisible characters.
func headerHoldsSecret(s string) bool {
	texts := []string{s}
	if json.Valid([]byte(s)) {
		// Its strings, not its text: a member named refresh_token whose
		// value Redact replaced is no longer a secret, though the text
		// still names the field as a member.
		if doc, err := parseMembers([]byte(s)); err == nil {
			texts = textsIn(doc, nil)
		}
	}
	for _, t := range texts {
		u := unescapeNames(t)
		readings := []string{t, u, visible(t), visible(u)}
		// Each distinct reading once: most text has no escape nor an
		// invisible character, and a hostile value of a megabyte costs a
		// page view every regular expression's pass over it.
		slices.Sort(readings)
		for _, r := range slices.Compact(readings) {
			if secretShaped(r) || quotesRefreshSecret(r) {
				return true
			}
		}
	}
	return false
}

// textsIn appends to out every string v holds, member names included.
func textsIn(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		return append(out, x)
	case []any:
		for _, e := range x {
			out = textsIn(e, out)
		}
	case object:
		for _, m := range x {
			out = textsIn(m.value, append(out, m.name))
		}
	}
	return out
}

// visible is s without control characters and invisible format ones
// (U+200B, U+202E): a terminal or a page shows nothing for them, and a
// reader who copies a key split by one only has to delete it.
func visible(s string) string {
	if !strings.ContainsFunc(s, invisible) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, s)
}

func invisible(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }
