package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// FilterSpec is a dead-letter selection as typed in the list's filter
// form: the flags of `publish dlq list`, each list already split at commas.
type FilterSpec struct {
	Ops, Classes, Codes, JobIDs []string
	Since, Until                string
}

// ParseFilter turns a FilterSpec into a dlq.Filter the way `publish dlq
// list` reads its flags (relative times count back from now), or says
// which field is wrong and why. The console takes it from its caller so
// that the web and the command line select alike.
type ParseFilter func(spec FilterSpec, now time.Time) (dlq.Filter, error)

// Console is the web console. Make one with New and run it with
// ListenAndServe or Serve.
type Console struct {
	nc       *nats.Conn
	client   *clerkjobs.Client
	js       jetstream.JetStream
	topo     jobs.Topology
	parse    ParseFilter
	log      zerolog.Logger
	creds    *Credentials
	signIns  signIns
	failures failedSignIns
	refresh  time.Duration
	tls      struct{ cert, key string }

	index *index
	act   *activity
	poll  *poller
	bulk  *bulkJobs
	reg   *registry
	pages pages

	mu       sync.Mutex
	queue    *dlq.Queue
	resErr   error           // why results cannot be followed
	tasksCtx context.Context // tasks run until the console stops
	started  bool
}

// Option configures a Console.
type Option func(*Console)

// WithLogger sets where the console logs: every action (what, how many,
// by whom, from which address), refused requests, and trouble with NATS.
// The default discards everything.
func WithLogger(l zerolog.Logger) Option { return func(c *Console) { c.log = l } }

// WithCredentials requires every request to authenticate with creds (see
// LoadCredentials). Without them the console serves loopback addresses
// only.
func WithCredentials(creds *Credentials) Option { return func(c *Console) { c.creds = creds } }

// WithTLS serves HTTPS with the certificate and key in these files.
func WithTLS(certFile, keyFile string) Option {
	return func(c *Console) { c.tls.cert, c.tls.key = certFile, keyFile }
}

// WithRefresh sets how often the console reads the jobs stream and the
// workers, and how often its pages refresh themselves (2 s by default).
func WithRefresh(d time.Duration) Option { return func(c *Console) { c.refresh = d } }

// New makes a console for topo over nc, which it uses for every NATS
// request (its inbox prefix included, for a user restricted to its own
// inboxes). parse reads the list's filters.
func New(nc *nats.Conn, topo jobs.Topology, parse ParseFilter, opts ...Option) (*Console, error) {
	if nc == nil || parse == nil {
		return nil, errors.New("console: a NATS connection and a filter parser are required")
	}
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("console: JetStream: %w", err)
	}
	c := &Console{nc: nc, js: js, topo: topo, parse: parse, log: zerolog.Nop(), refresh: 2 * time.Second, reg: newRegistry(), bulk: &bulkJobs{}, tasksCtx: context.Background()}
	for _, o := range opts {
		o(c)
	}
	if c.refresh <= 0 {
		return nil, fmt.Errorf("console: refresh interval %s: must be positive", c.refresh)
	}
	if (c.tls.cert == "") != (c.tls.key == "") {
		return nil, errors.New("console: HTTPS needs both a certificate and a key file")
	}
	if c.client, err = clerkjobs.NewClient(nc, clerkjobs.WithTopology(topo), clerkjobs.WithTimeout(time.Hour)); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c.act = newActivity()
	c.index = newIndex(c.act.deadLettered)
	c.poll = &poller{nc: nc, js: js, topo: topo, activity: c.act, wait: 300 * time.Millisecond}
	if c.pages, err = loadPages(); err != nil {
		return nil, err
	}
	return c, nil
}

