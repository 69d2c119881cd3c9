package jobs

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// Headers of a dead letter, and of a replayed job. Values are single-line
// strings; times are RFC 3339 with nanoseconds in UTC.
const (
	HeaderSubject      = "Dlq-Original-Subject" // the job's subject
	HeaderStreamSeq    = "Dlq-Stream-Seq"       // the job's sequence in the jobs stream
	HeaderJobID        = "Dlq-Job-Id"
	HeaderOp           = "Dlq-Op"
	HeaderClass        = "Dlq-Error-Class" // invalid, permanent, exhausted, max_deliveries
	HeaderError        = "Dlq-Error"       // one line for a person
	HeaderHTTPStatus   = "Dlq-Http-Status"
	HeaderClerkCode    = "Dlq-Clerk-Code"
	HeaderClerkMessage = "Dlq-Clerk-Message"
	HeaderTraceID      = "Dlq-Trace-Id"
	HeaderField        = "Dlq-Field"         // invalid only: JSON pointer of the bad field
	HeaderAttempts     = "Dlq-Attempts"      // Clerk calls made, over the deliveries this worker saw
	HeaderDeliveries   = "Dlq-Deliveries"    // JetStream deliveries
	HeaderFirstFailure = "Dlq-First-Failure" // time
	HeaderLastFailure  = "Dlq-Last-Failure"  // time
	HeaderWorker       = "Dlq-Worker"        // instance that dead-lettered it
	HeaderHistory      = "Dlq-History"       // JSON array of the last failures
	HeaderRedacted     = "Dlq-Redacted"      // comma-separated fields replaced by "[REDACTED]"; body if the whole body was dropped; subject if the subject was cleared (the letter is then not replayable); a member named so is listed quoted; cut past 1024 bytes in its names, keeping those words
	// HeaderReplays counts how often a job was replayed from the dead-letter
	// queue. publish dlq replay sets it on the job it republishes; the
	// worker copies it into a new dead letter.
	HeaderReplays = "Replay-Count"
	// HeaderReplayOf is the dead-letter stream sequence a replayed job came
	// from.
	HeaderReplayOf = "Replay-Of"
	// HeaderParentJob is set on the dead letter of one session a revoke_all
	// job could not revoke: the revoke_all's job id (Dlq-Stream-Seq is then
	// the revoke_all's sequence).
	HeaderParentJob = "Dlq-Parent-Job"
)

// Failure is one failed attempt in a dead letter's history.
type Failure struct {
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
	Status  int       `json:"status,omitempty"`
	Code    string    `json:"code,omitempty"`
	TraceID string    `json:"trace_id,omitempty"`
}

// MaxHistory is how many failures a dead letter keeps.
const MaxHistory = 10

// DeadLetter is what the dead-letter stream records about a job that could
// not succeed. The message body is the job's original payload, byte for
// byte, except the secret fields of refresh jobs (see Redacted).
type DeadLetter struct {
	Subject      string
	StreamSeq    uint64
	JobID        string
	Op           Op
	Error        ErrorInfo
	Attempts     int
	Deliveries   int
	FirstFailure time.Time
	LastFailure  time.Time
	Worker       string
	History      []Failure
	Redacted     []string
	Replays      int
}

// MapHeaderTexts is d with f applied to each text its headers gave (all
// but the redacted names, a list), told the header it came from: how a view
// that shows each header by its own judgement (ShowHeader) shows what was
// read from it, never more than the header's own line.
func (d DeadLetter) MapHeaderTexts(f func(header, text string) string) DeadLetter {
	d.Subject, d.JobID = f(HeaderSubject, d.Subject), f(HeaderJobID, d.JobID)
	d.Op, d.Worker = Op(f(HeaderOp, string(d.Op))), f(HeaderWorker, d.Worker)
	e := &d.Error
	e.Class = ErrorClass(f(HeaderClass, string(e.Class)))
	e.Message, e.ClerkCode = f(HeaderError, e.Message), f(HeaderClerkCode, e.ClerkCode)
	e.ClerkMessage, e.TraceID, e.Field = f(HeaderClerkMessage, e.ClerkMessage), f(HeaderTraceID, e.TraceID), f(HeaderField, e.Field)
	d.History = slices.Clone(d.History)
	for i := range d.History {
		h := &d.History[i]
		h.Error, h.Code, h.TraceID = f(HeaderHistory, h.Error), f(HeaderHistory, h.Code), f(HeaderHistory, h.TraceID)
	}
	return d
}

