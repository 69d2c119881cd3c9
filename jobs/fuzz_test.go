package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// checkReadDoc checks that readDoc's two readers agree: whatever body it
// accepts, by the strict one-pass check or member by member, it reads as
// the member reader does.
func checkReadDoc(t *testing.T, data []byte) {
	t.Helper()
	doc, err := readDoc(OpRevoke, data)
	if len(data) > MaxJobBytes {
		// Refused for its size before either reader sees it.
		if err == nil {
			t.Fatalf("readDoc accepted a body of %d bytes, more than %d", len(data), MaxJobBytes)
		}
		return
	}
	if !json.Valid(data) {
		if err == nil {
			t.Fatalf("readDoc accepted a body that is not JSON: %q", data)
		}
		return
	}
	members, merr := parseMembers(data)
	if merr != nil {
		t.Fatalf("parseMembers(%q): %v", data, merr)
	}
	if _, _, dup := firstDuplicate(members); dup != (err != nil) {
		t.Fatalf("readDoc(%q): error %v, but a name given twice: %v", data, err, dup)
	}
	if err == nil && !reflect.DeepEqual(doc, plain(members)) {
		t.Fatalf("readDoc(%q) = %#v, the member reader %#v", data, doc, plain(members))
	}
}

// plain is v as encoding/json (with UseNumber) decodes it into any: each
// object a map (the last value of a name given twice), what a JSON Schema
// validator reads.
func plain(v any) any {
	switch v := v.(type) {
	case object:
		m := make(map[string]any, len(v))
		for _, e := range v {
			m[e.name] = plain(e.value)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// fuzzOps are the ops FuzzDecode picks from by index: every job type, and
// ops no subject maps to.
var fuzzOps = append(AllOps(), OpUnknown, Op(""), Op("token.request"))

func FuzzDecode(f *testing.F) {
	for i, o := range fuzzOps {
		if a, ok := fullArgs()[o]; ok {
			b, err := Encode(a)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
		f.Add(uint8(i), []byte(`{"session_id":"sess_123"}`))
	}
	f.Add(uint8(4), []byte(`{"session_id":"sess_1/../x"}`))
	f.Add(uint8(0), []byte(`{"user_id":"user_1","limit":1e999999,"offset":100000000000000000000}`))
	f.Add(uint8(3), []byte(`{"session_id":"sess_1","reply_to":"_INBOX.r","expired_token":"\u003c\ufffd","refresh_token":"r","request_origin":"o","request_headers":{"a":[1.5e300,null,{"b":"\u2028"}]},"format":null}`))
	f.Add(uint8(5), []byte(`{"session_id":"sess_1","reply_to":"_INBOX.x","expires_in_seconds":30.0}`))
	f.Add(uint8(6), []byte(`{"user_id":"user_1","except_session_ids":[]}`))
	f.Add(uint8(2), []byte(`{"session_id":"sess_1","session_id":"sess_2"}`))
	// Strict JSON, one byte over the limit: refused for its size alone.
	over := []byte(`{"session_id":"sess_1","x":""}`)
	over = append(over[:len(over)-2], append(bytes.Repeat([]byte("a"), MaxJobBytes+1-len(over)), `"}`...)...)
	f.Add(uint8(2), over)

	f.Fuzz(func(t *testing.T, opIndex uint8, data []byte) {
		o := fuzzOps[int(opIndex)%len(fuzzOps)]
		checkReadDoc(t, data)
		a, err := Decode(o, data)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%s) error %T %v is not an *InvalidError", o, err, err)
			}
			if a != nil {
				t.Fatalf("Decode(%s) returned %#v with its error", o, a)
			}
			wantOp := o
			if !o.Valid() {
				wantOp = OpUnknown
			}
			if ie.Op != wantOp {
				t.Fatalf("InvalidError.Op = %q, want %q", ie.Op, wantOp)
			}
			if ie.Reason == "" {
				t.Fatal("InvalidError without a reason")
			}
			if ie.Field != "" && !strings.HasPrefix(ie.Field, "/") {
				t.Fatalf("Field %q is not a JSON pointer", ie.Field)
			}
			return
		}
		if a == nil || a.Op() != o {
			t.Fatalf("Decode(%s) = %#v", o, a)
		}
		if !json.Valid(data) {
			t.Fatalf("Decode(%s) accepted a body that is not JSON: %q", o, data)
		}
		b, err := Encode(a)
		if err != nil {
			t.Fatalf("Encode(decoded %s job): %v", o, err)
		}
		a2, err := Decode(o, b)
		if err != nil {
			// Go's encoder may lengthen a body near the limit (it escapes
			// <, > and & and turns each invalid UTF-8 byte into U+FFFD);
			// only the size check may refuse the re-encoded job.
			var ie *InvalidError
			if len(b) > MaxJobBytes && errors.As(err, &ie) && ie.Field == "" {
				return
			}
			t.Fatalf("a decoded %s job does not decode again once encoded: %v\ninput:   %q\nencoded: %q", o, err, data, b)
		}
		b2, err := Encode(a2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable: %v\nfirst:  %q\nsecond: %q", err, b, b2)
		}
	})
}

// oneLineSpec is what the package promises for a header value: line breaks
// become spaces, and invalid UTF-8 bytes U+FFFD.
func oneLineSpec(s string) string {
	return coerceUTF8(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s))
}

