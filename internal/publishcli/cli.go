// Package publishcli is the `publish` command line: it submits Clerk
// session jobs to the jobs stream (and waits for their results), works the
// dead-letter queue, and shows the state of the system. cmd/publish is a
// thin wrapper around Run; tests drive the same entry point in-process.
package publishcli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/term"

	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/onceflag"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Exit codes. They are part of the command line's interface: scripts rely
// on them, and the README and `publish --help` document them.
const (
	// ExitOK: everything asked for was done; with --wait, every job
	// succeeded.
	ExitOK = 0
	// ExitJobFailed: with --wait, a job failed (it is in the dead-letter
	// queue).
	ExitJobFailed = 1
	// ExitUsage: the command line or the input is wrong (a job that fails
	// its schema, an unknown flag, a declined confirmation). Nothing was
	// published or changed.
	ExitUsage = 2
	// ExitTimeout: with --wait, no result arrived in time. The job was
	// accepted and may still run. Also: a token or refresh job that
	// succeeded but whose answer, the secret, never came.
	ExitTimeout = 3
	// ExitUnavailable: NATS or JetStream could not be reached or refused
	// the request (no connection, no such stream, no permission).
	ExitUnavailable = 4
	// ExitPartial: a batch, replay or purge did part of the work; the
	// summary says what was done and how to resume.
	ExitPartial = 5
	// ExitJobIDReused: the job id is taken by a different job (or, for a
	// user who may read neither the jobs stream nor its records, by a job
	// that could not be compared with this one): this job was not queued.
	// Publish it again with another --job-id. Also: a token or refresh job
	// with --wait whose id was requested before: its secret went to that
	// first request, and is shown nowhere else. Also: a dlq replay that
	// found another job stored under the replay's message id (the dead
	// letter is kept).
	ExitJobIDReused = 6
	// ExitInterrupted: interrupted by a signal; the summary says what was
	// done.
	ExitInterrupted = 130
	// ExitNotFound: what was asked about does not exist (`dlq show` of a
	// sequence that is not in the queue). It shares 1 with ExitJobFailed:
	// in both the command worked and its answer is no.
	ExitNotFound = 1
)

const exitCodesHelp = `Exit status:
  0    done (with --wait: every job succeeded)
  1    with --wait: a job failed; it is in the dead-letter queue
       (dlq show: no such dead letter)
  2    usage or validation error: nothing was published or changed
  3    with --wait: no result in time; the job was accepted and may still run
       (or a token whose answer never came: request a new one)
  4    NATS or JetStream unavailable (connection, missing stream, permission)
  5    partial: a batch, replay or purge did part of the work (see its summary)
  6    the job id is taken by a different job: this job was not queued (use another --job-id);
       a token or refresh --wait whose id was requested before: the secret went to that request
       (a batch names such lines; 6 wins over 1 and 3)
  130  interrupted; the summary says what was done`

// Env is what one run of the command line reads and writes.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads environment variables; nil reads the process's.
	Getenv func(string) string
	// IsTerminal reports whether Stdin, Stdout or Stderr (the value
	// passed) is an interactive terminal; nil asks the operating system
	// about *os.File values and says false for anything else.
	IsTerminal func(stream any) bool
	// TracerProvider starts the command's span (a child of --traceparent,
	// if given): the jobs it publishes are its children. Nil: no tracing.
	TracerProvider trace.TracerProvider
	// Location is the zone times are shown in and times without a zone
	// (--since, --until) are read in; nil: the process's, time.Local.
	Location *time.Location
}

