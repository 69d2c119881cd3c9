package worker

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// encodeResult is json.Marshal(r), byte for byte, without reflection and
// without re-scanning the embedded Clerk answer.
//
// json.Marshal compacts (and HTML-escapes) every json.RawMessage it embeds,
// which scans the answer byte by byte: that was three quarters of the cost
// of storing a result. When trusted is true the raw fields (Result,
// Secret) are known to come from json.Marshal, whose output is already
// compact and escaped, so they are copied as they are. Anything else
// (an untrusted raw field, an error, a time or number json.Marshal would
// refuse) goes to json.Marshal, so the output and the errors are always
// exactly json.Marshal's.
func encodeResult(r *jobs.Result, trusted bool) ([]byte, error) {
	if !trusted || r.Error != nil {
		return json.Marshal(r)
	}
	b := make([]byte, 0, 320+len(r.JobID)+len(r.Worker)+len(r.Result)+len(r.Secret))
	b = append(b, `{"job_id":`...)
	b = appendJSONString(b, r.JobID)
	b = append(b, `,"op":`...)
	b = appendJSONString(b, string(r.Op))
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, string(r.Outcome))
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"deliveries":`...)
	b = strconv.AppendInt(b, int64(r.Deliveries), 10)
	if r.StreamSeq != 0 {
		b = append(b, `,"stream_seq":`...)
		b = strconv.AppendUint(b, r.StreamSeq, 10)
	}
	var ok bool
	if !r.EnqueuedAt.IsZero() {
		b = append(b, `,"enqueued_at":`...)
		if b, ok = appendJSONTime(b, r.EnqueuedAt); !ok {
			return json.Marshal(r)
		}
	}
	if !r.StartedAt.IsZero() {
		b = append(b, `,"started_at":`...)
		if b, ok = appendJSONTime(b, r.StartedAt); !ok {
			return json.Marshal(r)
		}
	}
	b = append(b, `,"finished_at":`...)
	if b, ok = appendJSONTime(b, r.FinishedAt); !ok {
		return json.Marshal(r)
	}
	b = append(b, `,"duration_ms":`...)
	if b, ok = appendJSONFloat(b, r.DurationMS); !ok {
		return json.Marshal(r)
	}
	if r.Worker != "" {
		b = append(b, `,"worker":`...)
		b = appendJSONString(b, r.Worker)
	}
	if len(r.Result) != 0 {
		b = append(b, `,"result":`...)
		b = append(b, r.Result...)
	}
	if r.AlreadyRevoked {
		b = append(b, `,"already_revoked":true`...)
	}
	if r.SecretDelivered {
		b = append(b, `,"secret_delivered":true`...)
	}
	if len(r.Secret) != 0 {
		b = append(b, `,"secret":`...)
		b = append(b, r.Secret...)
	}
	return append(b, '}'), nil
}

// appendJSONTime appends t as time.Time.MarshalJSON does; ok is false where
// MarshalJSON fails (a year outside 0-9999, an offset of 24 h or more).
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	switch {
	case len(b) < n0+5 || b[n0+4] != '-':
		return b, false
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		h := b[len(b)-len("07:00"):]
		if ('0' <= c && c <= '9') || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return b, false
		}
	}
	return append(b, '"'), true
}

// appendJSONFloat appends f as encoding/json does (ES6 number formatting);
// ok is false for NaN and infinities, which json.Marshal refuses.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping (json.Marshal's default): <, > and & as \u003c..., control
// characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