// maxHeaderValue bounds each header value of a dead letter.
const maxHeaderValue = 1024

// Header encodes d as message headers.
func (d DeadLetter) Header() nats.Header {
	h := nats.Header{}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, text.Line(v, maxHeaderValue)) // one line and bounded, whatever an error message holds
		}
	}
	set(HeaderSubject, d.Subject)
	set(HeaderStreamSeq, strconv.FormatUint(d.StreamSeq, 10))
	set(HeaderJobID, d.JobID)
	set(HeaderOp, string(d.Op))
	set(HeaderClass, string(d.Error.Class))
	set(HeaderError, d.Error.Message)
	if d.Error.HTTPStatus != 0 {
		set(HeaderHTTPStatus, strconv.Itoa(d.Error.HTTPStatus))
	}
	set(HeaderClerkCode, d.Error.ClerkCode)
	set(HeaderClerkMessage, d.Error.ClerkMessage)
	set(HeaderTraceID, d.Error.TraceID)
	set(HeaderField, d.Error.Field)
	set(HeaderAttempts, strconv.Itoa(d.Attempts))
	set(HeaderDeliveries, strconv.Itoa(d.Deliveries))
	set(HeaderFirstFailure, formatTime(d.FirstFailure))
	set(HeaderLastFailure, formatTime(d.LastFailure))
	set(HeaderWorker, d.Worker)
	if v := historyHeader(d.History); v != "" {
		h.Set(HeaderHistory, v) // JSON escapes line breaks: one line already
	}
	set(HeaderRedacted, redactedList(d.Redacted))
	if d.Replays > 0 {
		set(HeaderReplays, strconv.Itoa(d.Replays))
	}
	return h
}

// redactedList is Dlq-Redacted's value, bounded as every header: a list
// too long is cut in its names, and the header's own words that end it
// (subject, which the worker adds after the sorted names; body) are kept
// whole after the cut, so that the letter still says its subject or body
// is not the job's.
func redactedList(names []string) string {
	v := strings.Join(names, ",")
	if len(v) <= maxHeaderValue {
		return v
	}
	n := len(names)
	for n > 0 && (names[n-1] == "body" || names[n-1] == "subject") {
		n--
	}
	if n == len(names) || n == 0 {
		return v
	}
	tail := "," + strings.Join(names[n:], ",")
	return text.Line(strings.Join(names[:n], ","), maxHeaderValue-len(tail)) + tail
}

// ErrNotDeadLetter is returned by ParseDeadLetter for a message that lacks
// the headers every dead letter has.
var ErrNotDeadLetter = errors.New("not a dead letter: headers missing")

// MaxReplays bounds a replay count: a count above it, like one that is not
// a count, is read as 0.
const MaxReplays = 1 << 20

// ReplayCount reads the Replay-Count header of a job. Any publisher may set
// it: a value that is not a count from 0 to MaxReplays is taken as 0, so
// that a forged one cannot overflow the count of the next replay.
func ReplayCount(h nats.Header) int {
	n, err := strconv.Atoi(h.Get(HeaderReplays))
	if err != nil || n < 0 || n > MaxReplays {
		return 0
	}
	return n
}