// start begins reading NATS: the dead-letter index, the results, the
// progress bucket and the poller. They run until ctx ends.
func (c *Console) start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started, c.tasksCtx = true, ctx
	go c.keep(ctx, "dead-letter index", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, c.topo.DeadLetterStream)
		if err != nil {
			return fmt.Errorf("dead-letter stream %s: %w", c.topo.DeadLetterStream, err)
		}
		f := &follower{x: c.index, stream: s, topo: c.topo, every: c.refresh}
		return f.run(ctx)
	}, c.index.setErr)
	go c.keep(ctx, "results", func(ctx context.Context) error {
		return followResults(ctx, c.js, c.topo, c.act)
	}, func(err error) {
		c.mu.Lock()
		c.resErr = err
		c.mu.Unlock()
	})
	go c.keep(ctx, "revoke_all progress", func(ctx context.Context) error {
		return c.bulk.follow(ctx, c.js, c.topo.ProgressBucket)
	}, c.bulk.setErr)
	go c.poll.run(ctx, c.refresh)
}

// keep runs fn again after it fails, with a growing pause, until ctx ends:
// a stream may not exist yet (the worker creates it), or NATS may be
// unreachable for a while.
func (c *Console) keep(ctx context.Context, what string, fn func(context.Context) error, report func(error)) {
	wait := time.Second
	for {
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped")
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			// JetStream does not answer a request the user may not send.
			err = fmt.Errorf("%w (no answer: is NATS reachable, and may this NATS user read it? see deploy/nats/accounts.conf)", err)
		}
		report(err)
		c.log.Warn().Err(err).Str("reading", what).Dur("retry_in", wait).Msg("console: cannot read; retrying")
		if clock.Sleep(ctx, wait) != nil {
			return
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// dlq opens the dead-letter queue once it exists. Opening asks JetStream,
// which may take its whole timeout to fail (NATS unreachable, or the user
// may not read the stream): c.mu is not held meanwhile, as the overview
// and every confirmation take it.
func (c *Console) dlq(ctx context.Context) (*dlq.Queue, error) {
	c.mu.Lock()
	q := c.queue
	c.mu.Unlock()
	if q != nil {
		return q, nil
	}
	q, err := dlq.Open(ctx, c.js, c.topo)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queue == nil {
		c.queue = q
	}
	return c.queue, nil
}

// ErrListen is returned when the console cannot listen on its address
// (taken, or not this machine's).
var ErrListen = errors.New("cannot listen")

// ListenAndServe listens on addr (host:port; port 0 picks one) and serves
// the console until ctx ends, then stops: running actions stop between two
// dead letters, as `publish dlq replay` does on Ctrl-C. Without
// credentials it refuses any address that is not loopback. It logs the
// URL it serves.
func (c *Console) ListenAndServe(ctx context.Context, addr string) error {
	if err := CheckAddress(addr, c.creds); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w on %s: %w (choose another --listen address)", ErrListen, addr, err)
	}
	return c.Serve(ctx, ln)
}

// Serve serves the console on ln until ctx ends (see ListenAndServe).
func (c *Console) Serve(ctx context.Context, ln net.Listener) error {
	tcp, _ := ln.Addr().(*net.TCPAddr)
	if c.creds == nil && (tcp == nil || !tcp.IP.IsLoopback()) {
		ln.Close()
		return fmt.Errorf("listen address %s: %w: give --token-file or --basic-auth-file, or listen on 127.0.0.1", ln.Addr(), ErrNeedsAuth)
	}
	c.start(ctx)
	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	scheme := "http"
	if c.tls.cert != "" {
		scheme = "https"
	}
	c.log.Info().Str("url", scheme+"://"+ln.Addr().String()+"/").Bool("authentication", c.creds != nil).Msg("console listening")
	if c.creds != nil && scheme == "http" && (tcp == nil || !tcp.IP.IsLoopback()) {
		c.log.Warn().Msg("console: credentials travel in clear text over plain HTTP: serve it with --https-cert/--https-key or behind a TLS proxy")
	}
	errc := make(chan error, 1)
	go func() {
		if c.tls.cert != "" {
			errc <- srv.ServeTLS(ln, c.tls.cert, c.tls.key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	c.waitTasks(15 * time.Second)
	c.log.Info().Msg("console stopped")
	return nil
}

// waitTasks gives running tasks (cancelled with the console's context)
// time to finish the dead letter they are on.
func (c *Console) waitTasks(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !slices.ContainsFunc(c.reg.recent(), (*task).running) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// taskContext is the context actions run in: they stop with the console.
func (c *Console) taskContext() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tasksCtx
}
