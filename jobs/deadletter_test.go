package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

var allDeadLetterHeaders = []string{
	HeaderSubject, HeaderStreamSeq, HeaderJobID, HeaderOp, HeaderClass, HeaderError, HeaderHTTPStatus,
	HeaderClerkCode, HeaderClerkMessage, HeaderTraceID, HeaderField, HeaderAttempts, HeaderDeliveries,
	HeaderFirstFailure, HeaderLastFailure, HeaderWorker, HeaderHistory, HeaderRedacted, HeaderReplays,
}

func fullDeadLetter() DeadLetter {
	cet := time.FixedZone("CET", 3600)
	first := time.Date(2026, 3, 1, 10, 0, 0, 123456789, cet)
	return DeadLetter{
		Subject:   "sessions.refresh",
		StreamSeq: 1<<64 - 1,
		JobID:     "job-1:a@b/c",
		Op:        OpRefresh,
		Error: ErrorInfo{
			Class: ClassExhausted, Message: "clerk: 503 service unavailable after 4 attempts", HTTPStatus: 503,
			ClerkCode: "service_unavailable", ClerkMessage: "Please try again later.", TraceID: "trace-abc123", Field: "/session_id",
		},
		Attempts:     12,
		Deliveries:   5,
		FirstFailure: first,
		LastFailure:  first.Add(90*time.Second + 1),
		Worker:       "worker-7@host-a",
		History: []Failure{
			{At: first, Error: "timeout", TraceID: "t1"},
			{At: first.Add(time.Second), Error: "clerk 503", Status: 503, Code: "service_unavailable", TraceID: "t2"},
			{At: first.Add(2 * time.Second).In(time.UTC), Error: `quote " and \ backslash, <html> & ünïcode`, Status: 502},
		},
		Redacted: []string{"expired_token", "refresh_token", "request_headers"},
		Replays:  3,
	}
}

// diffDeadLetter compares two dead letters, times with Equal.
func diffDeadLetter(got, want DeadLetter) string {
	var diffs []string
	if !got.FirstFailure.Equal(want.FirstFailure) {
		diffs = append(diffs, fmt.Sprintf("FirstFailure %v, want %v", got.FirstFailure, want.FirstFailure))
	}
	if !got.LastFailure.Equal(want.LastFailure) {
		diffs = append(diffs, fmt.Sprintf("LastFailure %v, want %v", got.LastFailure, want.LastFailure))
	}
	if len(got.History) != len(want.History) {
		diffs = append(diffs, fmt.Sprintf("History has %d entries, want %d", len(got.History), len(want.History)))
	} else {
		for i := range got.History {
			g, w := got.History[i], want.History[i]
			if !g.At.Equal(w.At) {
				diffs = append(diffs, fmt.Sprintf("History[%d].At %v, want %v", i, g.At, w.At))
			}
			g.At, w.At = time.Time{}, time.Time{}
			if g != w {
				diffs = append(diffs, fmt.Sprintf("History[%d] %+v, want %+v", i, g, w))
			}
		}
	}
	got.FirstFailure, got.LastFailure, got.History = time.Time{}, time.Time{}, nil
	want.FirstFailure, want.LastFailure, want.History = time.Time{}, time.Time{}, nil
	if !reflect.DeepEqual(got, want) {
		diffs = append(diffs, fmt.Sprintf("\n got  %+v\n want %+v", got, want))
	}
	return strings.Join(diffs, "; ")
}

func TestDeadLetterRoundTrip(t *testing.T) {
	want := fullDeadLetter()
	h := want.Header()
	for _, k := range allDeadLetterHeaders {
		if h.Get(k) == "" {
			t.Errorf("Header() of a fully populated dead letter has no %s", k)
		}
	}
	if got := h.Get(HeaderFirstFailure); got != "2026-03-01T09:00:00.123456789Z" {
		t.Errorf("%s = %q, want RFC 3339 with nanoseconds in UTC", HeaderFirstFailure, got)
	}
	if got := h.Get(HeaderRedacted); got != "expired_token,refresh_token,request_headers" {
		t.Errorf("%s = %q", HeaderRedacted, got)
	}
	got, err := ParseDeadLetter(h)
	if err != nil {
		t.Fatalf("ParseDeadLetter(Header()): %v", err)
	}
	if d := diffDeadLetter(got, want); d != "" {
		t.Error(d)
	}
	if got.Replayable() {
		t.Error("a dead letter with redacted fields is Replayable")
	}
}

// A minimal dead letter, as the worker writes for an invalid message on an
// unknown subject, round-trips too: optional headers stay absent.
func TestDeadLetterMinimalRoundTrip(t *testing.T) {
	want := DeadLetter{Subject: "sessions.revok", Op: OpUnknown, Error: ErrorInfo{Class: ClassInvalid, Message: "invalid unknown job"}}
	h := want.Header()
	for _, k := range []string{HeaderJobID, HeaderHTTPStatus, HeaderClerkCode, HeaderFirstFailure, HeaderHistory, HeaderRedacted, HeaderReplays, HeaderWorker} {
		if v, ok := h[k]; ok {
			t.Errorf("Header() sets %s = %q for a zero value", k, v)
		}
	}
	got, err := ParseDeadLetter(h)
	if err != nil {
		t.Fatalf("ParseDeadLetter: %v", err)
	}
	if d := diffDeadLetter(got, want); d != "" {
		t.Error(d)
	}
	if !got.Replayable() {
		t.Error("a dead letter without redactions is not Replayable")
	}
	delete(h, HeaderOp)
	if got, err := ParseDeadLetter(h); err != nil || got.Op != OpUnknown {
		t.Errorf("without %s: Op = %q, %v; want unknown", HeaderOp, got.Op, err)
	}
}

// Over a real connection the headers survive the wire format too.
func TestDeadLetterHeadersOverNATS(t *testing.T) {
	js := startJetStream(t)
	nc := js.Conn()
	sub, err := nc.SubscribeSync("test.dlq")
	if err != nil {
		t.Fatal(err)
	}
	want := fullDeadLetter()
	want.Error.Message = "line one\nline two\r\nline three"
	m := nats.NewMsg("test.dlq")
	m.Header = want.Header()
	m.Data = []byte(`{"session_id":"sess_1"}`)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDeadLetter(msg.Header)
	if err != nil {
		t.Fatalf("ParseDeadLetter(received headers): %v", err)
	}
	want.Error.Message = "line one line two  line three"
	if d := diffDeadLetter(got, want); d != "" {
		t.Error(d)
	}
}