// ParseDeadLetter reads the headers of a dead-letter message. Unknown or
// malformed optional headers are reported, never guessed.
func ParseDeadLetter(h nats.Header) (DeadLetter, error) {
	var d DeadLetter
	if h.Get(HeaderSubject) == "" || h.Get(HeaderClass) == "" {
		return d, ErrNotDeadLetter
	}
	d.Subject = h.Get(HeaderSubject)
	d.JobID = h.Get(HeaderJobID)
	d.Op = cmp.Or(Op(h.Get(HeaderOp)), OpUnknown)
	d.Error = ErrorInfo{
		Class:        ErrorClass(h.Get(HeaderClass)),
		Message:      h.Get(HeaderError),
		ClerkCode:    h.Get(HeaderClerkCode),
		ClerkMessage: h.Get(HeaderClerkMessage),
		TraceID:      h.Get(HeaderTraceID),
		Field:        h.Get(HeaderField),
	}
	var errs []error
	num := func(k string, dst *int) {
		if v := h.Get(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("header %s: %s is not a count", k, shown(v)))
				return
			}
			*dst = n
		}
	}
	if v := h.Get(HeaderStreamSeq); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %s is not a sequence", HeaderStreamSeq, shown(v)))
		}
		d.StreamSeq = n
	}
	num(HeaderHTTPStatus, &d.Error.HTTPStatus)
	num(HeaderAttempts, &d.Attempts)
	num(HeaderDeliveries, &d.Deliveries)
	num(HeaderReplays, &d.Replays)
	tm := func(k string, dst *time.Time) {
		if v := h.Get(k); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("header %s: %s is not an RFC 3339 time", k, shown(v)))
				return
			}
			*dst = t
		}
	}
	tm(HeaderFirstFailure, &d.FirstFailure)
	tm(HeaderLastFailure, &d.LastFailure)
	d.Worker = h.Get(HeaderWorker)
	if v := h.Get(HeaderHistory); v != "" {
		if err := json.Unmarshal([]byte(v), &d.History); err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", HeaderHistory, err))
		}
	}
	if v := h.Get(HeaderRedacted); v != "" {
		d.Redacted = strings.Split(v, ",")
	}
	if !slices.Contains(ErrorClasses(), d.Error.Class) {
		errs = append(errs, fmt.Errorf("header %s: unknown class %s", HeaderClass, shown(string(d.Error.Class))))
	}
	return d, errors.Join(errs...)
}

// shown is a malformed header value as an error names it (quoted): whoever
// wrote the dead letter chose its headers.
func shown(v string) string { return quoted(v, 40, "a value of %d bytes") }

// quoted is a value a message brought, as an error names it: quoted when
// it is at most max bytes and not shaped like a secret (it may be anything,
// a pasted token or a URL with its password included), else described by
// its length (described takes it as %d). These errors reach terminals,
// pages and logs.
func quoted(v string, max int, described string) string {
	if len(v) > max || secretShaped(v) {
		return fmt.Sprintf(described, len(v))
	}
	return strconv.Quote(v)
}

// Replayable reports whether republishing the stored payload can work: a
// dead letter whose secrets were redacted cannot be replayed.
func (d DeadLetter) Replayable() bool { return len(d.Redacted) == 0 }

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Bounds of the Dlq-History header: each failure's text is cut to
// maxFailureText bytes, and the oldest failures are dropped until the JSON
// fits in maxHistoryBytes (the newest always fits).
const (
	maxFailureText  = 200
	maxHistoryBytes = 4096
)

// historyHeader encodes the last MaxHistory failures as a JSON array that
// stays parseable: cutting the encoded JSON to a length would not.
func historyHeader(hist []Failure) string {
	if len(hist) > MaxHistory {
		hist = hist[len(hist)-MaxHistory:]
	}
	short := make([]Failure, len(hist))
	for i, f := range hist {
		// JSON escapes line breaks: the texts keep theirs.
		f.Error = text.Truncate(f.Error, maxFailureText)
		f.Code = text.Truncate(f.Code, maxFailureText)
		f.TraceID = text.Truncate(f.TraceID, maxFailureText)
		short[i] = f
	}
	for ; len(short) > 0; short = short[1:] {
		b, err := json.Marshal(short)
		if err != nil {
			return "" // a time outside years 0-9999
		}
		if len(b) <= maxHistoryBytes {
			return string(b)
		}
	}
	return ""
}

// RedactedValue replaces secret values in a dead letter's payload.
const RedactedValue = redact.Placeholder

