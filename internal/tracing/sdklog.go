package tracing

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// RouteSDKReports sends what the OpenTelemetry SDK and exporters report
// about themselves (otel.SetLogger: warnings and errors; otel.SetErrorHandler:
// failed exports) to report, one line each, instead of the SDK's default,
// standard error as it comes. The SDK quotes configuration it cannot parse
// (a malformed OTEL_EXPORTER_OTLP_HEADERS entry, with its API key), and an
// export error quotes the endpoint URL (with its credentials): the line
// gives the SDK's message and error, cleared of credentials, and the names
// of the values it quoted, never the values. A program calls it once, before
// New. It sets OpenTelemetry's process-wide logger and error handler.
func RouteSDKReports(report func(line string)) {
	otel.SetLogger(logr.New(&sdkSink{report: report}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { report(cleanSDK(err.Error())) }))
}

// sdkSink is a logr.LogSink for the SDK's messages. The SDK logs warnings
// at V(1), and information and debugging at V(4) and V(8): only warnings
// and errors are kept.
type sdkSink struct {
	report func(string)
	names  []string // of values added with WithValues
}

func (s *sdkSink) Init(logr.RuntimeInfo)  {}
func (s *sdkSink) Enabled(level int) bool { return level <= 1 }

func (s *sdkSink) Info(_ int, msg string, keysAndValues ...any) {
	s.report(s.line(msg, nil, keysAndValues))
}

func (s *sdkSink) Error(err error, msg string, keysAndValues ...any) {
	if err == nil {
		err = errors.New("(no error)")
	}
	s.report(s.line(msg, err, keysAndValues))
}

func (s *sdkSink) WithValues(keysAndValues ...any) logr.LogSink {
	return &sdkSink{report: s.report, names: slices.Concat(s.names, names(keysAndValues))}
}

func (s *sdkSink) WithName(string) logr.LogSink { return s }

// line is "msg: err (values left out: a, b)".
func (s *sdkSink) line(msg string, err error, keysAndValues []any) string {
	out := msg
	if err != nil {
		out += ": " + err.Error()
	}
	out = cleanSDK(out)
	if n := slices.Concat(s.names, names(keysAndValues)); len(n) > 0 {
		slices.Sort(n)
		out += fmt.Sprintf(" (values left out: %s)", cleanSDK(strings.Join(n, ", ")))
	}
	return out
}

// names are the keys of a logr key-value list.
func names(keysAndValues []any) []string {
	var out []string
	for i := 0; i < len(keysAndValues); i += 2 {
		out = append(out, fmt.Sprint(keysAndValues[i]))
	}
	return out
}

// cleanSDK is a line the SDK wrote, cleared of URL credentials and of
// anything shaped like a secret, on one bounded line without control
// characters (an error may quote an OTEL_* value).
func cleanSDK(s string) string {
	return text.Line(redact.Text(redact.URLs(s)), 1024)
}