func TestDeadLetterHeaderValuesAreSingleLine(t *testing.T) {
	d := fullDeadLetter()
	d.Error.Message = "first line\nsecond line\r\nthird\rfourth"
	d.Error.ClerkMessage = "a\nb"
	d.Worker = "w\r\n1"
	d.JobID = "j\n1"
	d.History = append(d.History, Failure{At: time.Now(), Error: "multi\nline\r\nerror"})
	h := d.Header()
	for k, vs := range h {
		if len(vs) != 1 {
			t.Errorf("header %s has %d values", k, len(vs))
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				t.Errorf("header %s = %q spans lines", k, v)
			}
		}
	}
	if got, want := h.Get(HeaderError), "first line second line  third fourth"; got != want {
		t.Errorf("%s = %q, want %q", HeaderError, got, want)
	}
	got, err := ParseDeadLetter(h)
	if err != nil {
		t.Fatalf("ParseDeadLetter: %v", err)
	}
	// The history is JSON: its newlines are escaped, not lost.
	if last := got.History[len(got.History)-1]; last.Error != "multi\nline\r\nerror" {
		t.Errorf("history error = %q, want the original with its newlines", last.Error)
	}
}

func TestDeadLetterLongValuesAreBounded(t *testing.T) {
	tests := []struct {
		name string
		msg  string
	}{
		{"ascii", strings.Repeat("x", 10000)},
		{"two-byte runes", strings.Repeat("é", 3000)},
		{"three-byte runes", strings.Repeat("€", 3000)},
		{"four-byte runes", strings.Repeat("😀", 3000)},
		{"mixed, newlines", strings.Repeat("a€\n", 2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fullDeadLetter()
			d.Error.Message = tt.msg
			d.Error.ClerkMessage = tt.msg
			d.Worker = tt.msg
			h := d.Header()
			for _, k := range []string{HeaderError, HeaderClerkMessage, HeaderWorker} {
				v := h.Get(k)
				if len(v) > maxHeaderValue {
					t.Errorf("%s is %d bytes, want at most %d", k, len(v), maxHeaderValue)
				}
				if len(v) < maxHeaderValue-2*utf8.UTFMax {
					t.Errorf("%s is %d bytes: cut more than needed", k, len(v))
				}
				if !utf8.ValidString(v) {
					t.Errorf("%s is cut inside a character: ends %q", k, v[len(v)-4:])
				}
				if want := oneLineSpec(tt.msg); !cutPrefix(want, v) {
					t.Errorf("%s is not a prefix of the one-line message", k)
				}
			}
			got, err := ParseDeadLetter(h)
			if err != nil {
				t.Fatalf("ParseDeadLetter: %v", err)
			}
			if got.Error.Message != h.Get(HeaderError) {
				t.Errorf("parsed message differs from the header")
			}
		})
	}
}

// A realistic history (MaxHistory failures with Clerk's error messages)
// is larger than one header value may be; it must still parse back, with
// the most recent failures kept.
func TestDeadLetterLongHistory(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name   string
		n      int
		errLen int
	}{
		{"ten typical failures", MaxHistory, 150},
		{"ten long failures", MaxHistory, 2000},
		{"one huge failure", 1, 100000},
		{"one failure of escaped characters", 1, 3000},
		{"more than MaxHistory long failures", 25, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fullDeadLetter()
			d.History = nil
			for i := range tt.n {
				msg := fmt.Sprintf("attempt %d: ", i) + strings.Repeat("clerk said no. ", tt.errLen/15+1)
				if strings.Contains(tt.name, "escaped") {
					msg = strings.Repeat("\x01<", tt.errLen/2)
				}
				d.History = append(d.History, Failure{At: base.Add(time.Duration(i) * time.Second), Error: msg, Status: 503,
					Code: "service_unavailable", TraceID: fmt.Sprintf("trace-%d", i)})
			}
			h := d.Header()
			v := h.Get(HeaderHistory)
			if v == "" {
				t.Fatalf("no %s header", HeaderHistory)
			}
			if strings.ContainsAny(v, "\r\n") {
				t.Errorf("%s spans lines", HeaderHistory)
			}
			if len(v) > 8<<10 {
				t.Errorf("%s is %d bytes: unbounded", HeaderHistory, len(v))
			}
			got, err := ParseDeadLetter(h)
			if err != nil {
				t.Fatalf("ParseDeadLetter: %v (history header of %d bytes)", err, len(v))
			}
			if len(got.History) == 0 || len(got.History) > MaxHistory {
				t.Fatalf("parsed %d failures, want 1 to %d", len(got.History), MaxHistory)
			}
			// The kept failures are the most recent ones, in order, each
			// a prefix of the original.
			off := len(d.History) - len(got.History)
			for i, f := range got.History {
				w := d.History[off+i]
				if !f.At.Equal(w.At) || f.Status != w.Status || f.Code != w.Code || f.TraceID != w.TraceID {
					t.Errorf("History[%d] = %+v, want failure %d %+v", i, f, off+i, w)
				}
				if !cutPrefix(w.Error, f.Error) || f.Error == "" {
					t.Errorf("History[%d].Error (%d bytes) is not a non-empty prefix of the original", i, len(f.Error))
				}
			}
		})
	}
}

func TestDeadLetterHistoryKeepsLastMaxHistory(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{1, MaxHistory - 1, MaxHistory, MaxHistory + 1, 3 * MaxHistory} {
		d := fullDeadLetter()
		d.History = nil
		for i := range n {
			d.History = append(d.History, Failure{At: base.Add(time.Duration(i) * time.Minute), Error: fmt.Sprintf("f%d", i)})
		}
		got, err := ParseDeadLetter(d.Header())
		if err != nil {
			t.Fatalf("%d failures: %v", n, err)
		}
		want := min(n, MaxHistory)
		if len(got.History) != want {
			t.Fatalf("%d failures: kept %d, want %d", n, len(got.History), want)
		}
		for i, f := range got.History {
			if w := fmt.Sprintf("f%d", n-want+i); f.Error != w {
				t.Errorf("%d failures: History[%d] = %q, want %q (the newest kept, in order)", n, i, f.Error, w)
			}
		}
		if len(d.History) != n {
			t.Errorf("Header() changed the caller's History")
		}
	}
}

