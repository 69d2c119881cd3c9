// Package tracing sets up OpenTelemetry tracing for the clerkjobs programs
// from the standard OTEL_* environment variables, and carries trace context
// through NATS message headers.
//
// A program calls New once at start and Shutdown before it exits:
//
//	tp, err := tracing.New(ctx, tracing.WithServiceName("clerkjobs-worker"))
//	if err != nil { /* a *ConfigError: print it, exit 2 */ }
//	defer tp.Shutdown(shutdownCtx) // flushes the spans still buffered
//	clerk, _ := clerkapi.New(..., clerkapi.WithTracerProvider(tp.TracerProvider()))
//
// With no OTEL_* variable set, tracing is off: TracerProvider is a no-op
// provider, nothing is exported and no goroutine runs, so every span costs
// a few nanoseconds. Tracing is on when OTEL_TRACES_EXPORTER names an
// exporter, or when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). The OpenTelemetry specification makes
// "otlp" the default exporter even when nothing is set; a worker started
// during an incident without a collector would then retry exports to
// localhost forever, so here an unconfigured program exports nothing.
//
// Every variable is read from the process environment, as the
// OpenTelemetry SDK and exporters read them. New validates the ones that
// decide what happens (docs/tracing.md lists them) and reports a bad value
// as a *ConfigError; the exporters themselves read the transport settings
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE, …) and
// the SDK the batching (OTEL_BSP_*) and span limits (OTEL_SPAN_*).
//
// Trace context travels in message headers as W3C Trace Context
// (traceparent, tracestate) and W3C Baggage (baggage), whatever
// OTEL_PROPAGATORS says: the header names are part of the message contract
// that publishers in any language rely on. See Inject and Extract.
package tracing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// The environment variables New reads itself. The exporters and the SDK
// read more (see the package documentation).
const (
	envSDKDisabled         = "OTEL_SDK_DISABLED"
	envTracesExporter      = "OTEL_TRACES_EXPORTER"
	envEndpoint            = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint      = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol            = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol      = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envSampler             = "OTEL_TRACES_SAMPLER"
	envSamplerArg          = "OTEL_TRACES_SAMPLER_ARG"
	envResourceAttributes  = "OTEL_RESOURCE_ATTRIBUTES"
	envServiceName         = "OTEL_SERVICE_NAME"
	protocolHTTP           = "http/protobuf"
	protocolGRPC           = "grpc"
	exporterOTLP           = "otlp"
	exporterConsole        = "console"
	exporterNone           = "none"
	defaultSamplerName     = "parentbased_always_on"
	supportedSamplersHint  = "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
	supportedExportersHint = "otlp, console or none"
)

// ConfigError is a bad OTEL_* setting. Its message names the variable, says
// what is wrong and what would be right; programs print it and exit 2.
type ConfigError struct {
	// Variable is the environment variable, e.g. "OTEL_TRACES_SAMPLER".
	Variable string
	// Problem says what is wrong and what to do, without the value when the
	// value may hold a credential.
	Problem string
	// Err is the underlying error, if any.
	Err error
}

