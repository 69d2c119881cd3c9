package worker

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// tracerName names the worker's spans' instrumentation scope.
const tracerName = "github.com/clerkjobs/clerkjobs/worker"

// newTracer is the worker's tracer from tp (a no-op one without), looked
// up once: a provider's Tracer takes its lock. on is false when its spans
// are no-ops: no provider, or OpenTelemetry's no-op one (cmd/worker's
// with no OTEL_* variable).
func newTracer(tp trace.TracerProvider) (_ trace.Tracer, on bool) {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	_, off := tp.(noop.TracerProvider)
	return tp.Tracer(tracerName, trace.WithInstrumentationVersion(Version)), !off
}

// startDelivery starts the span of one delivery: a child of the job
// message's traceparent (a new trace without one; for a tenant's job, a
// new trace linked to it: see untrusted), following the OpenTelemetry
// messaging conventions. Everything on it is bounded: the
// subject is cut, the job id was checked.
func (w *Worker) startDelivery(ctx context.Context, d *delivery, j *job) (context.Context, trace.Span) {
	ctx = tracing.Extract(ctx, d.headers())
	if !w.tracing {
		// The delivery keeps the publisher's trace context, for its log
		// lines and records, and builds none of the span's attributes:
		// 2 µs and 6 allocations a job for a span no one keeps.
		//
		// Without trace headers ctx still holds whatever span Run's
		// context had: a program that traces with its own provider may
		// run the worker inside one of its recording spans. As the no-op
		// tracer's Start did, the delivery gets that span's context in a
		// span that records nothing, so that ending the delivery does not
		// end the program's span, nor set the delivery's attributes on it.
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			ctx = trace.ContextWithSpanContext(ctx, span.SpanContext())
			span = trace.SpanFromContext(ctx)
		}
		return ctx, span
	}
	name := "process " + w.cfg.Topology.Subjects.TenantJob(j.Key.Tenant, j.Op)
	if j.Op == jobs.OpUnknown {
		name = "process (unknown subject)"
	}
	opts := append(untrusted(ctx, j.Tenant), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.operation.name", "process"),
		// The subject is the publisher's bytes, which NATS does not hold
		// to UTF-8: OTLP's protobuf encoding refuses a string that is not,
		// and with it the export of the whole batch. A URL's password in
		// it is hidden as the dead letter hides it (redact.All).
		attribute.String("messaging.destination.name", text.Truncate(strings.ToValidUTF8(redact.All(d.msg.Subject()), "\uFFFD"), 256)),
		attribute.String("messaging.consumer.group.name", w.cfg.Topology.Consumer),
		attribute.Int("messaging.message.body.size", len(d.data())),
		attribute.String("clerkjobs.job.op", string(j.Op)),
		attribute.Int("clerkjobs.delivery", j.Delivery),
		attribute.Int64("clerkjobs.stream.sequence", int64(j.Seq)),
	))
	ctx, span := w.tracer.Start(ctx, name, opts...)
	if j.Key.Tenant != "" {
		span.SetAttributes(attribute.String("clerkjobs.tenant", j.Key.Tenant))
	}
	return ctx, span
}

// untrusted returns the options that keep a tenant's job out of the trace
// its traceparent (in ctx) names: a tenant writes that header as it likes,
// another tenant's trace id as easily as its own, and its spans would then
// show in that tenant's trace. The job's spans start a trace of their own
// (sampled as a new trace), linked to the span the job named. A job
// outside tenants, or without a traceparent, gets none.
func untrusted(ctx context.Context, tenant string) []trace.SpanStartOption {
	sc := trace.SpanContextFromContext(ctx)
	if tenant == "" || !sc.IsRemote() {
		return nil
	}
	return []trace.SpanStartOption{trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc})}
}

// endDelivery says on the delivery span how it ended.
func endDelivery(j *job, outcome string, info *jobs.ErrorInfo) {
	span := trace.SpanFromContext(j.ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(
		attribute.String("messaging.message.id", j.ID),
		attribute.Int("clerkjobs.attempts", j.Attempts),
		attribute.String("clerkjobs.outcome", outcome),
		attribute.Float64("clerkjobs.rate_limit.wait_ms", float64(j.rateWait.Load())/1e6),
	)
	switch {
	case info != nil:
		span.SetAttributes(attribute.String("clerkjobs.error.class", string(info.Class)), attribute.String("error.type", string(info.Class)))
		span.SetStatus(codes.Error, string(info.Class))
	case outcome != string(jobs.Succeeded) && outcome != "already_recorded":
		span.SetStatus(codes.Error, outcome)
	}
}

// withTrace sets the trace headers of the job's delivery span on a record
// or reply, so whoever reads it continues the same trace.
func withTrace(j *job, m *nats.Msg) *nats.Msg {
	if j != nil && j.ctx != nil {
		tracing.Inject(j.ctx, m)
	}
	return m
}