func TestParseDeadLetterMalformed(t *testing.T) {
	tests := []struct {
		header, value string
	}{
		{HeaderStreamSeq, "x"},
		{HeaderStreamSeq, "-1"},
		{HeaderStreamSeq, "18446744073709551616"},
		{HeaderHTTPStatus, "abc"},
		{HeaderHTTPStatus, "-5"},
		{HeaderAttempts, "1.5"},
		{HeaderAttempts, "-1"},
		{HeaderDeliveries, "many"},
		{HeaderDeliveries, " 3"},
		{HeaderReplays, "-1"},
		{HeaderReplays, "0x10"},
		{HeaderFirstFailure, "yesterday"},
		{HeaderFirstFailure, "2026-01-02 03:04:05"},
		{HeaderLastFailure, "2026-13-01T00:00:00Z"},
		{HeaderLastFailure, "1767225600"},
		{HeaderHistory, "not json"},
		{HeaderHistory, `[{"at":"not a time","error":"x"}]`},
		{HeaderHistory, `{"at":"2026-01-01T00:00:00Z"}`},
		{HeaderHistory, `[{"at":"2026-01-01T00:00:00Z","error":"x"`},
		{HeaderClass, "transient"},
		{HeaderClass, "INVALID"},
		// Whoever wrote the letter chose these: a secret in one must not
		// be echoed by the error that refuses it.
		{HeaderAttempts, "sk_" + "live_SECRETabcdefghijklmnopqrstuv"},
		{HeaderStreamSeq, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQifQ.SECRETsig"},
		{HeaderLastFailure, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQifQ.SECRETsig"},
		{HeaderClass, "sk_" + "live_SECRETabcdefghijklmnopqrstuv"},
		{HeaderReplays, strings.Repeat("9", 3000)},
	}
	for _, tt := range tests {
		t.Run(tt.header+"="+tt.value, func(t *testing.T) {
			h := fullDeadLetter().Header()
			h.Set(tt.header, tt.value)
			got, err := ParseDeadLetter(h)
			if err == nil {
				t.Fatalf("ParseDeadLetter accepted %s: %q", tt.header, tt.value)
			}
			if errors.Is(err, ErrNotDeadLetter) {
				t.Errorf("malformed %s reported as not a dead letter", tt.header)
			}
			if !strings.Contains(err.Error(), tt.header) {
				t.Errorf("error %q does not name header %s", err, tt.header)
			}
			if strings.Contains(err.Error(), "SECRET") || len(err.Error()) > 200 {
				t.Errorf("error echoes the value: %.300s", err)
			}
			// The rest is still read: a tool can show what it has.
			if got.Subject != "sessions.refresh" || got.JobID != "job-1:a@b/c" {
				t.Errorf("other headers lost: %+v", got)
			}
		})
	}
	// Several bad headers are all reported.
	h := fullDeadLetter().Header()
	h.Set(HeaderAttempts, "x")
	h.Set(HeaderLastFailure, "y")
	_, err := ParseDeadLetter(h)
	if err == nil || !strings.Contains(err.Error(), HeaderAttempts) || !strings.Contains(err.Error(), HeaderLastFailure) {
		t.Errorf("two bad headers: err = %v, want both named", err)
	}
}

func TestParseDeadLetterNotADeadLetter(t *testing.T) {
	full := fullDeadLetter().Header()
	without := func(keys ...string) nats.Header {
		h := nats.Header{}
		for k, v := range full {
			h[k] = slices.Clone(v)
		}
		for _, k := range keys {
			delete(h, k)
		}
		return h
	}
	for name, h := range map[string]nats.Header{
		"nil":            nil,
		"empty":          {},
		"a job's header": {"Nats-Msg-Id": {"job-1"}},
		"no subject":     without(HeaderSubject),
		"no class":       without(HeaderClass),
		"neither":        without(HeaderSubject, HeaderClass),
		"empty subject":  func() nats.Header { h := without(); h.Set(HeaderSubject, ""); return h }(),
	} {
		if _, err := ParseDeadLetter(h); !errors.Is(err, ErrNotDeadLetter) {
			t.Errorf("%s: ParseDeadLetter err = %v, want ErrNotDeadLetter", name, err)
		}
	}
	// Optional headers may all be missing.
	if _, err := ParseDeadLetter(without(HeaderStreamSeq, HeaderJobID, HeaderOp, HeaderError, HeaderHTTPStatus,
		HeaderClerkCode, HeaderClerkMessage, HeaderTraceID, HeaderField, HeaderAttempts, HeaderDeliveries,
		HeaderFirstFailure, HeaderLastFailure, HeaderWorker, HeaderHistory, HeaderRedacted, HeaderReplays)); err != nil {
		t.Errorf("only the required headers: %v", err)
	}
}

func TestParseDeadLetterEveryClass(t *testing.T) {
	for _, c := range ErrorClasses() {
		d := fullDeadLetter()
		d.Error.Class = c
		got, err := ParseDeadLetter(d.Header())
		if err != nil || got.Error.Class != c {
			t.Errorf("class %s: got %q, %v", c, got.Error.Class, err)
		}
	}
}

func TestRedact(t *testing.T) {
	refresh := []byte(`{"session_id":"sess_1","reply_to":"_INBOX.r","expired_token":"eyJ.SECRET1","refresh_token":"SECRET2","request_origin":"https://app","request_headers":{"Cookie":["SECRET3"]},"job_id":"j1"}`)
	// Written in pieces, so that no secret scanner mistakes the test for a
	// leak; each holds a SECRET marker the loop looks for.
	jwt := "eyJ" + "hbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.SECRET1sig"
	key := "sk_" + "live_SECRET2abcdefghijklmnopqrstuvwxyz0123"
	tests := []struct {
		name         string
		op           Op
		payload      []byte
		wantRedacted []string
		kept         bool              // payload kept byte for byte
		dropped      bool              // payload dropped whole
		wantOut      string            // the output, exactly
		wantFields   map[string]string // fields the output keeps, as raw JSON
	}{
		{name: "refresh job", op: OpRefresh, payload: refresh,
			wantRedacted: []string{"expired_token", "refresh_token", "request_headers"},
			wantFields: map[string]string{"session_id": `"sess_1"`, "reply_to": `"_INBOX.r"`, "request_origin": `"https://app"`, "job_id": `"j1"`,
				"expired_token": `"[REDACTED]"`, "refresh_token": `"[REDACTED]"`, "request_headers": `"[REDACTED]"`}},
		{name: "refresh job with one secret", op: OpRefresh, payload: []byte(`{"session_id":"sess_1","refresh_token":"SECRET2"}`),
			wantRedacted: []string{"refresh_token"},
			wantFields:   map[string]string{"session_id": `"sess_1"`, "refresh_token": `"[REDACTED]"`}},
		{name: "refresh job with null headers", op: OpRefresh, payload: []byte(`{"request_headers":null}`),
			wantRedacted: []string{"request_headers"}, wantFields: map[string]string{"request_headers": `"[REDACTED]"`}},
		{name: "revoke job", op: OpRevoke, payload: []byte("{ \"session_id\" : \"sess_123\",\n \"job_id\":\"j\" }"), kept: true},
		{name: "revoke README body", op: OpRevoke, payload: []byte(`{"session_id":"sess_123"}`), kept: true},
		{name: "token job", op: OpToken, payload: []byte(`{"session_id":"sess_1","reply_to":"_INBOX.x"}`), kept: true},
		{name: "refresh job without secrets", op: OpRefresh, payload: []byte(`{"session_id":"sess_1"}`), kept: true},
		{name: "non-JSON revoke", op: OpRevoke, payload: []byte("session_id=sess_1\x00\xff"), kept: true},
		{name: "empty revoke", op: OpRevoke, payload: []byte{}, kept: true},
		// A refresh job's secret fields at any depth, on any subject: their
		// values are opaque, shaped like nothing.
		{name: "refresh token nested in a revoke", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","job":{"refresh_token":"SECRET2","n":1}}`),
			wantRedacted: []string{"job"}, wantOut: `{"session_id":"sess_1","job":{"refresh_token":"[REDACTED]","n":1}}`},
		{name: "refresh job in an array", op: OpToken, payload: []byte(`[{"session_id":"sess_1","expired_token":"SECRET1","request_headers":{"Cookie":["SECRET3"]}}]`),
			wantRedacted: []string{"body"}, wantOut: `[{"session_id":"sess_1","expired_token":"[REDACTED]","request_headers":"[REDACTED]"}]`},
		{name: "refresh job with a trailing comma", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","refresh_token":"SECRET2",}`),
			wantRedacted: []string{"body"}, dropped: true},
		{name: "refresh token under a misspelt name", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","refreshToken":"SECRET2"}`),
			wantRedacted: []string{"refreshToken"}, wantOut: `{"session_id":"sess_1","refreshToken":"[REDACTED]"}`},
		{name: "refresh job encoded twice", op: OpRevoke, payload: []byte(`"{\"session_id\":\"sess_1\",\"refresh_token\":\"SECRET2\"}"`),
			wantRedacted: []string{"body"}, wantOut: `"[REDACTED]"`},
		{name: "a job id naming a refresh token is no secret", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","job_id":"rotate-refresh-token-42"}`), kept: true},
		{name: "refresh job cut short", op: OpUnknown, payload: []byte(`{"session_id":"sess_1","Refresh_Token":"SECRET2`),
			wantRedacted: []string{"body"}, dropped: true},
		// The same names written with escapes a reader undoes (JSON's
		// \u005f, a form's %5F), or with whitespace: a reader, a replay,
		// a page sees refresh_token.
		{name: "escaped name in a body with a trailing comma", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","refresh\u005ftoken":"SECRET2",}`),
			wantRedacted: []string{"body"}, dropped: true},
		{name: "escaped name in a body cut short", op: OpUnknown, payload: []byte(`{"session_id":"sess_1","\u0072efresh_token":"SECRET2`),
			wantRedacted: []string{"body"}, dropped: true},
		{name: "percent-encoded name in a form body", op: OpRevoke, payload: []byte(`session_id=sess_1&refresh%5Ftoken=SECRET2`),
			wantRedacted: []string{"body"}, dropped: true},
		{name: "escaped name in a body encoded twice", op: OpRevoke, payload: []byte(`"{\"session_id\":\"sess_1\",\"refresh\\u005ftoken\":\"SECRET2\"}"`),
			wantRedacted: []string{"body"}, wantOut: `"[REDACTED]"`},
		{name: "escaped name in a member holding JSON", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","job":"{\"refresh\\u005ftoken\":\"SECRET2\"}"}`),
			wantRedacted: []string{"job"}, wantOut: `{"session_id":"sess_1","job":"[REDACTED]"}`},
		{name: "name with a trailing space", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","refresh_token ":"SECRET2"}`),
			wantRedacted: []string{`"refresh_token "`}, wantOut: `{"session_id":"sess_1","refresh_token ":"[REDACTED]"}`},
		{name: "name with a space between its words", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","x":{"Refresh Token":"SECRET2"}}`),
			wantRedacted: []string{"x"}, wantOut: `{"session_id":"sess_1","x":{"Refresh Token":"[REDACTED]"}}`},
		{name: "form body encoded as a JSON string", op: OpRevoke, payload: []byte(`"session_id=sess_1&refresh_token=SECRET2"`),
			wantRedacted: []string{"body"}, wantOut: `"[REDACTED]"`},
		// A body parser that read JSON as a form (or a form as JSON) makes
		// the whole job one member's name.
		{name: "refresh job as a member name", op: OpRevoke, payload: []byte(`{"{\"session_id\":\"sess_1\",\"refresh_token\":\"SECRET2\"}":""}`),
			wantRedacted: []string{RedactedValue}, wantOut: `{"[REDACTED]":""}`},
		{name: "form as a nested member name", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","x":{"session_id=sess_1&refresh_token=SECRET2":""}}`),
			wantRedacted: []string{"x"}, wantOut: `{"session_id":"sess_1","x":{"[REDACTED]":""}}`},
		// reply_to's pattern takes a quote and = (a NATS subject may hold
		// them): a runnable job naming a refresh field so holds no secret,
		// and its letter must stay replayable.
		{name: "a reply_to quoting a refresh field's name is no secret", op: OpRevoke,
			payload: []byte(`{"session_id":"sess_1","reply_to":"_INBOX.\"refreshToken\""}`), kept: true},
		{name: "a reply_to with refresh_token= in a token is no secret", op: OpRevoke,
			payload: []byte(`{"session_id":"sess_1","reply_to":"_INBOX.refresh_token=1"}`), kept: true},
		// A form read into entries (URLSearchParams, Object.entries): each
		// pair a list, the secret field's name a value, its token the next.
		{name: "refresh job as a list of pairs", op: OpRevoke, payload: []byte(`[["session_id","sess_1"],["refresh_token","SECRET2"]]`),
			wantRedacted: []string{"body"}, wantOut: `[["session_id","sess_1"],["refresh_token","[REDACTED]"]]`},
		{name: "refresh pair nested in a job", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","x":["Refresh-Token","SECRET2"]}`),
			wantRedacted: []string{"x"}, wantOut: `{"session_id":"sess_1","x":["Refresh-Token","[REDACTED]"]}`},
		{name: "job ids naming a refresh token are no secret", op: OpRevoke,
			payload: []byte(`{"session_id":"sess_1","job_id":"refresh-token:sess_1","reply_to":"_INBOX.refresh_token.x"}`), kept: true},
		{name: "non-JSON refresh", op: OpRefresh, payload: []byte(`refresh_token=SECRET2`), wantRedacted: []string{"body"}, dropped: true},
		{name: "truncated refresh", op: OpRefresh, payload: refresh[:len(refresh)-1], wantRedacted: []string{"body"}, dropped: true},
		{name: "refresh array", op: OpRefresh, payload: []byte(`["SECRET2"]`), wantRedacted: []string{"body"}, dropped: true},
		{name: "refresh string", op: OpRefresh, payload: []byte(`"SECRET2"`), wantRedacted: []string{"body"}, dropped: true},
		{name: "empty refresh", op: OpRefresh, payload: []byte{}, wantRedacted: []string{"body"}, dropped: true},
		{name: "secrets sent to the revoke subject", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","refresh_token":"SECRET2","expired_token":"SECRET1"}`),
			wantRedacted: []string{"expired_token", "refresh_token"},
			wantFields:   map[string]string{"session_id": `"sess_1"`, "refresh_token": `"[REDACTED]"`, "expired_token": `"[REDACTED]"`}},
		// A JWT written with JSON escapes is still a JWT to whoever decodes
		// the payload: the shape is judged on the decoded string.
		{name: "escaped JWT in session_id", op: OpRevoke, payload: []byte(`{"session_id":"eyJhbGciOiJSUzI1NiJ9\u002eeyJzdWIiOiJTRUNSRVQxIn0\u002eSECRET1sig","job_id":"j"}`),
			wantRedacted: []string{"session_id"}, wantFields: map[string]string{"session_id": `"[REDACTED]"`, "job_id": `"j"`}},
		{name: "escaped JWT, nested", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","extra":{"a":["eyJhbGciOiJSUzI1NiJ9\u002eeyJzdWIiOiJTRUNSRVQxIn0\u002eSECRET1sig"]}}`),
			wantRedacted: []string{"extra"}, wantFields: map[string]string{"session_id": `"sess_1"`, "extra": `{"a":["[REDACTED]"]}`}},
		{name: "escaped JWT as the whole body", op: OpRevoke, payload: []byte(`"eyJhbGciOiJSUzI1NiJ9\u002eeyJzdWIiOiJTRUNSRVQxIn0\u002eSECRET1sig"`),
			wantRedacted: []string{"body"}},
		{name: "secrets on an unknown subject", op: OpUnknown, payload: []byte(`{"request_headers":{"Authorization":"Bearer SECRET3"}}`),
			wantRedacted: []string{"request_headers"}, wantFields: map[string]string{"request_headers": `"[REDACTED]"`}},

		// A member name given twice: a map keeps one value (the last, for
		// encoding/json), and the JWT in the other was once stored as it
		// came. Every value is judged; the output keeps every member, in
		// order, the secret ones replaced.
		{name: "JWT in the first of a repeated name", op: OpRevoke, payload: []byte(`{"session_id":"` + jwt + `","session_id":"sess_missing"}`),
			wantRedacted: []string{"session_id"}, wantOut: `{"session_id":"[REDACTED]","session_id":"sess_missing"}`},
		{name: "JWT in the last of a repeated name", op: OpRevoke, payload: []byte(`{"session_id":"sess_missing","session_id":"` + jwt + `"}`),
			wantRedacted: []string{"session_id"}, wantOut: `{"session_id":"sess_missing","session_id":"[REDACTED]"}`},
		{name: "secret key in a repeated job_id", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","job_id":"` + key + `","job_id":"x"}`),
			wantRedacted: []string{"job_id"}, wantOut: `{"session_id":"sess_1","job_id":"[REDACTED]","job_id":"x"}`},
		{name: "repeated name in a nested object", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","extra":{"a":"` + jwt + `","a":"b"}}`),
			wantRedacted: []string{"extra"}, wantOut: `{"session_id":"sess_1","extra":{"a":"[REDACTED]","a":"b"}}`},
		{name: "repeated name in an object in an array", op: OpGet, payload: []byte(`{"session_id":"sess_1","x":[1,{"k":"` + key + `","k":null}]}`),
			wantRedacted: []string{"x"}, wantOut: `{"session_id":"sess_1","x":[1,{"k":"[REDACTED]","k":null}]}`},
		{name: "repeated name in a body that is an array", op: OpRevoke, payload: []byte(`[{"a":"` + jwt + `","a":"b"}]`),
			wantRedacted: []string{"body"}, wantOut: `[{"a":"[REDACTED]","a":"b"}]`},
		{name: "refresh secret given twice", op: OpRefresh, payload: []byte(`{"session_id":"sess_1","refresh_token":"SECRET2","refresh_token":"r"}`),
			wantRedacted: []string{"refresh_token"}, wantOut: `{"session_id":"sess_1","refresh_token":"[REDACTED]","refresh_token":"[REDACTED]"}`},
		{name: "repeated name, no secret", op: OpRevoke, payload: []byte(`{"session_id":"sess_1", "session_id":"sess_2"}`), kept: true},
		// A member name is text the payload carries, at the top as below.
		{name: "secret-shaped member name", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","` + key + `":1}`),
			wantRedacted: []string{RedactedValue}, wantOut: `{"session_id":"sess_1","[REDACTED]":1}`},
		{name: "secret-shaped nested member name", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","x":{"` + key + `":1}}`),
			wantRedacted: []string{"x"}, wantOut: `{"session_id":"sess_1","x":{"[REDACTED]":1}}`},
		// A quoted cookie value is a secret only as written, escapes and all.
		{name: "quoted cookie value", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","c":"__session=\"SECRET3\""}`),
			wantRedacted: []string{"c"}, wantOut: `{"session_id":"sess_1","c":"[REDACTED]"}`},
		// A URL with a password or token in it is a secret wherever the
		// publisher pasted it: a NATS server's URL in session_id is kept
		// out of the letter as a JWT there is.
		{name: "URL password in session_id", op: OpRevoke, payload: []byte(`{"session_id":"nats://alice:SECRET2@nats.internal:4222","job_id":"j"}`),
			wantRedacted: []string{"session_id"}, wantOut: `{"session_id":"[REDACTED]","job_id":"j"}`},
		{name: "URL token, nested", op: OpGet, payload: []byte(`{"session_id":"sess_1","x":["https://SECRET2tok@api.internal/v1"]}`),
			wantRedacted: []string{"x"}, wantOut: `{"session_id":"sess_1","x":["[REDACTED]"]}`},
		{name: "URL password written with escapes", op: OpRevoke, payload: []byte(`{"session_id":"nats:\/\/alice:SECRET2@h","job_id":"j"}`),
			wantRedacted: []string{"session_id"}, wantOut: `{"session_id":"[REDACTED]","job_id":"j"}`},
		{name: "URL password as a member name", op: OpRevoke, payload: []byte(`{"session_id":"sess_1","nats://alice:SECRET2@h":1}`),
			wantRedacted: []string{RedactedValue}, wantOut: `{"session_id":"sess_1","[REDACTED]":1}`},
		{name: "URL password in a body that is not JSON", op: OpRevoke, payload: []byte(`session_id=nats://alice:SECRET2@h&job_id=j`),
			wantRedacted: []string{"body"}, wantOut: `session_id=nats://alice:xxxxx@h&job_id=j`},
		// A body that is not JSON but holds one written with escapes (JSON
		// cut short, from an encoder that writes \/; a form's %XX) cannot
		// have it replaced in place: it is dropped whole.
		{name: "URL password with escaped slashes in JSON cut short", op: OpRevoke, payload: []byte(`{"session_id":"nats:\/\/alice:SECRET2@h",`),
			wantRedacted: []string{"body"}, dropped: true},
		{name: "URL password percent-encoded in a form", op: OpRevoke, payload: []byte(`session_id=nats%3A%2F%2Falice%3ASECRET2%40h`),
			wantRedacted: []string{"body"}, dropped: true},
		{name: "URL password in a body that is a string", op: OpRevoke, payload: []byte(`"nats://alice:SECRET2@h"`),
			wantRedacted: []string{"body"}, wantOut: `"[REDACTED]"`},
		{name: "URL without a password is no secret", op: OpRevoke,
			payload: []byte(`{"session_id":"sess_1","x":"https://app.example/@alice","y":"nats://alice:xxxxx@h"}`), kept: true},
		{name: "numbers kept as written", op: OpRevoke, payload: []byte(`{"n":1.50e3,"session_id":"` + jwt + `","m":-0}`),
			wantRedacted: []string{"session_id"}, wantOut: `{"n":1.50e3,"session_id":"[REDACTED]","m":-0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.payload)
			out, redacted := Redact(tt.op, tt.payload)
			if !bytes.Equal(tt.payload, orig) {
				t.Error("Redact modified its input")
			}
			if !slices.Equal(redacted, tt.wantRedacted) {
				t.Errorf("redacted = %q, want %q", redacted, tt.wantRedacted)
			}
			for _, s := range []string{"SECRET1", "SECRET2", "SECRET3"} {
				if len(tt.wantRedacted) > 0 && bytes.Contains(out, []byte(s)) {
					t.Errorf("output still holds %s: %s", s, out)
				}
			}
			if (DeadLetter{Redacted: redacted}).Replayable() != (len(tt.wantRedacted) == 0) {
				t.Errorf("Replayable() = %v with redacted %q", !(len(tt.wantRedacted) == 0), redacted)
			}
			switch {
			case tt.kept:
				if !bytes.Equal(out, tt.payload) {
					t.Errorf("payload not kept byte for byte:\n got  %q\n want %q", out, tt.payload)
				}
			case tt.dropped:
				if len(out) != 0 {
					t.Errorf("payload not dropped: %q", out)
				}
			case tt.wantOut != "":
				if string(out) != tt.wantOut {
					t.Errorf("output:\n got  %s\n want %s", out, tt.wantOut)
				}
			case len(tt.wantFields) == 0:
				if bytes.Contains(out, []byte("SECRET")) || bytes.Contains(out, []byte(`\u002e`)) {
					t.Errorf("output still holds the secret: %s", out)
				}
			default:
				var got map[string]json.RawMessage
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("redacted output is not a JSON object: %v: %s", err, out)
				}
				if len(got) != len(tt.wantFields) {
					t.Errorf("output has fields %v, want %v", got, tt.wantFields)
				}
				for k, v := range tt.wantFields {
					if string(got[k]) != v {
						t.Errorf("field %s = %s, want %s", k, got[k], v)
					}
				}
			}
		})
	}
}

// A redacted refresh job still decodes as JSON with its non-secret fields,
// so an operator can see which session it was about; its header says what
// was removed and that it cannot be replayed.
func TestRedactedDeadLetter(t *testing.T) {
	body, err := Encode(fullArgs()[OpRefresh])
	if err != nil {
		t.Fatal(err)
	}
	out, redacted := Redact(OpRefresh, body)
	d := fullDeadLetter()
	d.Redacted = redacted
	got, err := ParseDeadLetter(d.Header())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Redacted, []string{"expired_token", "refresh_token", "request_headers"}) || got.Replayable() {
		t.Errorf("parsed Redacted = %q, Replayable = %v", got.Redacted, got.Replayable())
	}
	var r struct {
		SessionID    string `json:"session_id"`
		ExpiredToken string `json:"expired_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.SessionID != "sess_1" || r.ExpiredToken != RedactedValue || r.RefreshToken != RedactedValue {
		t.Errorf("redacted body = %s", out)
	}
}

func TestRedactRefreshIsAnAllowList(t *testing.T) {
	body := []byte(`{"session_id":"sess_1","refreshToken":"rt_secret","request_origin":"https://a.example","reply_to":"_INBOX.x"}`)
	out, redacted := Redact(OpRefresh, body)
	if strings.Contains(string(out), "rt_secret") {
		t.Errorf("a misspelt secret field survived redaction: %s", out)
	}
	if !slices.Equal(redacted, []string{"refreshToken"}) {
		t.Errorf("redacted %v, want [refreshToken]", redacted)
	}
	if !strings.Contains(string(out), `"session_id":"sess_1"`) || !strings.Contains(string(out), `"reply_to":"_INBOX.x"`) {
		t.Errorf("harmless fields were lost: %s", out)
	}
}

// TestRedactRefreshHidesItsSecretsElsewhere: a refresh job's dead letter
// kept its harmless fields as they were, so its own refresh token shown in
// one (pasted into request_origin, percent-encoded or not) or swapped with
// the session id, opaque and shaped like nothing, was stored; and the
// error refusing such a session id quoted it.
func TestRedactRefreshHidesItsSecretsElsewhere(t *testing.T) {
	const rt = "opaqueRefreshToken0123456789+/="
	for name, body := range map[string]string{
		"swapped with session_id": `{"session_id":"` + rt + `","refresh_token":"sess_1","expired_token":"e","request_origin":"https://a.example"}`,
		"in request_origin":       `{"session_id":"sess_1","refresh_token":"` + rt + `","expired_token":"e","request_origin":"https://a.example/?r=` + rt + `"}`,
		"percent-encoded":         `{"session_id":"sess_1","refresh_token":"` + rt + `","expired_token":"e","request_origin":"https://a.example/?r=` + url.QueryEscape(rt) + `"}`,
		"a header's value":        `{"session_id":"sess_1","refresh_token":"r","expired_token":"e","request_headers":{"Cookie":["` + rt + `"]},"request_originating_ip":"` + rt + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			out, redacted := Redact(OpRefresh, []byte(body))
			if strings.Contains(string(out), "opaqueRefresh") || len(redacted) == 0 {
				t.Errorf("dead letter body %s (redacted %v) shows the refresh token", out, redacted)
			}
			_, err := Decode(OpRefresh, []byte(`{"reply_to":"_INBOX.x",`+body[1:]))
			if err != nil && strings.Contains(err.Error(), "opaqueRefresh") {
				t.Errorf("the error shows the refresh token: %v", err)
			}
		})
	}
	// The harmless fields stay when they hold nothing of the job's.
	out, _ := Redact(OpRefresh, []byte(`{"session_id":"sess_1","refresh_token":"`+rt+`","request_origin":"https://a.example","request_originating_ip":"203.0.113.9"}`))
	for _, kept := range []string{`"session_id":"sess_1"`, `"request_origin":"https://a.example"`, `"request_originating_ip":"203.0.113.9"`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("%s was lost: %s", kept, out)
		}
	}
}