// Redact returns the payload to store in a dead letter of op, and what it
// redacted. A payload without secrets is kept byte for byte.
//
// A JSON object keeps its shape: the values of secret fields (a refresh
// job's tokens and headers, on whatever subject they arrive) and every
// string shaped like a secret wherever it sits (a JWT pasted into
// session_id, a misspelt "refreshToken" holding a token, a member name) are
// replaced by RedactedValue, and redacted names the top-level fields
// concerned, as listed shows them (RedactedValue for a name that is itself
// secret-shaped). Every
// value is judged, the earlier values of a member name given twice too
// (which a map would never show): the body is read keeping every member,
// and a redacted one is written back so, in order. Other text keeps its
// bytes but for secret-shaped runs, and redacted is ["body"]. A refresh job
// that is not a JSON object is dropped whole (redacted ["body"]): it may
// hold a token no shape reveals. A dead letter with anything redacted
// cannot be replayed.
func Redact(o Op, payload []byte) (out []byte, redacted []string) {
	var doc any
	valid := json.Valid(payload) // also bounds the nesting parseMembers reads
	if valid {
		var err error
		if doc, err = parseMembers(payload); err != nil {
			valid = false
		}
	}
	obj, isObject := doc.(object)
	if !isObject {
		switch {
		case o == OpRefresh, !valid && namesRefreshSecret(payload):
			// Not JSON, or not an object: a refresh job's, or one that
			// names a refresh job's secret field (a refresh job cut short
			// or with a trailing comma, sent on another subject), may hold
			// a token no shape reveals.
			return nil, []string{"body"}
		case valid && (scrubSecrets(&doc) || secretShaped(string(payload))):
			// JSON, not an object: its strings are judged decoded, as
			// below.
			return encodeRedacted(doc), []string{"body"}
		case !valid:
			clean := redact.All(string(payload))
			if secretShaped(unescapeNames(clean)) {
				// One written with escapes (JSON cut short from an
				// encoder that writes \/, a form's %XX) is not replaced
				// in place: a reader undoes them, so the body goes whole.
				return nil, []string{"body"}
			}
			if clean != string(payload) {
				return []byte(clean), []string{"body"}
			}
		}
		return payload, nil
	}
	// A refresh job's own secrets, to be hidden wherever else they show: a
	// token pasted into request_origin (?refresh=…) is shaped like nothing.
	var own []string
	if o == OpRefresh {
		for _, m := range obj {
			switch h, isObject := m.value.(object); {
			case m.name == "request_headers" && isObject:
				for _, hm := range h {
					if !plainHeader(hm.name) {
						own = append(own, stringsIn(hm.value)...)
					}
				}
			case isSecretField(o, m.name):
				own = append(own, stringsIn(m.value)...)
			}
		}
	}
	// listedOnce keeps the names listed: a body of many members (a
	// megabyte holds tens of thousands) was quadratic to list.
	listedOnce := map[string]bool{}
	for i := range obj {
		m := &obj[i]
		hit := secretName(m.name)
		if hit {
			m.name = RedactedValue
		}
		switch {
		case isSecretField(o, m.name):
			m.value, hit = RedactedValue, true
		case o == OpRefresh && !plainRefreshValue(m.name, m.value, own):
			m.value, hit = RedactedValue, true
		case scrubSecrets(&m.value):
			hit = true
		}
		if name := listed(m.name); hit && !listedOnce[name] {
			listedOnce[name] = true
			redacted = append(redacted, name)
		}
	}
	if len(redacted) == 0 {
		return payload, nil
	}
	slices.Sort(redacted)
	return encodeRedacted(obj), redacted
}

// plainRefreshValue reports whether v, the value of a refresh job's
// harmless field name, may be kept in its dead letter: it holds none of the
// job's own secrets (own, in any of the forms redact.Text finds), and a
// session_id is a session id. A refresh token swapped with the session id
// by its publisher is opaque, shaped like nothing, and sat in session_id,
// which was kept as harmless.
func plainRefreshValue(name string, v any, own []string) bool {
	s, ok := v.(string)
	if !ok {
		return true
	}
	if name == "session_id" && !sessionIDShape.MatchString(s) {
		return false
	}
	return redact.Text(s, own...) == s
}

// plainHeader reports whether a request header named name carries what a
// browser sends every site, never a credential: its value is not counted
// among a refresh job's own secrets. Origin and X-Forwarded-For repeat
// request_origin and request_originating_ip, and a Referer starts with the
// origin, so counted, they hid both fields in nearly every dead letter.
// The header itself stays redacted with the rest of request_headers.
func plainHeader(name string) bool {
	switch name = strings.ToLower(name); name {
	case "origin", "referer", "user-agent", "x-forwarded-for", "x-real-ip", "x-forwarded-host", "x-forwarded-proto",
		"host", "accept", "accept-language", "accept-encoding", "content-type", "cache-control", "pragma", "connection":
		return true
	}
	return strings.HasPrefix(name, "sec-") // Sec-Fetch-*, Sec-CH-UA*: set by the browser alone
}

