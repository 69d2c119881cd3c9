// Command worker runs Clerk session jobs from NATS JetStream.
//
// With no NATS_URL it starts an embedded NATS server (JetStream, files in
// --data-dir, listening on 127.0.0.1:4222); with no CLERK_SECRET_KEY it runs
// the Clerk emulator in-process, seeded with demo sessions. So
//
//	go run ./cmd/worker
//
// is a complete local system. Flags have environment fallbacks; see --help.
// Exit status: 0 after a graceful shutdown, 1 on a runtime failure, 2 on bad
// configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/worker"
)

// gcPercent is the worker's GOGC unless the environment sets one. Its live
// heap is a few MiB and every job leaves garbage, so at Go's default of 100
// the collector runs often under load: 200 costs a few MiB of RSS for
// 10-15% less CPU per job at concurrency 16 and 256 (BENCHMARKS.md).
const gcPercent = 200

// maxQuoted bounds each word of an error printed on standard error: a value
// of 100 KB given to a setting would otherwise be repeated whole (text.Words).
const maxQuoted = 256

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	for _, s := range strayVariables(os.Environ()) {
		fmt.Fprintf(os.Stderr, "worker: %s\n", s)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		// One line, whatever the error joins: scripts and humans grep it.
		fmt.Fprintf(stderr, "worker: %s\n", strings.ReplaceAll(text.Words(redact.URLCredentials(err.Error()), maxQuoted), "\n", "; "))
		return 2
	}
	log := newLogger(cfg.logFormat, cfg.logLevel, stdout)
	// The SDK's own reports (a malformed OTEL_* value, a failed export) go
	// to the log, cleared of the credentials they may quote.
	tracing.RouteSDKReports(func(line string) { log.Warn().Str("report", line).Msg("tracing") })
	tp, err := tracing.New(ctx, tracing.WithServiceName("clerkjobs-worker"), tracing.WithServiceVersion(worker.Version))
	if err != nil {
		fmt.Fprintf(stderr, "worker: %s\n", strings.ReplaceAll(text.Words(redact.URLCredentials(err.Error()), maxQuoted), "\n", "; "))
		return 2
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn().Err(err).Msg("tracing: spans not exported at shutdown")
		}
	}()
	if tp.Enabled() {
		log.Info().Str("tracing", tp.String()).Msg("exporting traces")
	}
	cfg.worker.TracerProvider = tp.TracerProvider()
	if err := serve(ctx, cfg, log); err != nil {
		// A listen address or a directory may quote a URL with a password
		// pasted into the wrong setting.
		log.Error().Str("error", redact.URLCredentials(err.Error())).Msg("worker failed")
		return 1
	}
	return 0
}

// serve wires NATS, Clerk, the worker and the HTTP endpoints, and runs until
// ctx ends.
func serve(ctx context.Context, cfg *config, log zerolog.Logger) error {
	if cfg.nats.URL == "" {
		s, err := embedded.Start(embedded.Options{Addr: cfg.embeddedAddr, StoreDir: cfg.dataDir})
		if err != nil {
			return fmt.Errorf("%w (set NATS_URL to use an existing server, or --embedded-addr (WORKER_EMBEDDED_ADDR) or --data-dir (WORKER_DATA_DIR))", err)
		}
		defer s.Shutdown()
		cfg.nats.URL = s.ClientURL()
		log.Warn().Str("nats_url", cfg.nats.URL).Str("data_dir", cfg.dataDir).
			Msg("EMBEDDED NATS: no NATS_URL given, running a NATS server with JetStream inside this process (for local use; set NATS_URL in production)")
	}

	if cfg.secretKey == "" {
		emu, err := emulator.Listen(cfg.emulatorAddr)
		if err != nil {
			return fmt.Errorf("start the Clerk emulator on %s: %w (set CLERK_SECRET_KEY to use Clerk, or --emulator-addr)", cfg.emulatorAddr, err)
		}
		defer emu.Close()
		users := emu.Emulator.Seed(3, 5)
		log.Warn().Str("clerk_api_url", emu.URL).Str("control_url", emu.ControlURL).
			Msg("CLERK EMULATOR: no CLERK_SECRET_KEY given, calling an in-process Clerk emulator, NOT Clerk (set CLERK_SECRET_KEY and CLERK_API_URL for real use)")
		for _, u := range users {
			log.Info().Str("user_id", u).Strs("session_ids", emu.Emulator.UserSessionIDs(u)).Msg("demo user")
		}
		cfg.secretKey, cfg.apiURL = emulator.DefaultSecretKey, emu.URL
	}
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(cfg.secretKey), clerkapi.WithBaseURL(cfg.apiURL),
		clerkapi.WithUserAgent("clerkjobs-worker/"+worker.Version), clerkapi.WithTracerProvider(cfg.worker.TracerProvider))
	if err != nil {
		return err
	}

	// stopping silences the disconnect that a graceful stop causes itself.
	var stopping atomic.Bool
	nc, err := cfg.nats.Connect(
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if !stopping.Load() {
				log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", natsconn.Redact(nc.ConnectedUrl())).Msg("reconnected to NATS")
		}),
		// Asynchronous errors, permission violations above all: a reply the
		// server refuses would otherwise vanish without a trace. The
		// server's text quotes the subject, a job's reply_to: the
		// publisher's, in which a secret may have been pasted.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Str("error", redact.Text(err.Error()))
			if sub != nil {
				ev = ev.Str("subscription", redact.Text(sub.Subject))
			}
			ev.Msg("NATS error")
		}),
	)
	if err != nil {
		return err
	}
	defer nc.Close()

	cfg.worker.Logger = log
	w, err := worker.New(nc, clerk, cfg.worker)
	if err != nil {
		return err
	}

	if cfg.metricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics address %s: %w (set --metrics-addr, or empty to disable)", cfg.metricsAddr, err)
		}
		srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics, /healthz, /readyz")
	}

	err = w.Run(ctx)
	stopping.Store(true)
	if err != nil {
		return err
	}
	// Drain flushes acks and records still buffered, before the embedded
	// server (if any) shuts down with the deferred calls.
	if err := nc.Drain(); err != nil {
		log.Warn().Err(err).Msg("NATS drain")
	}
	for deadline := time.Now().Add(5 * time.Second); !nc.IsClosed() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func newLogger(format, level string, out io.Writer) zerolog.Logger {
	var w io.Writer = out
	if format == "console" || (format == "auto" && isTerminal(out)) {
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	lvl, _ := zerolog.ParseLevel(level) // validated in parseFlags
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