// TestRedactedNamesKeepTheLetterUnreplayable: whatever a member holding a
// secret is named (nothing, a line break, a comma, a NUL), the dead letter
// says it was redacted, and a letter with a value replaced is never
// replayable: replayed, it would run with "[REDACTED]" in place of what was
// sent.
func TestRedactedNamesKeepTheLetterUnreplayable(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.SECRET1sig"
	for _, name := range []string{``, `\n`, `\u0000`, ` `, `,`, `\t\r`} {
		t.Run(name, func(t *testing.T) {
			body := `{"` + name + `":"` + jwt + `","session_id":"sess_1"}`
			out, redacted := Redact(OpRevoke, []byte(body))
			if strings.Contains(string(out), "SECRET1") {
				t.Fatalf("not redacted: %s", out)
			}
			d := fullDeadLetter()
			d.Redacted = redacted
			h := d.Header()
			got, err := ParseDeadLetter(h)
			if err != nil {
				t.Fatal(err)
			}
			if got.Replayable() || len(got.Redacted) != len(redacted) {
				t.Errorf("Redacted %q, header %q, parsed %q: replayable %v", redacted, h.Get(HeaderRedacted), got.Redacted, got.Replayable())
			}
		})
	}
}

// A member named like the words Dlq-Redacted keeps for a dropped body and
// a cleared subject is listed quoted, so that an operator reading the
// header can tell "the member body held a secret" from "the body was not
// stored".
func TestRedactedNamesAreNotTheHeadersOwnWords(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.SECRET1sig"
	for _, tc := range []struct{ name, want string }{
		{"body", `"body"`},
		{"subject", `"subject"`},
		{"bodies", "bodies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, redacted := Redact(OpRevoke, []byte(`{"`+tc.name+`":"`+jwt+`","session_id":"sess_1"}`))
			if !slices.Equal(redacted, []string{tc.want}) {
				t.Errorf("Redacted %q, want [%q]", redacted, tc.want)
			}
		})
	}
}