// sessionIDShape is the pattern schemas/common.json gives a session id.
var sessionIDShape = regexp.MustCompile(`^sess_[A-Za-z0-9]+$`)

// stringsIn are the string values v holds, at any depth (a header's
// values, not its name).
func stringsIn(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsIn(e)...)
		}
		return out
	case object:
		var out []string
		for _, m := range x {
			out = append(out, stringsIn(m.value)...)
		}
		return out
	}
	return nil
}

// listed is how a redacted member's name stands in Dlq-Redacted, a list
// split at commas: never empty (an empty list is a replayable letter), one
// name however it is spelt, and never one of the header's own words or
// forms (body: the body dropped; subject: the subject cleared; a name
// not shown; a space NATS drops from the value's start). A plain name
// (letters, digits, _ - .) is listed as it is, any other quoted; one too
// long, secret-shaped or holding a comma, which quoting would not keep
// whole, by its length.
func listed(name string) string {
	plain := func(r rune) bool {
		return r < utf8.RuneSelf && (r == '_' || r == '-' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r))
	}
	switch {
	case len(name) > 64 || secretShaped(name) || strings.Contains(name, ","):
		return fmt.Sprintf("(a name of %d characters)", len(name))
	case name == RedactedValue, // a secret-shaped name, as the payload now shows it
		name != "" && name != "body" && name != "subject" && !strings.ContainsFunc(name, func(r rune) bool { return !plain(r) }):
		return name
	}
	return strconv.Quote(name)
}

// looksSecret judges a string from a payload as its readers see it:
// decoded (a JWT whose dots are written \u002e looks like one only once
// decoded, and that is how a decoder, a page or a replay sees it), and as
// it is written (a cookie value in quotes, __session="…", is one only
// with its escapes).
func looksSecret(s string) bool {
	if secretShaped(s) {
		return true
	}
	if !strings.ContainsAny(s, "\"\\") {
		return false
	}
	b, err := json.Marshal(s)
	return err == nil && redact.Looks(string(b))
}

// secretShaped reports whether s, text a publisher chose, is or holds a
// secret by its shape: a Clerk key, a JWT or another shape redact.Looks
// knows, or a URL with a password or token in it
// (scheme://user:password@host: a NATS server's URL pasted into a field).
func secretShaped(s string) bool { return redact.Looks(s) || redact.HasURLCredentials(s) }

// secretName reports whether an object member's name is itself secret:
// shaped like one, or a whole job holding a refresh job's secret (a body
// parser that read JSON as a form, or a form as JSON, makes the body one
// member's name, {"{\"refresh_token\":\"…\"}":""}).
func secretName(name string) bool { return looksSecret(name) || quotesRefreshSecret(name) }

// scrubSecrets replaces every secret-shaped string (and object member
// name) within *v by RedactedValue, and the value of every member named
// as a refresh job's secret field, and reports whether it replaced
// anything.
func scrubSecrets(v *any) bool {
	switch x := (*v).(type) {
	case string:
		if looksSecret(x) || quotesRefreshSecret(x) {
			*v = RedactedValue
			return true
		}
	case []any:
		hit := false
		for i := range x {
			if i > 0 {
				if name, ok := x[i-1].(string); ok && isSecretField(OpUnknown, name) {
					// A pair as a list, [name, value]: a form read into
					// entries ([["refresh_token","<token>"]], as
					// URLSearchParams or Object.entries give it). Its
					// value is opaque, shaped like nothing, as a member's.
					x[i], hit = RedactedValue, true
					continue
				}
			}
			hit = scrubSecrets(&x[i]) || hit
		}
		return hit
	case object:
		hit := false
		for i := range x {
			if secretName(x[i].name) {
				x[i].name, hit = RedactedValue, true
			}
			if isSecretField(OpUnknown, x[i].name) {
				// A refresh job's secret field at any depth (a job
				// wrapped in another object, or in an array): its value
				// is opaque, shaped like nothing.
				x[i].value, hit = RedactedValue, true
				continue
			}
			hit = scrubSecrets(&x[i].value) || hit
		}
		return hit
	}
	return false
}

// refreshSecretName matches the name of a refresh job's secret fields as
// publishers spell them: expired_token, refresh_token, request_headers, in
// any case, with _, -, ., whitespace or nothing between the words
// (refreshToken, "Refresh Token"), with whitespace around ("refresh_token "),
// and once unescaped (refresh\u005ftoken, refresh%5Ftoken): see
// unescapeNames.
var refreshSecretName = regexp.MustCompile(`^\s*(?i:` + refreshSecretWords + `)\s*$`)

