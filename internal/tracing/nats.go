package tracing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// The trace headers of a message, as W3C spells them: lower case.
const (
	// TraceparentHeader carries the trace id, the parent span id and the
	// sampled flag: "00-<32 hex>-<16 hex>-01".
	TraceparentHeader = "traceparent"
	// TracestateHeader carries vendor data along with traceparent.
	TracestateHeader = "tracestate"
	// BaggageHeader carries W3C Baggage: key=value pairs every service
	// on the way can read. Never put a secret in it.
	BaggageHeader = "baggage"
)

// Inject writes the trace context and baggage of ctx into msg's headers
// (traceparent, tracestate, baggage), replacing any it had in any letter
// case, so a record built from a job's headers carries the worker's span
// and not the publisher's. When ctx carries neither a span nor baggage the
// message carries no trace headers. A nil msg.Header is allocated only when
// there is something to write.
//
// It differs from propagation.HeaderCarrier(http.Header(msg.Header)) in
// three ways that matter on NATS: NATS headers are case-sensitive and
// http.Header writes "Traceparent", which NATS clients in other languages
// (and nats-server's own message tracing) look up as "traceparent"; it
// cannot write into a nil header; and it does not depend on the global
// propagator, which is a no-op unless a program sets one.
func Inject(ctx context.Context, msg *nats.Msg) {
	if msg.Header != nil {
		c := headerCarrier(msg.Header)
		c.del(TraceparentHeader)
		c.del(TracestateHeader)
		c.del(BaggageHeader)
	}
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	c := headerCarrier(msg.Header)
	propagation.TraceContext{}.Inject(ctx, c)
	propagation.Baggage{}.Inject(ctx, c)
}

// Extract returns ctx with the remote span context and baggage of a
// message's headers, found whatever their letter case. A span started
// from the returned context is a child of the publisher's span; without
// valid trace headers it starts a new trace. A nil header returns ctx.
//
// What a publisher sends along travels on: the worker writes it into every
// record and reply of the job. So a baggage member, or a tracestate, that
// holds secret-shaped text (a JWT, a Clerk key, a session cookie, a bearer
// token), as written or percent- or form-decoded, is left out here,
// whoever put it there.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	c := headerCarrier(h)
	ctx = propagation.TraceContext{}.Extract(ctx, c)
	ctx = propagation.Baggage{}.Extract(ctx, c)
	if b := baggage.FromContext(ctx); b.Len() > 0 {
		for _, m := range b.Members() {
			if secretMember(m) {
				b = b.DeleteMember(m.Key())
			}
		}
		ctx = baggage.ContextWithBaggage(ctx, b)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.TraceState().Len() > 0 && secretText(sc.TraceState().String()) {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc.WithTraceState(trace.TraceState{}))
	}
	return ctx
}

// secretMember reports whether a baggage member holds secret-shaped text:
// in its key, its value, or its properties, as written or percent-decoded
// (a property's value travels percent-encoded, "Bearer%20…", "sk%5Flive…",
// and whoever reads it decodes it), or form-decoded: Python's propagator
// writes a space as '+' ("Bearer+…") and reads '+' as one. A member that
// does not decode is left out too.
func secretMember(m baggage.Member) bool {
	return redact.Looks(m.Key()) || redact.Looks(m.Value()) || secretText(m.String())
}

// secretText reports whether s holds secret-shaped text as written,
// percent-decoded or form-decoded, or does not decode. A tracestate is
// read the same way as a baggage member: its values are opaque, and a
// vendor (or a publisher) may percent-encode what it puts in them.
func secretText(s string) bool {
	decoded, err := url.PathUnescape(s)
	form, ferr := url.QueryUnescape(s)
	return err != nil || ferr != nil || redact.Looks(s) || redact.Looks(decoded) || redact.Looks(form)
}

// StartSend starts the PRODUCER span of publishing m, "send <subject>",
// with the messaging attributes, from the tracer provider of the span in
// ctx (none: a no-op span, nothing recorded). The caller injects the
// returned context into m (Inject) and ends the span once the publish is
// acknowledged.
func StartSend(ctx context.Context, m *nats.Msg, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	opts = append([]trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "send"),
		attribute.String("messaging.destination.name", m.Subject),
		attribute.String("messaging.message.id", m.Header.Get("Nats-Msg-Id")),
	)}, opts...)
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(scope).Start(ctx, "send "+m.Subject, opts...)
}

// scope names the spans this package starts for its callers.
const scope = "github.com/clerkjobs/clerkjobs"

// ContextWithTraceparent returns ctx continuing the trace of a W3C
// traceparent (and tracestate, which may be empty): what `publish
// --traceparent` gives a shell script that already has a trace. Unlike the
// propagator, which ignores what it cannot parse, it reports a malformed
// value, and a tracestate holding secret-shaped text (as Extract reads it).
func ContextWithTraceparent(ctx context.Context, traceparent, tracestate string) (context.Context, error) {
	c := propagation.MapCarrier{TraceparentHeader: strings.TrimSpace(traceparent)}
	if tracestate != "" && secretText(tracestate) {
		// Every span the caller exports would carry it, as its trace
		// state, and so would the jobs it publishes.
		return ctx, errors.New("tracestate holds a key, a token or a cookie (or text that does not percent-decode); not repeated here: it would travel on every span and job")
	}
	if tracestate != "" {
		c[TracestateHeader] = tracestate
	}
	out := propagation.TraceContext{}.Extract(ctx, c)
	if !trace.SpanContextFromContext(out).IsValid() {
		return ctx, fmt.Errorf("traceparent %q is not a W3C trace context: want 00-<32 hex digits trace id>-<16 hex digits span id>-<2 hex digits flags>, e.g. 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", text.Truncate(redact.URLCredentials(traceparent), 80))
	}
	return out, nil
}

// headerCarrier adapts nats.Header to the propagators: it writes the keys
// as given (the propagators give them in lower case) and reads them in any
// case.
type headerCarrier nats.Header

var (
	_ propagation.TextMapCarrier = headerCarrier(nil)
	_ propagation.ValuesGetter   = headerCarrier(nil)
)

func (h headerCarrier) Get(key string) string {
	if v := h.Values(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns the values of key, those under its exact spelling first.
func (h headerCarrier) Values(key string) []string {
	out := h[key]
	for k, v := range h {
		if k != key && strings.EqualFold(k, key) {
			out = append(out[:len(out):len(out)], v...) // never append into the header's own slice
		}
	}
	return out
}

func (h headerCarrier) Set(key, value string) {
	h.del(key)
	h[key] = []string{value}
}

func (h headerCarrier) Keys() []string { return slices.Collect(maps.Keys(h)) }

// del deletes key in every letter case.
func (h headerCarrier) del(key string) {
	for k := range h {
		if strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
}