// Error names the variable and the problem. A problem quotes the value it
// refuses where that helps; a secret pasted into the wrong variable (a
// Clerk key, a JWT) is taken out, since the worker prints this error to its
// log.
//
// So is the password or token of a URL pasted there, as redact.URLCredentials
// shows it (also when the quote is cut short before the URL's @).
func (e *ConfigError) Error() string {
	return e.Variable + ": " + redact.All(e.Problem)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Option configures New.
type Option func(*options)

type options struct {
	serviceName    string
	serviceVersion string
	console        io.Writer
}

// WithServiceName sets service.name when OTEL_SERVICE_NAME (or service.name
// in OTEL_RESOURCE_ATTRIBUTES) does not: "clerkjobs-worker", say.
func WithServiceName(name string) Option { return func(o *options) { o.serviceName = name } }

// WithServiceVersion sets service.version, unless OTEL_RESOURCE_ATTRIBUTES
// does.
func WithServiceVersion(v string) Option { return func(o *options) { o.serviceVersion = v } }

// WithConsoleWriter sets where OTEL_TRACES_EXPORTER=console writes its JSON
// lines. The default is standard error: standard output carries the
// worker's logs and the publish command's results, which scripts parse.
func WithConsoleWriter(w io.Writer) Option { return func(o *options) { o.console = w } }

// Provider is the tracing set-up of one process.
type Provider struct {
	tp          trace.TracerProvider
	sdk         *sdktrace.TracerProvider // nil when tracing is off
	description string
}

// New builds the Provider the OTEL_* environment asks for. It fails with a
// *ConfigError when a variable has a value it cannot honour, and with the
// exporter's error when an exporter cannot be built. When tracing is off it
// starts nothing.
func New(ctx context.Context, opts ...Option) (*Provider, error) {
	o := options{console: os.Stderr}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := readConfig()
	if err != nil {
		return nil, err
	}
	if len(cfg.exporters) == 0 {
		return &Provider{tp: noop.NewTracerProvider(), description: cfg.off}, nil
	}
	res, err := newResource(ctx, o)
	if err != nil {
		return nil, err
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(cfg.sampler)}
	var built []sdktrace.SpanExporter
	for _, name := range cfg.exporters {
		exp, err := newExporter(ctx, name, cfg.protocol, o.console)
		if err != nil {
			for _, b := range built {
				_ = b.Shutdown(ctx)
			}
			return nil, fmt.Errorf("tracing: start the %s exporter: %w", name, err)
		}
		built = append(built, exp)
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	sdk := sdktrace.NewTracerProvider(tpOpts...)
	return &Provider{tp: sdk, sdk: sdk, description: cfg.describe(res)}, nil
}

// TracerProvider is what instrumented code takes: a no-op provider when
// tracing is off.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// String describes the set-up for the start-up log line, e.g.
// "otlp (grpc) to http://collector:4317, sampler parentbased_traceidratio 0.01,
// service clerkjobs-worker". It never shows credentials or headers.
func (p *Provider) String() string { return p.description }

// Shutdown exports the spans still buffered and stops the exporters,
// waiting at most until ctx ends. Spans started afterwards are dropped.
// It does nothing when tracing is off, and may be called more than once.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush and stop the exporters: %w", err)
	}
	return nil
}

// config is what the environment asks for.
type config struct {
	exporters   []string // empty: tracing off
	off         string   // why tracing is off, for String
	protocol    string
	endpoint    string // shown by String; "" for the exporter's default
	sampler     sdktrace.Sampler
	samplerDesc string
}

func readConfig() (config, error) {
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv(envSDKDisabled))); v {
	case "", "false":
	case "true":
		return config{off: "tracing off (" + envSDKDisabled + "=true)"}, nil
	default:
		return config{}, &ConfigError{Variable: envSDKDisabled, Problem: fmt.Sprintf("%q is not a boolean: set true to turn tracing off, or false", text.Truncate(v, 40))}
	}

	var cfg config
	exporters, err := readExporters()
	if err != nil {
		return cfg, err
	}
	switch {
	case len(exporters) == 1 && exporters[0] == exporterNone:
		cfg.off = "tracing off (" + envTracesExporter + "=none)"
		return cfg, nil
	case len(exporters) == 0:
		if os.Getenv(envEndpoint) == "" && os.Getenv(envTracesEndpoint) == "" {
			cfg.off = "tracing off (no OTEL_TRACES_EXPORTER or OTLP endpoint set)"
			return cfg, nil
		}
		exporters = []string{exporterOTLP}
	}

	if err := refuseSecrets(); err != nil {
		return cfg, err
	}
	if slices.Contains(exporters, exporterOTLP) {
		if cfg.protocol, err = readProtocol(); err != nil {
			return cfg, err
		}
		if cfg.endpoint, err = readEndpoint(cfg.protocol); err != nil {
			return cfg, err
		}
	}
	if cfg.sampler, cfg.samplerDesc, err = readSampler(); err != nil {
		return cfg, err
	}
	cfg.exporters = exporters
	return cfg, nil
}

