package emulator

import (
	"net/http"
	"strconv"
)

// reply is what a handler answers: a status, a JSON body (nil for none) and
// extra headers. fault names the injected failure behind it, for the call
// log.
type reply struct {
	status int
	body   any
	header http.Header
	fault  string
}

// clerkError and clerkErrors are Clerk's ClerkErrors body. meta is always
// an object, never null.
type clerkError struct {
	Message     string         `json:"message"`
	LongMessage string         `json:"long_message"`
	Code        string         `json:"code"`
	Meta        map[string]any `json:"meta"`
}

type clerkErrors struct {
	Errors  []clerkError   `json:"errors"`
	Meta    map[string]any `json:"meta"`
	TraceID string         `json:"clerk_trace_id"`
}

// fail builds an error reply with one error and a fresh trace id, also
// sent as the Clerk-Trace-Id header as Clerk does.
func (e *Emulator) fail(status int, code, message, long string, meta map[string]any) reply {
	if meta == nil {
		meta = map[string]any{}
	}
	trace := e.traceID()
	return reply{
		status: status,
		body: clerkErrors{
			Errors:  []clerkError{{Message: message, LongMessage: long, Code: code, Meta: meta}},
			Meta:    map[string]any{},
			TraceID: trace,
		},
		header: http.Header{"Clerk-Trace-Id": {trace}},
	}
}

func (e *Emulator) notFound(long string) reply {
	return e.fail(http.StatusNotFound, "resource_not_found", "not found", long, nil)
}

// paramError is a 422 about one body or query parameter.
func (e *Emulator) paramError(code, param, message, long string) reply {
	return e.fail(http.StatusUnprocessableEntity, code, message, long, map[string]any{"param_name": param})
}

func (e *Emulator) paramMissing(param string) reply {
	return e.paramError("form_param_missing", param, param+" must be included",
		param+" must be included in the request")
}

func (e *Emulator) paramValueInvalid(param, long string) reply {
	return e.paramError("form_param_value_invalid", param, "is invalid", long)
}

func (e *Emulator) paramTypeInvalid(param, want string) reply {
	return e.paramError("form_param_type_invalid", param, "has an invalid type",
		param+" must be "+want)
}

func (e *Emulator) paramFormatInvalid(param, long string) reply {
	return e.paramError("form_param_format_invalid", param, "is invalid", long)
}

// statusError is the reply for a status forced by FailSession or an
// injected 5xx: a code that suits the status, and Retry-After on 429 and
// 503.
func (e *Emulator) statusError(status int) reply {
	code, msg := "emulated_failure", http.StatusText(status)
	switch status {
	case 400:
		code, msg = "malformed_request_parameters", "bad request"
	case 401:
		code, msg = "authentication_invalid", "Unauthorized request"
	case 403:
		code, msg = "authorization_invalid", "Unauthorized request"
	case 404:
		code, msg = "resource_not_found", "not found"
	case 409:
		code, msg = "resource_locked", "resource locked"
	case 413:
		code, msg = "request_body_too_large", "request body too large"
	case 415:
		code, msg = "unsupported_content_type", "unsupported content type"
	case 422:
		code, msg = "form_param_value_invalid", "is invalid"
	case 429:
		code, msg = "too_many_requests", "Too many requests"
	case 500:
		code, msg = "internal_clerk_error", "Oops, an unexpected error occurred"
	case 502:
		code, msg = "bad_gateway", "bad gateway"
	case 503:
		code, msg = "service_unavailable", "service unavailable"
	case 504:
		code, msg = "gateway_timeout", "gateway timeout"
	}
	if msg == "" {
		msg = "error " + strconv.Itoa(status)
	}
	r := e.fail(status, code, msg, "The Clerk emulator was told to answer "+strconv.Itoa(status)+".", nil)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		r.header.Set("Retry-After", "1")
	}
	return r
}