// cutPrefix reports whether got is want cut short, with the cut marked by
// an ellipsis.
func cutPrefix(want, got string) bool {
	return strings.HasPrefix(want, got) || (strings.HasSuffix(got, "…") && strings.HasPrefix(want, strings.TrimSuffix(got, "…")))
}

// checkBounded checks that got is the one-line form of want, cut to the
// header bound without splitting a character.
func checkBounded(t *testing.T, name, got, want string) {
	t.Helper()
	want = oneLineSpec(want)
	if len(want) <= maxHeaderValue {
		if got != want {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
		return
	}
	if len(got) > maxHeaderValue || len(got) < maxHeaderValue-2*utf8.UTFMax || !cutPrefix(want, got) {
		t.Fatalf("%s: %d bytes, not a bounded prefix of the %d-byte value", name, len(got), len(want))
	}
	if !utf8.ValidString(got) {
		t.Fatalf("%s is not valid UTF-8: cut inside a character", name)
	}
}

// coerceUTF8 is what encoding/json makes of a string: each invalid byte
// becomes U+FFFD.
func coerceUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // range yields U+FFFD for each invalid byte
	}
	return b.String()
}

func FuzzParseDeadLetter(f *testing.F) {
	// Seeds: headers of real dead letters, and malformed ones.
	add := func(h nats.Header) {
		v := make([]string, len(allDeadLetterHeaders))
		for i, k := range allDeadLetterHeaders {
			v[i] = h.Get(k)
		}
		f.Add(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16], v[17], v[18])
	}
	add(fullDeadLetter().Header())
	add(DeadLetter{Subject: "sessions.revok", Op: OpUnknown, Error: ErrorInfo{Class: ClassInvalid, Message: "no job type"}}.Header())
	bad := fullDeadLetter().Header()
	bad.Set(HeaderStreamSeq, "-1")
	bad.Set(HeaderHistory, `[{"at":"x"}]`)
	bad.Set(HeaderLastFailure, "9999-12-31T23:59:59-23:59")
	add(bad)
	long := fullDeadLetter()
	long.Error.Message = strings.Repeat("€\n", 600)
	for i := range 12 {
		long.History = append(long.History, Failure{At: time.Unix(int64(i), 0), Error: strings.Repeat("<\x01", 150)})
	}
	add(long.Header())

	f.Fuzz(func(t *testing.T, subject, seq, jobID, op, class, msg, status, code, clerkMsg, trace, field,
		attempts, deliveries, first, last, worker, history, redacted, replays string) {
		in := []string{subject, seq, jobID, op, class, msg, status, code, clerkMsg, trace, field,
			attempts, deliveries, first, last, worker, history, redacted, replays}

		// 1. Any header values: never a panic, and what is read is what
		// was there.
		h := nats.Header{}
		for i, k := range allDeadLetterHeaders {
			h.Set(k, in[i])
		}
		d, err := ParseDeadLetter(h)
		if subject == "" || class == "" {
			if !errors.Is(err, ErrNotDeadLetter) {
				t.Fatalf("without subject or class: err = %v, want ErrNotDeadLetter", err)
			}
		} else {
			if errors.Is(err, ErrNotDeadLetter) {
				t.Fatalf("ErrNotDeadLetter with subject %q and class %q", subject, class)
			}
			if d.Subject != subject || d.JobID != jobID || d.Worker != worker || d.Error.Message != msg ||
				d.Error.ClerkCode != code || d.Error.ClerkMessage != clerkMsg || d.Error.TraceID != trace ||
				d.Error.Field != field || string(d.Error.Class) != class {
				t.Fatalf("text headers not read as they are: %+v", d)
			}
			if (op == "" && d.Op != OpUnknown) || (op != "" && string(d.Op) != op) {
				t.Fatalf("Op = %q from header %q", d.Op, op)
			}
			if redacted != "" && strings.Join(d.Redacted, ",") != redacted {
				t.Fatalf("Redacted = %q from header %q", d.Redacted, redacted)
			}
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					if !strings.HasPrefix(line, "header ") {
						t.Fatalf("error line %q does not name its header", line)
					}
				}
			} else {
				valid := false
				for _, c := range ErrorClasses() {
					valid = valid || d.Error.Class == c
				}
				if !valid {
					t.Fatalf("class %q accepted", d.Error.Class)
				}
				for _, n := range []struct {
					s   string
					got int
				}{{status, d.Error.HTTPStatus}, {attempts, d.Attempts}, {deliveries, d.Deliveries}, {replays, d.Replays}} {
					if n.s != "" {
						if v, err := strconv.Atoi(n.s); err != nil || v != n.got || v < 0 {
							t.Fatalf("count %q read as %d", n.s, n.got)
						}
					}
				}
				if len(d.History) > 0 && history == "" {
					t.Fatal("history from nowhere")
				}
			}
		}

		// 2. A dead letter built from the same values: Header() gives
		// single-line, bounded values that always parse back.
		num := func(s string) int {
			if n, err := strconv.Atoi(s); err == nil && n >= 0 {
				return n
			}
			return len(s)
		}
		if subject == "" {
			subject = "sessions.revoke"
		}
		base := time.Unix(int64(num(first))%(1<<40), int64(len(last))).In(time.FixedZone("", 3600*(len(last)%13)))
		want := DeadLetter{
			Subject:    subject,
			StreamSeq:  uint64(num(seq)) << (len(seq) % 40),
			JobID:      jobID,
			Op:         Op(op),
			Error:      ErrorInfo{Class: ErrorClasses()[len(class)%len(ErrorClasses())], Message: msg, HTTPStatus: num(status), ClerkCode: code, ClerkMessage: clerkMsg, TraceID: trace, Field: field},
			Attempts:   num(attempts),
			Deliveries: num(deliveries),
			Worker:     worker,
			Replays:    num(replays),
		}
		if first != "" {
			want.FirstFailure = base
			want.LastFailure = base.Add(time.Duration(len(last)) * time.Millisecond)
		}
		for i := range len(history) % (MaxHistory + 5) {
			want.History = append(want.History, Failure{At: base.Add(time.Duration(i) * time.Second), Error: history, Status: i, Code: code, TraceID: trace})
		}
		for _, r := range strings.FieldsFunc(redacted, func(r rune) bool { return r == ',' || r == '\r' || r == '\n' }) {
			want.Redacted = append(want.Redacted, r)
		}
		hdr := want.Header()
		for k, vs := range hdr {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("header %s = %q spans lines", k, v)
				}
				if k != HeaderHistory && k != HeaderRedacted && len(v) > maxHeaderValue {
					t.Fatalf("header %s is %d bytes", k, len(v))
				}
			}
		}
		if len(hdr.Get(HeaderHistory)) > maxHistoryBytes {
			t.Fatalf("history header is %d bytes", len(hdr.Get(HeaderHistory)))
		}
		got, err := ParseDeadLetter(hdr)
		if err != nil {
			t.Fatalf("ParseDeadLetter(Header()) = %v\nheader %v", err, hdr)
		}
		checkBounded(t, "Subject", got.Subject, want.Subject)
		checkBounded(t, "JobID", got.JobID, want.JobID)
		checkBounded(t, "Worker", got.Worker, want.Worker)
		checkBounded(t, "Message", got.Error.Message, want.Error.Message)
		checkBounded(t, "ClerkCode", got.Error.ClerkCode, want.Error.ClerkCode)
		checkBounded(t, "ClerkMessage", got.Error.ClerkMessage, want.Error.ClerkMessage)
		checkBounded(t, "TraceID", got.Error.TraceID, want.Error.TraceID)
		checkBounded(t, "Field", got.Error.Field, want.Error.Field)
		if op == "" {
			if got.Op != OpUnknown {
				t.Fatalf("Op = %q, want unknown", got.Op)
			}
		} else {
			checkBounded(t, "Op", string(got.Op), op)
		}
		if got.StreamSeq != want.StreamSeq || got.Attempts != want.Attempts || got.Deliveries != want.Deliveries ||
			got.Replays != want.Replays || got.Error.HTTPStatus != want.Error.HTTPStatus || got.Error.Class != want.Error.Class {
			t.Fatalf("numbers changed:\n got  %+v\n want %+v", got, want)
		}
		if !got.FirstFailure.Equal(want.FirstFailure) || !got.LastFailure.Equal(want.LastFailure) {
			t.Fatalf("times changed: %v %v, want %v %v", got.FirstFailure, got.LastFailure, want.FirstFailure, want.LastFailure)
		}
		gotR, wantR := strings.Join(got.Redacted, ","), oneLineSpec(strings.Join(want.Redacted, ","))
		if n := len(want.Redacted); len(wantR) > maxHeaderValue {
			// Cut in its names: the header's own words that end it
			// (body, subject) are kept whole after them.
			for n > 0 && (want.Redacted[n-1] == "body" || want.Redacted[n-1] == "subject") {
				n--
			}
			if n > 0 && n < len(want.Redacted) {
				tail := "," + strings.Join(want.Redacted[n:], ",")
				if !strings.HasSuffix(gotR, tail) || len(gotR) > maxHeaderValue {
					t.Fatalf("Redacted = %q, want it to end %q", got.Redacted, tail)
				}
				gotR, wantR = strings.TrimSuffix(gotR, tail), oneLineSpec(strings.Join(want.Redacted[:n], ","))
			}
		}
		if !cutPrefix(wantR, gotR) || (len(wantR) <= maxHeaderValue && gotR != wantR) || (wantR != "" && gotR == "") {
			t.Fatalf("Redacted = %q, want %q", got.Redacted, want.Redacted)
		}
		if got.Replayable() != (len(want.Redacted) == 0) {
			t.Fatalf("Replayable() = %v with Redacted %q", got.Replayable(), want.Redacted)
		}
		if len(want.History) > 0 {
			if len(got.History) == 0 || len(got.History) > MaxHistory {
				t.Fatalf("%d failures kept of %d", len(got.History), len(want.History))
			}
			off := len(want.History) - len(got.History)
			for i, g := range got.History {
				w := want.History[off+i]
				if !g.At.Equal(w.At) || g.Status != w.Status ||
					!cutPrefix(coerceUTF8(w.Error), g.Error) || !cutPrefix(coerceUTF8(w.Code), g.Code) ||
					!cutPrefix(coerceUTF8(w.TraceID), g.TraceID) {
					t.Fatalf("History[%d] = %+v, want (a prefix of) failure %d %+v", i, g, off+i, w)
				}
			}
		} else if got.History != nil {
			t.Fatalf("History = %v, want none", got.History)
		}
	})
}