// refuseSecrets refuses a variable whose value goes into every span or
// the start-up log line (the service name and resource attributes, the
// collector's address) and is shaped like a secret: a Clerk key pasted
// into the wrong variable would be exported with every span. The value is
// not repeated. Resource attribute values travel percent-encoded, and are
// read decoded; a collector's password or token in its URL's user
// information is one by design, and never shown.
func refuseSecrets() error {
	for _, name := range []string{envServiceName, envResourceAttributes, envEndpoint, envTracesEndpoint} {
		v := os.Getenv(name)
		decoded, err := url.PathUnescape(v)
		if err != nil {
			decoded = v
		}
		if redact.Looks(redact.URLs(v)) || redact.Looks(redact.URLs(decoded)) {
			return &ConfigError{Variable: name, Problem: fmt.Sprintf("its value (%d characters) is shaped like a secret (a Clerk key or a JWT), which every span would carry, so it is not repeated here: the Clerk secret key goes only in CLERK_SECRET_KEY", len(v))}
		}
	}
	return nil
}

// readExporters reads the comma-separated OTEL_TRACES_EXPORTER.
func readExporters() ([]string, error) {
	var out []string
	for v := range strings.SplitSeq(os.Getenv(envTracesExporter), ",") {
		v = strings.ToLower(strings.TrimSpace(v))
		switch v {
		case "":
			continue
		case exporterOTLP, exporterConsole, exporterNone:
		default:
			return nil, &ConfigError{Variable: envTracesExporter, Problem: fmt.Sprintf("exporter %q is not supported: use %s (comma-separated for several)", text.Truncate(v, 40), supportedExportersHint)}
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > 1 && slices.Contains(out, exporterNone) {
		return nil, &ConfigError{Variable: envTracesExporter, Problem: "none cannot be combined with another exporter: set none alone to export nothing"}
	}
	return out, nil
}

// readProtocol reads OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, falling back to
// OTEL_EXPORTER_OTLP_PROTOCOL, as the specification says.
func readProtocol() (string, error) {
	name, v := envTracesProtocol, strings.TrimSpace(os.Getenv(envTracesProtocol))
	if v == "" {
		name, v = envProtocol, strings.TrimSpace(os.Getenv(envProtocol))
	}
	switch v {
	case "":
		return protocolHTTP, nil
	case protocolHTTP, protocolGRPC:
		return v, nil
	case "http/json":
		return "", &ConfigError{Variable: name, Problem: "http/json is not supported by the Go OTLP exporter: use http/protobuf (port 4318) or grpc (port 4317)"}
	default:
		return "", &ConfigError{Variable: name, Problem: fmt.Sprintf("protocol %q is not supported: use http/protobuf (port 4318) or grpc (port 4317)", text.Truncate(v, 40))}
	}
}

// readEndpoint checks the endpoint variables and returns the one the
// exporter will use (with credentials redacted), or "" for its default.
// The exporters read these variables themselves, but fall back to
// localhost, silently, on a value they cannot parse.
func readEndpoint(protocol string) (string, error) {
	shown := ""
	for _, name := range []string{envEndpoint, envTracesEndpoint} {
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			example := "http://otel-collector:4318"
			if protocol == protocolGRPC {
				example = "http://otel-collector:4317"
			}
			problem := "must be an absolute http:// or https:// URL such as " + example + " (http:// sends without TLS)"
			if !strings.Contains(v, "@") { // a value with user info may hold a password
				// Nor is a query or fragment shown (?api_key=…), as for a
				// usable endpoint below.
				shown := v
				if i := strings.IndexAny(v, "?#"); i >= 0 {
					shown = v[:i] + v[i:i+1] + text.Ellipsis
				}
				problem = fmt.Sprintf("%q %s", text.Truncate(shown, 80), problem)
			}
			return "", &ConfigError{Variable: name, Problem: problem, Err: err}
		}
		// url.URL.Redacted hides only a password: a collector's token
		// given as the user (https://TOKEN@collector) would be shown. The
		// query and fragment, which the exporter ignores, may hold one
		// too (?api_key=…): they are not shown.
		bare := *u
		bare.RawQuery, bare.ForceQuery, bare.Fragment, bare.RawFragment = "", false, "", ""
		shown = redact.URLs(bare.String()) // the traces endpoint is used as is
		if name == envEndpoint && protocol == protocolHTTP {
			shown = strings.TrimRight(shown, "/") + "/v1/traces"
		}
	}
	return shown, nil
}

// readSampler reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG with
// the specification's names and defaults. The SDK would read them too, but
// would only log a bad value and sample everything.
func readSampler() (sdktrace.Sampler, string, error) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv(envSampler)))
	if name == "" {
		name = defaultSamplerName
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), name, nil
	case "always_off":
		return sdktrace.NeverSample(), name, nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), name, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), name, nil
	case "traceidratio", "parentbased_traceidratio":
		r := 1.0
		if arg := strings.TrimSpace(os.Getenv(envSamplerArg)); arg != "" {
			var err error
			if r, err = strconv.ParseFloat(arg, 64); err != nil || !(r >= 0 && r <= 1) { // also refuses NaN
				return nil, "", &ConfigError{Variable: envSamplerArg, Problem: fmt.Sprintf("%q is not a ratio between 0 and 1 (0.01 samples 1%% of traces)", text.Truncate(arg, 40)), Err: err}
			}
		}
		s := sdktrace.TraceIDRatioBased(r)
		if name == "parentbased_traceidratio" {
			s = sdktrace.ParentBased(s)
		}
		return s, name + " " + strconv.FormatFloat(r, 'g', -1, 64), nil
	default:
		return nil, "", &ConfigError{Variable: envSampler, Problem: fmt.Sprintf("sampler %q is not supported: use %s", text.Truncate(name, 40), supportedSamplersHint)}
	}
}