// refreshSecretWords is the three names, as refreshSecretName spells them.
const refreshSecretWords = `(?:expired|refresh)[\s_.-]{0,3}token|request[\s_.-]{0,3}headers`

// refreshSecretIn finds those names in text, once unescaped: in a string,
// one quoted and followed by a colon (a JSON member: a job encoded twice,
// a JSON body sent as a JSON string) or a form's name (at the start or
// after &, ?, #, ; or a space, followed by =: a form body sent as a JSON
// string, a URL's fragment as OAuth's implicit flow writes it); any, in a
// body that is not JSON (refresh_token=... too). A job that can run never
// holds one: its job id has no quote nor =, and a job id like
// rotate-refresh-token-42 or refresh-token:sess_1 is neither; its reply_to
// may hold a quote and = (a NATS subject), but _INBOX."refreshToken" and
// _INBOX.refresh_token=1 are neither.
var (
	refreshSecretQuoted = regexp.MustCompile(`(?i)"\s*(?:` + refreshSecretWords + `)\s*\\*"\s*:|(?:^|[&?;#\s])(?:` + refreshSecretWords + `)\s*=`)
	refreshSecretAny    = regexp.MustCompile(`(?i)` + refreshSecretWords)
)

// nameEscape is one escape a reader undoes in text naming a field: JSON's
// \uXXXX and \/ (behind any number of backslashes: a body encoded more
// than once) and a form's %XX.
var nameEscape = regexp.MustCompile(`\\+u[0-9A-Fa-f]{4}|\\+/|%[0-9A-Fa-f]{2}`)

// unescapeNames undoes the escapes a reader undoes (nameEscape) in s, as
// many times as they were applied (a few: each pass must change s), so
// that refresh\u005ftoken and refresh%5Ftoken read refresh_token. Its
// output is for matching only.
func unescapeNames(s string) string {
	for range 4 {
		if !strings.ContainsAny(s, `\%`) {
			return s
		}
		u := nameEscape.ReplaceAllStringFunc(s, func(e string) string {
			var r uint64
			if e[len(e)-1] == '/' {
				return "/" // JSON's \/ (nats:\/\/alice:…@host, as PHP writes it)
			}
			if e[0] == '%' {
				r, _ = strconv.ParseUint(e[1:], 16, 8)
			} else {
				r, _ = strconv.ParseUint(e[len(e)-4:], 16, 16)
			}
			if r == 0 || r >= utf8.RuneSelf {
				return e // a name's letters are ASCII: leave the rest
			}
			return string(rune(r))
		})
		if u == s {
			return s
		}
		s = u
	}
	return s
}

// namesRefreshSecret reports whether payload, which is not JSON, names one
// of a refresh job's secret fields, once unescaped.
func namesRefreshSecret(payload []byte) bool {
	return refreshSecretAny.Match(payload) || refreshSecretAny.MatchString(unescapeNames(string(payload)))
}

// quotesRefreshSecret reports whether s, a string a payload holds, names
// one of a refresh job's secret fields as a JSON member or a form's name,
// once unescaped.
func quotesRefreshSecret(s string) bool {
	return refreshSecretQuoted.MatchString(s) || refreshSecretQuoted.MatchString(unescapeNames(s))
}

// encodeRedacted writes a redacted payload back. Should the encoding fail,
// or a secret shape survive it (it cannot: every string was judged), the
// letter keeps a placeholder rather than the payload.
func encodeRedacted(v any) []byte {
	b, err := appendJSON(nil, v)
	if err != nil || secretShaped(string(b)) {
		return []byte(strconv.Quote(RedactedValue))
	}
	return b
}

// isSecretField: on a refresh job every field but the known harmless ones
// is treated as secret (an allow-list, so a misspelt "refreshToken" is
// redacted too); on any other job, the refresh job's secret fields.
func isSecretField(o Op, f string) bool {
	if refreshSecretName.MatchString(f) {
		return true
	}
	if o != OpRefresh {
		return false
	}
	switch f {
	case "job_id", "reply_to", "session_id", "request_origin", "format", "request_originating_ip":
		return false
	}
	return true
}
