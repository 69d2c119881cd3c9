// Command clerk-emulator serves an in-memory Clerk Backend API (the
// Sessions endpoints and GET /v1/jwks) for demos and local development,
// with optional injected latency, errors, dropped connections and rate
// limits. See package github.com/clerkjobs/clerkjobs/clerkapi/emulator for
// the API and the /_emulator control API.
//
// Usage:
//
//	clerk-emulator [flags]
//
// Every flag has an environment fallback; a flag given on the command line
// wins:
//
//	--addr               CLERK_EMULATOR_ADDR               listen address (default 127.0.0.1:8090; port 0 picks one)
//	--secret-key         CLERK_SECRET_KEY                  accepted secret key(s), comma-separated (default sk_test_emulator)
//	--latency            CLERK_EMULATOR_LATENCY            added to every call, e.g. 50ms
//	--jitter             CLERK_EMULATOR_JITTER             random extra latency, up to this
//	--error-rate         CLERK_EMULATOR_ERROR_RATE         fraction of calls answered 500/502/503
//	--gateway-error-rate CLERK_EMULATOR_GATEWAY_ERROR_RATE fraction of calls handled, then answered 502/504 with a gateway's HTML page
//	--drop-rate          CLERK_EMULATOR_DROP_RATE          fraction of connections closed without answer
//	--rate-limit         CLERK_EMULATOR_RATE_LIMIT         requests per window and secret key (0: none)
//	--rate-window        CLERK_EMULATOR_RATE_WINDOW        rate-limit window (default 10s)
//	--rate-limit-mode    CLERK_EMULATOR_RATE_LIMIT_MODE    fixed (default) or sliding window, see below
//	--seed-users         CLERK_EMULATOR_SEED_USERS         users to create at start
//	--seed-sessions      CLERK_EMULATOR_SEED_SESSIONS      active sessions per seeded user (default 3)
//	--seed               CLERK_EMULATOR_SEED               random seed, for reproducible ids and faults
//	--log-level          CLERK_EMULATOR_LOG_LEVEL          debug (every call), info, warn or error
//
// A fixed window starts with the first call after the previous one ended;
// a sliding window accepts a call only while fewer than the limit were
// accepted in the window that ends with it. Clerk does not say which it
// uses: test clients against both.
//
// It prints the API base URL once listening, and stops gracefully on
// SIGINT or SIGTERM. A bad flag or environment value prints one line
// naming it and exits with status 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// shutdownGrace is how long calls in progress get to finish on shutdown.
const shutdownGrace = 5 * time.Second

// config is the parsed command line.
type config struct {
	addr         string
	secretKeys   string
	latency      time.Duration
	jitter       time.Duration
	errorRate    float64
	gatewayRate  float64
	dropRate     float64
	rateLimit    int
	rateWindow   time.Duration
	rateMode     string
	seedUsers    int
	seedSessions int
	seed         int64
	logLevel     string
}

// flagNames are the flags, in the order their environment values are read
// (the first bad one is the one named).
var flagNames = []string{"addr", "secret-key", "latency", "jitter", "error-rate", "gateway-error-rate", "drop-rate",
	"rate-limit", "rate-window", "rate-limit-mode", "seed-users", "seed-sessions", "seed", "log-level"}