// newResource describes this process: the service name and version given
// as options, overridden by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func newResource(ctx context.Context, o options) (*resource.Resource, error) {
	name := o.serviceName
	if name == "" { // the specification's default
		exe, _ := os.Executable()
		name = "unknown_service:" + filepath.Base(exe)
	}
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(name))}
	if o.serviceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(o.serviceVersion)))
	}
	// Later detectors win: the environment overrides the defaults.
	res, err := resource.New(ctx, append(attrs, resource.WithTelemetrySDK(), resource.WithFromEnv())...)
	if errors.Is(err, resource.ErrPartialResource) {
		return nil, &ConfigError{Variable: envResourceAttributes, Err: err,
			Problem: "must be comma-separated key=value pairs with percent-encoded values, e.g. deployment.environment.name=prod,service.namespace=auth"}
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

// newExporter builds one exporter. The OTLP exporters read their endpoint,
// headers, TLS, compression and timeout from the environment.
func newExporter(ctx context.Context, name, protocol string, console io.Writer) (sdktrace.SpanExporter, error) {
	switch {
	case name == exporterConsole:
		return stdouttrace.New(stdouttrace.WithWriter(console))
	case protocol == protocolGRPC:
		return otlptracegrpc.New(ctx)
	default:
		return otlptracehttp.New(ctx)
	}
}

func (c config) describe(res *resource.Resource) string {
	parts := slices.Clone(c.exporters)
	for i, name := range parts {
		if name == exporterOTLP {
			def := "the default endpoint https://localhost:4318/v1/traces"
			if c.protocol == protocolGRPC {
				def = "the default endpoint localhost:4317 (TLS)"
			}
			parts[i] += fmt.Sprintf(" (%s) to %s", c.protocol, cmp.Or(c.endpoint, def))
		}
	}
	s := strings.Join(parts, " and ") + ", sampler " + c.samplerDesc
	if v, ok := res.Set().Value(semconv.ServiceNameKey); ok {
		s += ", service " + v.AsString()
	}
	return s
}
