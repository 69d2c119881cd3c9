// Package clerkjobstest runs the clerkjobs system inside a Go test, as
// httptest runs an HTTP server: one call starts a NATS server with
// JetStream, the Clerk emulator and a worker in the test's process, on free
// local ports, and hands back a clerkjobs.Client for them. Everything is
// real (JetStream stores the jobs, the emulator answers over HTTP as Clerk
// does) and everything is torn down by t.Cleanup.
//
//	func TestOffboarding(t *testing.T) {
//		env := clerkjobstest.New(t)
//		user := env.Clerk.Emulator.CreateUser()
//		sessions := env.Clerk.Emulator.CreateSessions(user, 3)
//
//		offboard(t.Context(), env.Client, user) // the code under test
//
//		for _, id := range sessions {
//			if s, _ := env.Clerk.Emulator.Session(id); s.Status != clerkapi.StatusRevoked { ... }
//		}
//	}
//
// The emulator creates users and sessions, injects faults
// (Emulator.SetFaults, FailSession) and logs every call; the worker runs
// with retries in milliseconds and two-second ack waits, so that failures
// are dead-lettered within a test's patience.
package clerkjobstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// Env is one test's system.
type Env struct {
	// Client submits jobs to the worker; its options are WithClient's.
	Client *clerkjobs.Client
	// Clerk is the emulator, served over HTTP: Clerk.Emulator creates users
	// and sessions and sets faults, Clerk.URL is its API base.
	Clerk *emulator.Server
	// Worker is the running worker; nil with WithoutWorker.
	Worker *Worker
	// NATS is the server; URL, Conn and JetStream reach it (Conn is the
	// client's and the workers' connection).
	NATS      *server.Server
	URL       string
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	// Topology is the streams' configuration (Topology()'s unless
	// WithTopology), created before New returns.
	Topology jobs.Topology

	opts options
	// mu guards closers and closed: subtests that share the Env may start
	// workers in parallel.
	mu      sync.Mutex
	closers []func() // in the order of creation; Close runs them backwards
	closed  bool
	once    sync.Once
}

// addCloser adds f to what Close runs; once closed, it runs f at once.
func (e *Env) addCloser(f func()) {
	e.mu.Lock()
	closed := e.closed
	if !closed {
		e.closers = append(e.closers, f)
	}
	e.mu.Unlock()
	if closed {
		f()
	}
}

// Option configures New and Start.
type Option func(*options)

type options struct {
	emulator   []emulator.Option
	topo       *jobs.Topology
	config     []func(*worker.Config)
	workerOpts []worker.Option
	client     []clerkjobs.Option
	noWorker   bool
}

// WithEmulator configures the Clerk emulator (emulator.WithLatency,
// emulator.WithTemplate...).
func WithEmulator(opts ...emulator.Option) Option {
	return func(o *options) { o.emulator = append(o.emulator, opts...) }
}

// WithTopology replaces Topology().
func WithTopology(t jobs.Topology) Option { return func(o *options) { o.topo = &t } }

// WithWorkerConfig edits the configuration (WorkerConfig's) of every worker
// the Env starts.
func WithWorkerConfig(edit func(*worker.Config)) Option {
	return func(o *options) { o.config = append(o.config, edit) }
}

// WithWorkerOptions passes options to worker.New: worker.WithHandler runs
// jobs through a handler of your own.
func WithWorkerOptions(opts ...worker.Option) Option {
	return func(o *options) { o.workerOpts = append(o.workerOpts, opts...) }
}

// WithClient passes options to clerkjobs.NewClient (clerkjobs.WithTenant,
// say); the topology is Env.Topology.
func WithClient(opts ...clerkjobs.Option) Option {
	return func(o *options) { o.client = append(o.client, opts...) }
}

// WithoutWorker starts no worker: jobs wait in the stream until
// Env.StartWorker.
func WithoutWorker() Option { return func(o *options) { o.noWorker = true } }

// New starts NATS with JetStream, creates the streams, starts the Clerk
// emulator and a worker (ready to take jobs when New returns), and makes a
// Client. Everything stops at the end of the test; New fails the test if
// any of it cannot start.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	e, err := Start(opts...)
	if err != nil {
		t.Fatalf("clerkjobstest: %v", err)
	}
	t.Cleanup(e.Close)
	if e.Worker != nil {
		t.Cleanup(func() { e.Worker.Stop(t) }) // before Close: fails the test if Run failed
	}
	return e
}

// Start is New outside a test (an Example, a program's local run): the
// caller must Close the Env.
func Start(opts ...Option) (*Env, error) {
	e := &Env{Topology: Topology()}
	for _, f := range opts {
		f(&e.opts)
	}
	if e.opts.topo != nil {
		e.Topology = *e.opts.topo
	}
	if err := e.start(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) start() error {
	dir, err := os.MkdirTemp("", "clerkjobstest-")
	if err != nil {
		return err
	}
	e.addCloser(func() { _ = os.RemoveAll(dir) })
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: dir})
	if err != nil {
		return err
	}
	e.addCloser(srv.Close)
	e.NATS, e.URL, e.Conn, e.JetStream = srv.Server, srv.URL, srv.Conn, srv.JetStream
	e.Clerk = emulator.NewServer(e.opts.emulator...)
	e.addCloser(e.Clerk.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := e.Topology.Ensure(ctx, e.JetStream); err != nil {
		return fmt.Errorf("create the streams: %w", err)
	}
	if e.Client, err = clerkjobs.NewClient(e.Conn, append([]clerkjobs.Option{clerkjobs.WithTopology(e.Topology)}, e.opts.client...)...); err != nil {
		return err
	}
	if !e.opts.noWorker {
		e.Worker, err = e.startWorker()
	}
	return err
}