// RunEnv runs the command line with args (without the program name) and
// returns its exit status. ctx is cancelled on interrupt. Every dependency
// on the process is explicit in env.
func RunEnv(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.IsTerminal == nil {
		env.IsTerminal = isTerminal
	}
	env.Location = cmp.Or(env.Location, time.Local)
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	a := &app{env: env}
	root := a.rootCommand()
	watchFlags(root)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	defer a.close()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Errors cobra returns before running a command: unknown
		// commands, flags and argument counts.
		ee = &exitError{code: ExitUsage, err: err, usage: true}
	}
	if ee.err != nil {
		// An error can quote what came from elsewhere (a value given on the
		// command line that fails its schema, a worker's or Clerk's
		// message): nothing shaped like a secret reaches stderr, and no
		// control character reaches the terminal; nor does the password
		// or token of a URL pasted into the wrong flag (--since
		// nats://user:pw@host), shown as xxxxx; nor a value of 100 KB
		// whole (each word is cut to 256 bytes).
		fmt.Fprintf(env.Stderr, "publish: %s\n", text.TerminalLines(text.Words(redact.All(natsconn.ErrorText(a.explain(ee.err))), 256)))
		if ee.usage && cmd != nil {
			fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return ee.code
}

func isTerminal(stream any) bool {
	f, ok := stream.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// exitError carries an exit status; err (may be nil when the command has
// already said everything) is printed to stderr. usage marks a command line
// that is wrong in itself (flags, arguments): only then is the pointer to
// --help printed, as it would mislead after a refusal the help cannot
// explain (a job too big or failing its schema, a declined confirmation).
type exitError struct {
	code  int
	err   error
	usage bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func exit(code int, err error) error { return &exitError{code: code, err: err} }

// usagef is a usage error: the flags or arguments are wrong.
func usagef(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...), usage: true}
}

// invalidf refuses, exit 2, what the command was given to work on (a job's
// contents, an input file, a declined confirmation) rather than how it was
// called: nothing was published or changed.
func invalidf(format string, a ...any) error {
	return exit(ExitUsage, fmt.Errorf(format, a...))
}

// classify gives an error from a command its exit status.
func classify(ctx context.Context, err error) error {
	var ee *exitError
	switch {
	case err == nil || errors.As(err, &ee):
		return err
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return exit(ExitInterrupted, errors.New("interrupted"))
	case errors.Is(err, jobs.ErrInvalid):
		return exit(ExitUsage, err)
	}
	return exit(ExitUnavailable, err)
}

// app is one run: its flags and its connection.
type app struct {
	env Env

	traceparent string
	conn        natsconn.Options
	jsonOut     bool
	tenant      string
	prefix      string
	jobsName    string
	resName     string
	dlqName     string
	consName    string

	nc *nats.Conn
	// refusals are the server's permission violations on nc, which
	// explain requests that got no answer.
	refusals refusals
}

// now is the time in the command's zone (Env.Location).
func (a *app) now() time.Time { return time.Now().In(a.env.Location) }

func (a *app) close() {
	if a.nc != nil {
		a.nc.Close()
	}
}

func (a *app) stderrTTY() bool { return a.env.IsTerminal(a.env.Stderr) }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "publish",
		Short: "Submit Clerk session jobs and work the dead-letter queue",
		Long: `publish submits Clerk session jobs to the clerkjobs worker through NATS JetStream,
waits for their results, works the dead-letter queue, and shows the state of it all.

Each job subcommand takes its arguments as flags, or a JSON body with --file
(- for standard input), or NDJSON (one job per line) for a batch. Every job is
checked against its JSON Schema (schemas/*.json) before it is published, and
carries a Nats-Msg-Id equal to its job id, so publishing it again is deduplicated.

` + exitCodesHelp,
		Example: `  publish revoke sess_2abc
  publish token sess_2abc --wait
  publish revoke-all --user user_2abc --except sess_keep --wait
  publish revoke --file sessions.ndjson
  publish dlq list --class exhausted --since 2h
  publish dlq replay --class exhausted --since 2h --rate 20
  publish status`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: ExitUsage, err: err, usage: true} })

	pf := root.PersistentFlags()
	natsconn.Flags(pf, &a.conn)
	pf.Lookup(natsconn.FlagURL).Usage += "; default " + natsconn.DefaultURL
	pf.VisitAll(func(f *pflag.Flag) {
		if env := natsconn.EnvOf(f.Name); env != "" {
			f.Usage += " (env " + env + ")"
		}
	})
	envFlag(pf, &a.tenant, "tenant", "", "publish jobs as this tenant, on <prefix>.tenant.<NAME>.<op> (env CLERKJOBS_TENANT); --nats-inbox-prefix defaults to _INBOX.<NAME>", "CLERKJOBS_TENANT")
	pf.BoolVar(&a.jsonOut, "json", false, "print JSON (NDJSON for lists and batches)")
	envFlag(pf, &a.traceparent, "traceparent", "", "continue this W3C trace (00-<trace id>-<span id>-<flags>): the jobs published are in it (env TRACEPARENT, with TRACESTATE)", "TRACEPARENT")
	def := jobs.DefaultTopology()
	envFlag(pf, &a.prefix, "prefix", "", "subject prefix of jobs, results and dead letters (env CLERKJOBS_PREFIX or WORKER_SUBJECT_PREFIX; default "+def.Subjects.Prefix+")", "CLERKJOBS_PREFIX", "WORKER_SUBJECT_PREFIX")
	envFlag(pf, &a.jobsName, "jobs-stream", "", "jobs stream (env CLERKJOBS_JOBS_STREAM or WORKER_JOBS_STREAM; default "+def.JobsStream+")", "CLERKJOBS_JOBS_STREAM", "WORKER_JOBS_STREAM")
	envFlag(pf, &a.resName, "results-stream", "", "results stream (env CLERKJOBS_RESULTS_STREAM or WORKER_RESULTS_STREAM; default "+def.ResultsStream+")", "CLERKJOBS_RESULTS_STREAM", "WORKER_RESULTS_STREAM")
	envFlag(pf, &a.dlqName, "dlq-stream", "", "dead-letter stream (env CLERKJOBS_DLQ_STREAM or WORKER_DLQ_STREAM; default "+def.DeadLetterStream+")", "CLERKJOBS_DLQ_STREAM", "WORKER_DLQ_STREAM")
	envFlag(pf, &a.consName, "consumer", "", "the workers' durable consumer (env CLERKJOBS_CONSUMER or WORKER_CONSUMER; default "+def.Consumer+")", "CLERKJOBS_CONSUMER", "WORKER_CONSUMER")

	root.AddGroup(&cobra.Group{ID: "jobs", Title: "Submit jobs:"}, &cobra.Group{ID: "ops", Title: "Operate:"})
	for _, c := range a.jobCommands() {
		c.GroupID = "jobs"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.dlqCommand(), a.statusCommand(), a.consoleCommand()} {
		c.GroupID = "ops"
		root.AddCommand(c)
	}
	return root
}