// envOf is a flag's environment fallback: CLERK_EMULATOR_ and its name
// (CLERK_SECRET_KEY for --secret-key, the worker's variable).
func envOf(flagName string) string {
	if flagName == "secret-key" {
		return "CLERK_SECRET_KEY"
	}
	return "CLERK_EMULATOR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads flags over environment values over defaults. Its errors are
// usage errors, which run prints as one line before exiting with status 2.
func parse(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("clerk-emulator", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported as one line by run
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "listen address; port 0 picks a free one")
	fs.StringVar(&cfg.secretKeys, "secret-key", emulator.DefaultSecretKey, "accepted secret key(s), comma-separated")
	fs.DurationVar(&cfg.latency, "latency", 0, "latency added to every call, e.g. 50ms")
	fs.DurationVar(&cfg.jitter, "jitter", 0, "random extra latency, up to this")
	fs.Float64Var(&cfg.errorRate, "error-rate", 0, "fraction (0..1) of calls answered 500/502/503")
	fs.Float64Var(&cfg.gatewayRate, "gateway-error-rate", 0,
		"fraction (0..1) of calls handled, then answered 502/504 by a gateway with an HTML page (not Clerk's errors body)")
	fs.Float64Var(&cfg.dropRate, "drop-rate", 0, "fraction (0..1) of connections closed without an answer")
	fs.IntVar(&cfg.rateLimit, "rate-limit", 0, "requests per window and secret key; 0 means no limit")
	fs.DurationVar(&cfg.rateWindow, "rate-window", emulator.DefaultRateWindow, "rate-limit window")
	fs.StringVar(&cfg.rateMode, "rate-limit-mode", string(emulator.FixedWindow),
		"fixed (windows start with the first call after the previous one ended) or sliding (no interval of the window's length holds more than the limit)")
	fs.IntVar(&cfg.seedUsers, "seed-users", 0, "users to create at start")
	fs.IntVar(&cfg.seedSessions, "seed-sessions", 3, "active sessions per seeded user")
	fs.Int64Var(&cfg.seed, "seed", 0, "random seed for reproducible ids and faults; 0 means random")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug (logs every call), info, warn or error")

	for _, name := range flagNames {
		if v := getenv(envOf(name)); v != "" {
			if err := fs.Set(name, v); err != nil {
				return cfg, fmt.Errorf("environment %s=%q: %s", envOf(name), shown(name, v), reason(err))
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: clerk-emulator [flags]; every flag also reads an environment variable (see go doc ./cmd/clerk-emulator).")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	return cfg, cfg.check()
}

// shown hides secret keys in messages.
func shown(flagName, v string) string {
	if flagName == "secret-key" {
		return "…"
	}
	return v
}

// reason trims strconv's wrapping from a flag.Value error.
func reason(err error) string {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err.Error()
	}
	return err.Error()
}

// listenAddr reports whether addr is a host:port to listen on, the port
// a number from 0 to 65535 (0 picks one) or a service name net.Listen
// knows ("http"): not a URL, not a host alone.
func listenAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	_, err = net.LookupPort("tcp", port)
	return err == nil
}

func (c config) check() error {
	bad := func(flagName, format string, args ...any) error {
		return fmt.Errorf("--%s: %s", flagName, fmt.Sprintf(format, args...))
	}
	rate := func(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 1 }
	switch {
	case !listenAddr(c.addr):
		// Said before listening: a listener's refusal is a runtime
		// failure (exit 1), a malformed address a bad value (exit 2).
		return bad("addr", "must be host:port, the port from 0 to 65535 (0 picks a free one) or a service name, e.g. 127.0.0.1:8090")
	case len(splitKeys(c.secretKeys)) == 0:
		return bad("secret-key", "must not be empty")
	case c.latency < 0:
		return bad("latency", "%v is negative", c.latency)
	case c.jitter < 0:
		return bad("jitter", "%v is negative", c.jitter)
	case !rate(c.errorRate):
		return bad("error-rate", "%v is not between 0 and 1", c.errorRate)
	case !rate(c.gatewayRate):
		return bad("gateway-error-rate", "%v is not between 0 and 1", c.gatewayRate)
	case !rate(c.dropRate):
		return bad("drop-rate", "%v is not between 0 and 1", c.dropRate)
	case c.rateLimit < 0:
		return bad("rate-limit", "%d is negative", c.rateLimit)
	case c.rateWindow <= 0:
		return bad("rate-window", "%v must be positive", c.rateWindow)
	case c.rateMode != string(emulator.FixedWindow) && c.rateMode != string(emulator.SlidingWindow):
		return bad("rate-limit-mode", "%q is not fixed or sliding", c.rateMode)
	case c.seedUsers < 0 || c.seedUsers > 100_000:
		return bad("seed-users", "%d is not between 0 and 100000", c.seedUsers)
	case c.seedSessions < 0 || c.seedSessions > 10_000:
		return bad("seed-sessions", "%d is not between 0 and 10000", c.seedSessions)
	}
	if _, err := zerolog.ParseLevel(c.logLevel); err != nil || c.logLevel == "" {
		return bad("log-level", "%q is not debug, info, warn or error", c.logLevel)
	}
	return nil
}

func splitKeys(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// describeKeys prints the default key (not a secret) and redacts others.
func describeKeys(keys []string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		switch {
		case k == emulator.DefaultSecretKey:
			out[i] = k + " (default)"
		case strings.HasPrefix(k, "sk_live_"):
			out[i] = "sk_live_[REDACTED] (production: createSession refused)"
		case strings.HasPrefix(k, "sk_test_"):
			out[i] = "sk_test_[REDACTED]"
		default:
			out[i] = "[REDACTED]"
		}
	}
	return strings.Join(out, ", ")
}

// run is main without the process: it serves until ctx ends and returns
// the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		// The messages quote the value they refuse: a secret key given to
		// another setting than --secret-key must not be repeated, nor the
		// password of a URL pasted there (shown as xxxxx).
		fmt.Fprintf(stderr, "clerk-emulator: %s\n", text.Words(redact.All(err.Error()), 256))
		return exitUsage
	}
	level, _ := zerolog.ParseLevel(cfg.logLevel)
	logger := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	keys := splitKeys(cfg.secretKeys)
	opts := []emulator.Option{
		emulator.WithSecretKeys(keys...),
		emulator.WithFaults(emulator.Faults{
			ErrorRate: cfg.errorRate, GatewayErrorRate: cfg.gatewayRate, DropRate: cfg.dropRate,
			Latency: cfg.latency, Jitter: cfg.jitter,
		}),
		emulator.WithRateLimit(cfg.rateLimit, cfg.rateWindow),
		emulator.WithRateLimitMode(emulator.RateLimitMode(cfg.rateMode)),
		emulator.WithLogger(logger),
	}
	if cfg.seed != 0 {
		opts = append(opts, emulator.WithSeed(cfg.seed))
	}
	srv, err := emulator.Listen(cfg.addr, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "clerk-emulator: --addr: %s\n", text.Words(redact.All(err.Error()), 256))
		return exitError
	}

	fmt.Fprintf(stdout, "clerk emulator listening on %s\n", srv.URL)
	fmt.Fprintf(stdout, "control API: %s (no authentication)\n", srv.ControlURL)
	fmt.Fprintf(stdout, "secret key: %s\n", describeKeys(keys))
	if cfg.rateLimit > 0 {
		fmt.Fprintf(stdout, "rate limit: %d requests per %v per key (%s window)\n", cfg.rateLimit, cfg.rateWindow, cfg.rateMode)
	}
	if f := srv.Emulator.Faults(); f != (emulator.Faults{}) {
		b, _ := f.MarshalJSON()
		fmt.Fprintf(stdout, "faults: %s\n", b)
	}
	if cfg.seedUsers > 0 {
		users := srv.Emulator.Seed(cfg.seedUsers, cfg.seedSessions)
		fmt.Fprintf(stdout, "seeded %d users with %d sessions each\n", len(users), cfg.seedSessions)
		for _, u := range users[:min(len(users), 3)] {
			fmt.Fprintf(stdout, "  %s: %s\n", u, strings.Join(srv.Emulator.UserSessionIDs(u), " "))
		}
		if len(users) > 3 {
			fmt.Fprintf(stdout, "  … and %d more\n", len(users)-3)
		}
	}

	<-ctx.Done()
	fmt.Fprintln(stdout, "clerk emulator shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "clerk-emulator: shutdown: %v\n", err)
		return exitError
	}
	return exitOK
}
