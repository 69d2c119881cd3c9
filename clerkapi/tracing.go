package clerkapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// tracerName is the instrumentation scope of the client's spans.
const tracerName = "github.com/clerkjobs/clerkjobs/clerkapi"

// Attributes of a Clerk call span beyond the HTTP conventions.
const (
	// attrOperation is the operation in Clerk's OpenAPI description,
	// e.g. "RevokeSession".
	attrOperation = attribute.Key("clerk.operation")
	// attrTraceID is Clerk's clerk_trace_id, to quote to Clerk support.
	attrTraceID = attribute.Key("clerk.trace_id")
	// attrErrorCode is the code of Clerk's first error, e.g.
	// "resource_not_found".
	attrErrorCode = attribute.Key("clerk.error.code")
)

// traceIDHeader is where Clerk also sends its trace id.
const traceIDHeader = "Clerk-Trace-Id"

// routes are the URL templates of the operations (below the base URL), for
// span names and url.template: low-cardinality, and free of ids. Read-only.
var routes = map[string]string{
	opList:           "/sessions",
	opCreate:         "/sessions",
	opGet:            "/sessions/{session_id}",
	opRefresh:        "/sessions/{session_id}/refresh",
	opRevoke:         "/sessions/{session_id}/revoke",
	opToken:          "/sessions/{session_id}/tokens",
	opTokenFromTempl: "/sessions/{session_id}/tokens/{template_name}",
	opLockUser:       "/users/{user_id}/lock",
	opUnlockUser:     "/users/{user_id}/unlock",
}

// route is the URL template of a call to path (see routes).
func route(op, path string) string {
	if r, ok := routes[op]; ok {
		return r
	}
	// An operation added without an entry in routes: every segment that is a
	// Clerk id becomes {id}.
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if isID(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// WithTracerProvider makes the client start one OpenTelemetry client span
// per HTTP request to Clerk, a child of the span in the call's context. A
// nil or no-op provider (tracing off) adds no work at all.
//
// The span follows the OpenTelemetry HTTP client conventions: its name is
// the method and route template ("POST /v1/sessions/{session_id}/revoke");
// its attributes are http.request.method, url.template, server.address,
// server.port, http.response.status_code, error.type (the status code of a
// 4xx or 5xx; for a transport failure "timeout", "canceled",
// "connection_closed", "net.dial", "net.read", "net.write" or "_OTHER"),
// http.request.resend_count (from ContextWithAttempt), and clerk.operation,
// clerk.trace_id and clerk.error.code. 4xx and 5xx answers and transport
// errors set the span's status to Error.
//
// No span holds a secret: not the secret key, not a header, not a request
// or answer body (tokens, cookies, refresh tokens), not even the URL, whose
// ids and query (user ids) the route template replaces. The trace context
// is not sent to Clerk.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) error {
		c.tracer = nil
		if _, off := tp.(noop.TracerProvider); tp != nil && !off {
			c.tracer = tp.Tracer(tracerName)
		}
		return nil
	}
}

type attemptKey struct{}

// ContextWithAttempt returns ctx saying that the calls made with it are the
// attempt-th try of the same request (1 is the first). Client spans record
// attempt-1 as http.request.resend_count, so a retried job shows which of
// its Clerk calls were retries.
func ContextWithAttempt(ctx context.Context, attempt int) context.Context {
	return context.WithValue(ctx, attemptKey{}, attempt)
}

type noSpansKey struct{}

// ContextWithoutSpans returns ctx saying that the calls made with it start
// no span, whatever the sampler: for bulk work that the caller's own span
// sums up, such as the thousands of revocations of one revoke_all job.
func ContextWithoutSpans(ctx context.Context) context.Context {
	return context.WithValue(ctx, noSpansKey{}, true)
}

// startSpan starts the client span of one call to path (below the base
// URL).
func (c *Client) startSpan(ctx context.Context, op, method, path string) (context.Context, trace.Span) {
	if ctx.Value(noSpansKey{}) != nil {
		return ctx, noop.Span{}
	}
	tmpl := c.baseURL.Path + route(op, path)
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs,
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLTemplate(tmpl),
		semconv.ServerAddress(c.baseURL.Hostname()),
		semconv.ServerPort(serverPort(c.baseURL.Port(), c.baseURL.Scheme)),
		attrOperation.String(op),
	)
	if n, _ := ctx.Value(attemptKey{}).(int); n > 1 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(n-1))
	}
	return c.tracer.Start(ctx, method+" "+tmpl, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endSpan records the outcome of a call: resp is nil when no answer came,
// err is what the call returns, secrets what the request held (the key and
// the request's own secrets). The Clerk-Trace-Id header is upstream text
// like the error body: it is cleared of those and of anything shaped like
// a secret, before it is cut so that no piece of one is left.
func endSpan(span trace.Span, resp *http.Response, err error, secrets func() []string) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	var apiErr *Error
	errors.As(err, &apiErr)
	if resp != nil {
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
		traceID := resp.Header.Get(traceIDHeader)
		if traceID != "" {
			// A header may hold bytes that are not UTF-8, which OTLP's
			// protobuf encoding refuses: the export of the whole batch,
			// other jobs' spans with it, would fail.
			traceID = strings.ToValidUTF8(redact.Text(traceID, secrets()...), "\uFFFD")
		}
		if apiErr != nil && apiErr.TraceID != "" {
			traceID = apiErr.TraceID // cleared by parseError
		}
		if traceID != "" {
			span.SetAttributes(attrTraceID.String(text.Truncate(traceID, 128)))
		}
	}
	switch {
	case apiErr != nil:
		status := strconv.Itoa(apiErr.StatusCode)
		span.SetAttributes(semconv.ErrorTypeKey.String(status))
		description := "HTTP " + status
		if code := text.Truncate(apiErr.Code(), 128); code != "" {
			span.SetAttributes(attrErrorCode.String(code))
			description += " " + code
		}
		span.SetStatus(codes.Error, description)
	case err != nil:
		// The error's text may hold anything the transport saw: the span
		// gets only its kind.
		kind := errorType(err)
		span.SetAttributes(semconv.ErrorTypeKey.String(kind))
		span.SetStatus(codes.Error, kind)
	}
}

// errorType is a low-cardinality name of a transport error.
func errorType(err error) string {
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection_closed"
	case errors.As(err, &opErr):
		return "net." + opErr.Op // net.dial (refused, unreachable), net.read, net.write
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

func serverPort(port, scheme string) int {
	if p, err := strconv.Atoi(port); err == nil {
		return p
	}
	if scheme == "http" {
		return 80
	}
	return 443
}
