package clerkapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/go-json-experiment/json/jsontext"
)

// Class sorts an error by what the caller should do about it.
type Class int

const (
	// Retryable errors may succeed if the same request is sent later.
	Retryable Class = iota + 1
	// Permanent errors are the request's fault: sending it again cannot
	// succeed.
	Permanent
	// Systemic errors are nobody's request's fault: Clerk rejects the
	// secret key or the key lacks rights or the API version sent, or the
	// base URL answers with a redirect. Stop sending until it is fixed.
	Systemic
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case Systemic:
		return "systemic"
	default:
		return "unknown"
	}
}

// ErrInvalidInput is wrapped by every error the client returns before
// sending a request because an argument is wrong (an empty or malformed id,
// a limit out of range, a missing required field). Such errors are
// Permanent.
var ErrInvalidInput = errors.New("invalid input")

// ErrUnconfirmed is wrapped by the error of a createSession or a
// RefreshSession that Clerk answered with a 2xx that is not the answer
// ("{}", "null", a proxy's own JSON) or whose body broke off before it was
// read, that was sent whole and never answered (the connection dropped or
// timed out before the answer came), or that a gateway in front of Clerk
// answered 502 or 504 (or a CDN 520 or 524) without Clerk's error body (it
// may have passed the request on and given up waiting): Clerk may have
// carried it out.
// Such errors are Permanent: sending a create again could create a second
// session (list the user's sessions before sending it again), sending a
// refresh again would use its refresh token a second time. A request that
// may be repeated (a revoke, a token, a list) is Retryable on such an
// answer.
var ErrUnconfirmed = errors.New("clerk may have carried out the request, whose answer did not come whole: a create may have made a session (list the user's sessions before sending it again), a refresh may have spent its refresh token")

// ErrorDetail is one entry of the errors array of a Clerk error answer.
type ErrorDetail struct {
	Code        string         `json:"code"`
	Message     string         `json:"message"`
	LongMessage string         `json:"long_message"`
	Meta        map[string]any `json:"meta,omitempty"`
}

// Error is the answer to a request that Clerk did not accept (any status
// outside 2xx). Body fields are empty when the answer was not Clerk's JSON
// error body.
type Error struct {
	// Op is the operation, e.g. "RevokeSession".
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Errors are Clerk's error details, in the order sent.
	Errors []ErrorDetail
	// TraceID is Clerk's clerk_trace_id, to quote to Clerk support.
	TraceID string
	// RetryAfter is the Retry-After header (at most 24 h), or 0 when
	// absent or unreadable.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clerk %s: HTTP %d", e.Op, e.StatusCode)
	// Only what the detail holds: a proxy's may lack either.
	if c := e.Code(); c != "" {
		b.WriteString(" " + c)
	}
	if m := e.Message(); m != "" {
		b.WriteString(": " + m)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " (trace %s)", e.TraceID)
	}
	return b.String()
}

// first is the first error detail, or a zero one when there is none.
func (e *Error) first() ErrorDetail {
	if len(e.Errors) == 0 {
		return ErrorDetail{}
	}
	return e.Errors[0]
}

// Code is the code of the first error detail, or "" when there is none.
func (e *Error) Code() string { return e.first().Code }

// Message is the message of the first error detail, or "".
func (e *Error) Message() string { return e.first().Message }

// HasCode reports whether any error detail carries code.
func (e *Error) HasCode(code string) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// Class sorts the answer; see the package documentation.
func (e *Error) Class() Class {
	// Two refusals are not about the key, and must not stop calls that
	// would succeed. A sign-in refused because the user is locked concerns
	// that user only. A 403 to LockUser or UnlockUser (the one error Clerk's
	// description lists for them) comes after Clerk accepted the key: the
	// instance's settings do not allow locking, or the key may not lock
	// users; either way only this operation is refused. A rejected key is a
	// 401, and stays Systemic.
	if e.HasCode("user_locked") ||
		(e.StatusCode == http.StatusForbidden && (e.Op == opLockUser || e.Op == opUnlockUser)) {
		return Permanent
	}
	if e.unconfirmed() {
		return Permanent
	}
	for _, d := range e.Errors {
		switch d.Code {
		case "clerk_key_invalid", "authentication_invalid", "authorization_invalid",
			"authorization_header_format_invalid",
			// The Clerk-API-Version the client sends (retired by Clerk, or
			// set wrongly with WithAPIVersion): every request is refused
			// alike, whatever it asks, until the client is changed.
			// Permanent, it dead-lettered every job one by one.
			"api_version_invalid":
			return Systemic
		}
	}
	switch s := e.StatusCode; {
	case s == http.StatusTooManyRequests, s >= 500:
		return Retryable
	case s >= 300 && s < 400:
		// Clerk's API does not redirect: a redirect (never followed) comes
		// from a base URL that is not the API's (http:// for https://, a
		// moved or mistyped host) or from something in front of Clerk. No
		// request can succeed until that is fixed, so no job is blamed:
		// retried, every job would spend its deliveries and end
		// dead-lettered as exhausted.
		return Systemic
	case s == http.StatusConflict:
		if e.HasCode("resource_locked") {
			return Retryable
		}
		return Permanent
	case s == http.StatusUnauthorized && e.Op == opRefresh && e.refreshValidation():
		return Permanent
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		return Systemic
	case s == http.StatusRequestTimeout:
		return Retryable
	default:
		return Permanent
	}
}