// Close stops the workers, the emulator and NATS, and removes NATS' files.
// New's Env is closed at the end of the test.
func (e *Env) Close() {
	e.once.Do(func() {
		e.mu.Lock()
		closers := e.closers
		e.closers, e.closed = nil, true
		e.mu.Unlock()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	})
}

// Topology is the default topology with a test's limits: a 2-second ack
// wait and 3 deliveries (a job whose worker stopped is redelivered within
// seconds), 64 MiB results and dead-letter streams.
func Topology() jobs.Topology {
	t := jobs.DefaultTopology()
	t.AckWait = 2 * time.Second
	t.MaxDeliver = 3
	t.ResultsMaxBytes, t.DeadLetterMaxBytes = 64<<20, 64<<20
	return t
}

// WorkerConfig is a worker configuration for tests on topology top: no
// rate limit, retries and nak delays in milliseconds (a job Clerk keeps
// failing is dead-lettered as exhausted in well under a second), the
// circuit probing every 100 ms (worker.MinProbeInterval).
func WorkerConfig(top jobs.Topology) worker.Config {
	c := worker.DefaultConfig()
	c.Topology = top
	c.RateLimit, c.RateKey = worker.RateLimit{}, worker.KeyFingerprint(emulator.DefaultSecretKey)
	c.Retry = worker.RetryPolicy{
		Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2, Jitter: 0.2,
		DeliveryBudget: 60 * time.Millisecond, NakDelay: 30 * time.Millisecond, NakDelayMax: 100 * time.Millisecond,
	}
	c.ProbeInterval = worker.MinProbeInterval
	c.DrainTimeout = 5 * time.Second
	c.SweepInterval = 500 * time.Millisecond
	c.FetchMaxWait = time.Second
	return c
}

// StartWorker starts one more worker against the emulator (several share
// the jobs), configured by WorkerConfig, WithWorkerConfig and edits, and
// waits until it is ready. It stops when the Env closes. Parallel
// subtests sharing the Env may each call it.
func (e *Env) StartWorker(t testing.TB, edits ...func(*worker.Config)) *Worker {
	t.Helper()
	w, err := e.startWorker(edits...)
	if err != nil {
		t.Fatalf("clerkjobstest: %v", err)
	}
	t.Cleanup(func() { w.Stop(t) })
	return w
}

func (e *Env) startWorker(edits ...func(*worker.Config)) (*Worker, error) {
	cfg := WorkerConfig(e.Topology)
	for _, f := range append(append([]func(*worker.Config){}, e.opts.config...), edits...) {
		f(&cfg)
	}
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(e.Clerk.URL))
	if err != nil {
		return nil, fmt.Errorf("Clerk client: %w", err)
	}
	w, err := worker.New(e.Conn, clerk, cfg, e.opts.workerOpts...)
	if err != nil {
		return nil, fmt.Errorf("worker.New: %w", err)
	}
	r := start(w)
	e.addCloser(func() { _ = r.stop() })
	return r, r.ready()
}

// Worker is a worker running in the background.
type Worker struct {
	*worker.Worker
	cancel context.CancelFunc
	done   chan struct{} // closed once Run has returned runErr
	runErr error
	once   sync.Once
	err    error
}

// Run runs w in the background until Stop or the end of the test, and
// waits until it is ready to take jobs: for a worker made with options of
// its own (another Clerk client, say).
func Run(t testing.TB, w *worker.Worker) *Worker {
	t.Helper()
	r := start(w)
	t.Cleanup(func() { r.Stop(t) })
	if err := r.ready(); err != nil {
		t.Fatalf("clerkjobstest: %v", err)
	}
	return r
}

func start(w *worker.Worker) *Worker {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Worker{Worker: w, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.runErr = w.Run(ctx)
	}()
	return r
}

// ready waits until the worker takes jobs, or says why Run returned
// first.
func (r *Worker) ready() error {
	deadline := time.Now().Add(15 * time.Second)
	for r.Ready() != nil {
		select {
		case <-r.done:
			if r.runErr != nil {
				return fmt.Errorf("worker Run: %w", r.runErr)
			}
			return errors.New("worker Run returned before the worker was ready")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("worker not ready after 15s: %w", r.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Stop shuts the worker down gracefully (jobs in flight get its drain
// timeout) and waits until it has stopped; it fails the test if Run
// failed. Stopping twice is harmless.
func (r *Worker) Stop(t testing.TB) {
	t.Helper()
	if err := r.stop(); err != nil {
		t.Errorf("clerkjobstest: %v", err)
	}
}

func (r *Worker) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
			if r.runErr != nil {
				r.err = fmt.Errorf("worker Run: %w", r.runErr)
			}
		case <-time.After(30 * time.Second):
			r.err = errors.New("worker did not stop within 30s")
		}
	})
	return r.err
}