// A member whose name is written like the header's own forms (quoted,
// or the stand-in for a name not shown) is listed quoted: a member named
// "body" with its quotes was listed `"body"`, as the member body is, and
// one named `(a name of 9 characters)` as a name not shown.
func TestRedactedNamesSpeltLikeTheHeadersFormsAreQuoted(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.SECRET1sig"
	for _, tc := range []struct{ name, want string }{
		{`"body"`, `"\"body\""`},
		{`""`, `"\"\""`},
		{"(a name of 9 characters)", `"(a name of 9 characters)"`},
		{`"a,b`, "(a name of 4 characters)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := json.Marshal(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			_, redacted := Redact(OpRevoke, []byte(`{`+string(key)+`:"`+jwt+`","session_id":"sess_1"}`))
			if !slices.Equal(redacted, []string{tc.want}) {
				t.Errorf("Redacted %q, want [%q]", redacted, tc.want)
			}
		})
	}
}

// A member whose name has a space at either end is listed quoted: NATS
// drops the spaces that open a header's value, so a member " body",
// first in the sorted list (a space sorts before letters), was read back
// from the letter as body, the header's word for a body not stored, and
// one "body " read as that word beside its neighbour's comma.
func TestRedactedNamesWithSpacesAtTheEndsAreQuoted(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.SECRET1sig"
	for _, name := range []string{" body", "body ", " subject", "\u00a0body", "a b"} {
		t.Run(name, func(t *testing.T) {
			key, err := json.Marshal(name)
			if err != nil {
				t.Fatal(err)
			}
			_, redacted := Redact(OpRevoke, []byte(`{`+string(key)+`:"`+jwt+`","session_id":"sess_1"}`))
			d := DeadLetter{Subject: "sessions.jobs.revoke", JobID: "j", Op: OpRevoke, Error: ErrorInfo{Class: ClassPermanent, Message: "x"}, Redacted: redacted}
			var raw strings.Builder
			raw.WriteString("NATS/1.0\r\n")
			for k, vs := range d.Header() {
				for _, v := range vs {
					raw.WriteString(k + ": " + v + "\r\n")
				}
			}
			raw.WriteString("\r\n")
			h, err := nats.DecodeHeadersMsg([]byte(raw.String()))
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseDeadLetter(h)
			if err != nil {
				t.Fatal(err)
			}
			if len(back.Redacted) != 1 || slices.Contains([]string{"body", "subject"}, back.Redacted[0]) ||
				(name != "a b" && back.Redacted[0] != strconv.Quote(name)) {
				t.Errorf("member %q listed %q, read back from the letter as %q; want it quoted", name, redacted, back.Redacted)
			}
		})
	}
}