// envAnnotation is the flag annotation naming the environment variables a
// flag falls back to.
const envAnnotation = "publish_env"

// envFlag defines a string flag that, when it is not given, takes the first
// of variables that is set (the worker's names come after publish's, so that
// one environment serves both programs); see resolve. Defaults that could
// come from the environment live in the code that uses the value, never in
// the flag, so that --help cannot print a secret taken from the
// environment.
func envFlag(fs *pflag.FlagSet, p *string, name, value, usage string, variables ...string) {
	fs.StringVar(p, name, value, usage)
	_ = fs.SetAnnotation(name, envAnnotation, variables) // the flag was just defined
}

// resolve applies the environment to the flags not given.
func (a *app) resolve(cmd *cobra.Command) {
	natsconn.ApplyEnv(cmd.Flags(), &a.conn, a.env.Getenv)
	for _, n := range natsconn.Renamed(cmd.Flags()) {
		fmt.Fprintf(a.env.Stderr, "publish: %s\n", n)
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		for _, v := range f.Annotations[envAnnotation] {
			if s := a.env.Getenv(v); s != "" && !f.Changed {
				_ = f.Value.Set(s) // a string flag takes any value
				return
			}
		}
	})
	if a.tenant != "" && a.conn.InboxPrefix == "" {
		// A tenant's NATS user may subscribe only under its own inboxes.
		a.conn.InboxPrefix = "_INBOX." + a.tenant
	}
}

// topology is the default topology with the names given by flags or
// environment.
func (a *app) topology() (jobs.Topology, error) {
	t := jobs.DefaultTopology()
	t.Subjects.Prefix = cmp.Or(a.prefix, t.Subjects.Prefix)
	t.JobsStream = cmp.Or(a.jobsName, t.JobsStream)
	t.ResultsStream = cmp.Or(a.resName, t.ResultsStream)
	t.DeadLetterStream = cmp.Or(a.dlqName, t.DeadLetterStream)
	t.Consumer = cmp.Or(a.consName, t.Consumer)
	t.Subjects.Tenant = a.tenant
	if err := t.Validate(); err != nil {
		return t, usagef("%v", err)
	}
	return t, nil
}