// unconfirmed reports a create or a refresh that a gateway in front of
// Clerk answered 502 or 504 with an answer of its own (not Clerk's error
// body), or a CDN 520 (the origin's answer was empty or broken) or 524
// (Cloudflare's "a timeout occurred": the request was sent, the origin did
// not answer in time): it may have passed the request on, Clerk carried it
// out, and the gateway gave up waiting or lost the answer. Sent again, it
// could make a second session or spend the refresh token twice (see
// ErrUnconfirmed). A 503 is a gateway that passed nothing on (as are a
// CDN's 521, 522 and 523: the origin refused, did not take or could not be
// reached by the connection), and Clerk's own 5xx answers say that Clerk
// did not carry the request out: all may be retried.
func (e *Error) unconfirmed() bool {
	if !unrepeatable(e.Op) || len(e.Errors) != 0 {
		return false
	}
	switch e.StatusCode {
	case http.StatusBadGateway, http.StatusGatewayTimeout, statusOriginError, statusOriginTimeout:
		return true
	}
	return false
}

// Statuses a CDN in front of Clerk (Cloudflare's numbering) answers after
// it sent the request on: the origin's answer was empty or broken (520),
// or did not come in time (524).
const (
	statusOriginError   = 520
	statusOriginTimeout = 524
)

// refreshValidation reports whether a 401 from RefreshSession is about the
// refresh request itself rather than the secret key.
func (e *Error) refreshValidation() bool {
	for _, d := range e.Errors {
		if strings.HasPrefix(d.Code, "session_refresh_") ||
			strings.HasPrefix(d.Code, "expired_session_token_") ||
			d.Code == "refresh_token_not_found" {
			return true
		}
	}
	return false
}

// ClassOf sorts any error returned by a Client. A nil error has class 0.
// Context cancellation is Retryable: the request was abandoned, not refused.
func ClassOf(err error) Class {
	if err == nil {
		return 0
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Class()
	}
	if errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrUnconfirmed) {
		return Permanent
	}
	// Anything else is the context's, or comes from the transport (a
	// network error, a connection reset, EOF, a truncated body): the
	// request may not have been processed.
	return Retryable
}

// RetryAfterOf returns the Retry-After an error carries, or 0.
func RetryAfterOf(err error) time.Duration {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.RetryAfter
	}
	return 0
}

// errorBody is Clerk's ClerkErrors JSON.
type errorBody struct {
	Errors  errorDetails `json:"errors"`
	TraceID string       `json:"clerk_trace_id"`
}

// errorDetails decodes the first maxErrorDetails entries of the errors
// array, without their meta, and skips the rest unread: an answer of up to
// maxResponseBytes made of tiny entries ({} repeated, or nested in a
// meta) decoded whole to gigabytes. encoding/json has checked that the
// array is valid JSON before it calls UnmarshalJSON, without allocating.
type errorDetails []ErrorDetail

func (d *errorDetails) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = nil
		return nil
	}
	// Read in place (a bytes.Buffer is not copied), as leniently as
	// encoding/json.
	dec := jsontext.NewDecoder(bytes.NewBuffer(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return &json.UnmarshalTypeError{Value: "non-array", Type: reflect.TypeFor[errorDetails]()}
	}
	out := errorDetails{}
	for len(out) < maxErrorDetails && dec.PeekKind() != ']' {
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		// No meta: free-form, nothing reads it, anything may hide in it;
		// encoding/json skips it without allocating.
		var x struct {
			Code        string `json:"code"`
			Message     string `json:"message"`
			LongMessage string `json:"long_message"`
		}
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		out = append(out, ErrorDetail{Code: x.Code, Message: x.Message, LongMessage: x.LongMessage})
	}
	*d = out
	return nil
}

// parseError builds the Error for a non-2xx answer. It never fails: a body
// that is not Clerk's JSON still yields the status. The answer is untrusted
// text: every field is cut to a bounded length and cleared of secrets (the
// given ones and anything shaped like a token or key, see package redact),
// so that an upstream echoing the request cannot put a secret in an error,
// a dead letter or a log line. The secrets come prepared (the client's key
// once): made for each field, their forms cost 25 allocations a field on
// every job Clerk refuses.
func parseError(op string, status int, header http.Header, body []byte, secrets redact.Known) *Error {
	e := &Error{Op: op, StatusCode: status, RetryAfter: parseRetryAfter(header.Get("Retry-After"), time.Now())}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		// Redacted before it is cut: a secret straddling the cut would
		// otherwise lose its end, and with it the exact match and the shape
		// that redaction looks for, leaving its first part behind.
		clean := func(s string, n int) string { return text.Truncate(secrets.Text(s), n) }
		for i := range eb.Errors {
			d := &eb.Errors[i]
			d.Code = clean(d.Code, 128)
			d.Message = clean(d.Message, 1024)
			d.LongMessage = clean(d.LongMessage, 1024)
		}
		e.Errors = eb.Errors
		e.TraceID = clean(eb.TraceID, 128)
	}
	return e
}

// maxErrorDetails bounds the error details kept from one answer.
const maxErrorDetails = 10

// maxRetryAfter bounds a Retry-After. A longer one is clamped to it, not
// discarded: a server asking for more than a day (or "1e9" seconds) asks
// for a long wait, and 0 would make it the 1 s of a 429 without one. The
// rate budget bounds the pause further (its max pause, 5 min).
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delta-seconds or an HTTP date, clamped to
// maxRetryAfter. Garbage, NaN, and values not above 0 are 0, so the result
// is never negative.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	// ErrRange: too large a number ("1e400") reads as +Inf, too small as 0.
	if secs, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case math.IsNaN(secs) || secs <= 0:
			return 0
		case secs >= maxRetryAfter.Seconds():
			return maxRetryAfter
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}