// Dlq-Redacted is cut at 1024 bytes like every header, and the worker
// adds "subject" (a subject cleared of a secret) after the sorted names:
// a refresh job with a few dozen redacted members, or a handful whose
// quoted names are long, lost the word from its letter, which then no
// longer said that its subject was not the job's. The header's own words
// are kept whole after the cut names.
func TestRedactedHeaderKeepsItsWordsPastTheCut(t *testing.T) {
	var names []string
	for i := range 5 {
		names = append(names, listed(strings.Repeat("\xff", 60)+strconv.Itoa(i))) // 243 bytes quoted
	}
	for _, words := range [][]string{{"subject"}, {"subject", "body"}} {
		d := DeadLetter{Subject: "sessions.jobs.[REDACTED]", JobID: "j", Error: ErrorInfo{Class: ClassInvalid, Message: "x"},
			Redacted: append(slices.Clone(names), words...)}
		v := d.Header().Get(HeaderRedacted)
		back, err := ParseDeadLetter(d.Header())
		if err != nil {
			t.Fatal(err)
		}
		if len(v) > maxHeaderValue || !strings.HasSuffix(v, "…,"+strings.Join(words, ",")) ||
			!slices.Equal(back.Redacted[len(back.Redacted)-len(words):], words) || back.Replayable() {
			t.Errorf("Dlq-Redacted (%d bytes) = %q; want the names cut and %q kept", len(v), v, words)
		}
	}
}