// connect connects once per run.
func (a *app) connect() (*nats.Conn, error) {
	if a.nc != nil {
		return a.nc, nil
	}
	o := a.conn
	o.Name = "clerkjobs publish"
	o.Timeout = 5 * time.Second
	if err := o.Validate(); err != nil {
		return nil, usagef("NATS connection options: %v", err)
	}
	nc, err := o.Connect(nats.MaxReconnects(3), nats.ErrorHandler(a.refusals.record))
	if err != nil {
		var ce *natsconn.ConnectError
		switch {
		case errors.As(err, &ce) && ce.Refused():
			return nil, exit(ExitUnavailable, fmt.Errorf("%w\n%s; `go run ./cmd/worker` embeds one and creates the streams", err, ce.Hint()))
		case errors.As(err, &ce) && ce.Hint() != "":
			return nil, exit(ExitUnavailable, fmt.Errorf("%w\n%s", err, ce.Hint()))
		}
		return nil, exit(ExitUnavailable, err)
	}
	a.nc = nc
	return nc, nil
}

// jetStream checks the topology, connects and opens JetStream with opts.
func (a *app) jetStream(opts ...jetstream.JetStreamOpt) (jobs.Topology, *nats.Conn, jetstream.JetStream, error) {
	topo, err := a.topology()
	if err != nil {
		return topo, nil, nil, err
	}
	nc, err := a.connect()
	if err != nil {
		return topo, nil, nil, err
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		return topo, nil, nil, exit(ExitUnavailable, fmt.Errorf("JetStream: %w", err))
	}
	return topo, nc, js, nil
}

// streamErr explains a JetStream error about one of the streams.
func streamErr(err error, stream string) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return exit(ExitUnavailable, fmt.Errorf("stream %s does not exist: start the worker once (`go run ./cmd/worker`), it creates the streams; or check --prefix and the stream flags", stream))
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return exit(ExitUnavailable, fmt.Errorf("%w: this NATS account has no JetStream; the worker needs it", err))
	}
	return err
}

// watchFlags has every single-valued flag of cmd and its subcommands
// refuse a second, different value (onceflag): `revoke-all --user A --user
// B` would revoke B's sessions alone. A parent's persistent flags are the
// same flags in its subcommands' sets, watched once.
func watchFlags(cmd *cobra.Command) {
	onceflag.Watch(cmd.PersistentFlags())
	onceflag.Watch(cmd.Flags())
	for _, c := range cmd.Commands() {
		watchFlags(c)
	}
}

// runE wraps a command's work: it resolves flags and environment, and
// gives its error an exit status.
func (a *app) runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := onceflag.Check(cmd.Flags()); err != nil {
			return &exitError{code: ExitUsage, err: err, usage: true}
		}
		a.resolve(cmd)
		ctx, span, err := a.startSpan(cmd)
		if err != nil {
			return err
		}
		defer span.End()
		cmd.SetContext(ctx)
		err = classify(cmd.Context(), fn(cmd, args))
		if err != nil {
			span.SetStatus(codes.Error, "the command failed")
		}
		return err
	}
}

// startSpan starts the command's span, "publish <command>": a child of
// --traceparent (or the TRACEPARENT and TRACESTATE variables), so that a
// shell script's trace continues through the jobs it publishes.
func (a *app) startSpan(cmd *cobra.Command) (context.Context, trace.Span, error) {
	ctx := cmd.Context()
	tp := a.env.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if a.traceparent != "" {
		var err error
		if ctx, err = tracing.ContextWithTraceparent(ctx, a.traceparent, a.env.Getenv("TRACESTATE")); err != nil {
			// The tracestate comes from the environment alone: name
			// where each came from.
			return ctx, nil, usagef("--traceparent (or TRACEPARENT, with TRACESTATE): %v", err)
		}
	}
	ctx, span := tp.Tracer("github.com/clerkjobs/clerkjobs/publish").Start(ctx, "publish "+cmd.CommandPath()[len(cmd.Root().Name())+1:])
	return ctx, span, nil
}
