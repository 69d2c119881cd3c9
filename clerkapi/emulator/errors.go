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
	// html, when set, is sent as text/html instead of body: a page that
	// is not Clerk's (GatewayErrorRate).
	html   []byte
	header http.Header
	fault  string
}

// withFault is r marked as the answer of an injected failure.
func (r reply) withFault(fault string) reply {
	r.fault = fault
	return r
}

// methodNotAllowed is 405 with the Allow header.
func (e *Emulator) methodNotAllowed(r *http.Request, allow string) reply {
	rep := e.fail(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed",
		r.Method+" is not allowed on "+r.URL.Path+"; use "+allow+".", nil)
	rep.header.Set("Allow", allow)
	return rep
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
	trace := e.randFrom("0123456789abcdef", 32)
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

// statusErrors are the code and message statusError gives a status;
// read-only.
var statusErrors = map[int][2]string{
	400: {"malformed_request_parameters", "bad request"},
	401: {"authentication_invalid", "Unauthorized request"},
	403: {"authorization_invalid", "Unauthorized request"},
	404: {"resource_not_found", "not found"},
	409: {"resource_locked", "resource locked"},
	413: {"request_body_too_large", "request body too large"},
	415: {"unsupported_content_type", "unsupported content type"},
	422: {"form_param_value_invalid", "is invalid"},
	429: {"too_many_requests", "Too many requests"},
	500: {"internal_clerk_error", "Oops, an unexpected error occurred"},
	502: {"bad_gateway", "bad gateway"},
	503: {"service_unavailable", "service unavailable"},
	504: {"gateway_timeout", "gateway timeout"},
}

// statusError is the reply for a status forced by FailSession or an
// injected 5xx: a code that suits the status, and Retry-After on 429 and
// 503.
func (e *Emulator) statusError(status int) reply {
	code, msg := "emulated_failure", http.StatusText(status)
	if cm, ok := statusErrors[status]; ok {
		code, msg = cm[0], cm[1]
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