// TestRedactRefreshKeepsWhatItsHeadersRepeat: every header value counted
// as the job's own secret, so the usual Origin and X-Forwarded-For, which
// repeat request_origin and request_originating_ip, and a Referer whose
// first 12 bytes are the origin's, hid both fields in every such dead
// letter. A credential header still hides its value elsewhere.
func TestRedactRefreshKeepsWhatItsHeadersRepeat(t *testing.T) {
	const rt = "opaqueRefreshToken0123456789"
	out, _ := Redact(OpRefresh, []byte(`{"session_id":"sess_1","refresh_token":"`+rt+`","expired_token":"e",`+
		`"request_origin":"https://app.example.com","request_originating_ip":"203.0.113.9",`+
		`"request_headers":{"Origin":["https://app.example.com"],"referer":"https://app.example.com/sign-in","X-Forwarded-For":["203.0.113.9"],"User-Agent":["Mozilla/5.0 (X11; Linux x86_64)"]}}`))
	for _, kept := range []string{`"request_origin":"https://app.example.com"`, `"request_originating_ip":"203.0.113.9"`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("%s was lost: %s", kept, out)
		}
	}
	out, _ = Redact(OpRefresh, []byte(`{"session_id":"sess_1","refresh_token":"r","expired_token":"e","request_origin":"https://a.example/?c=`+rt+`",`+
		`"request_headers":{"Authorization":["`+rt+`"],"Origin":["https://a.example"]}}`))
	if strings.Contains(string(out), "opaqueRefresh") {
		t.Errorf("an Authorization header's value shows in %s", out)
	}
}

// BenchmarkRedactManyMembers: a hostile job of a megabyte, tens of
// thousands of members each redacted (a value naming a refresh field as a
// form does), dead-lettered. Listing the names was quadratic: about 4 s of
// CPU a letter, in the worker, the console and dlq show.
func BenchmarkRedactManyMembers(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('{')
	for i := 0; body.Len() < 1<<20; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `"a%d":"refresh_token="`, i)
	}
	body.WriteByte('}')
	for b.Loop() {
		if _, redacted := Redact(OpRevoke, body.Bytes()); len(redacted) < 10_000 {
			b.Fatalf("%d names redacted", len(redacted))
		}
	}
}
