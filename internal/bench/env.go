package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// env is everything one bench run shares: NATS, the emulator, the bench's
// own NATS connection (publisher and result collectors), and what it takes
// to start workers.
type env struct {
	opts      Options
	tmp       string
	srv       *server.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	emu       *emulator.Server
	workerBin string   // empty when no scenario runs worker processes
	pool      []string // sessions the single jobs revoke
	runs      int      // topologies made
	pubErrs   atomic.Int64
}

func newEnv(ctx context.Context, o Options, needBinary bool) (_ *env, err error) {
	// Not the named result: "return nil, err" would leave the deferred
	// close with nil.
	e := &env{opts: o}
	if e.tmp, err = os.MkdirTemp("", "clerkjobs-bench-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	// pprof labels tell the components apart in a --cpuprofile of an
	// in-process run: goroutines inherit them.
	labeled("nats-server", func() {
		e.srv, err = embedded.Start(embedded.Options{Addr: "127.0.0.1:0", StoreDir: filepath.Join(e.tmp, "nats")})
	})
	if err != nil {
		return nil, err
	}
	if e.nc, err = nats.Connect(e.srv.ClientURL(), nats.Name("clerkjobs-bench")); err != nil {
		return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	e.js, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { e.pubErrs.Add(1) }))
	if err != nil {
		return nil, err
	}
	// The emulator keeps every call of a run, so that 429s and windows can
	// be counted.
	labeled("emulator", func() { e.emu = emulator.NewServer(emulator.WithCallLogLimit(200_000), emulator.WithSeed(1)) })
	e.pool = e.emu.Emulator.CreateSessions(e.emu.Emulator.CreateUser(), 1000)
	if o.Worker == "process" || needBinary {
		if e.workerBin = o.WorkerBin; e.workerBin == "" {
			e.workerBin = filepath.Join(e.tmp, "worker")
			e.logf("building the worker: go build -o %s ./cmd/worker", e.workerBin)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", e.workerBin, "github.com/clerkjobs/clerkjobs/cmd/worker")
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("go build ./cmd/worker: %w\n%s", err, out)
			}
		}
	}
	return e, nil
}

// labeled runs f with the pprof label component=name: goroutines f starts
// inherit it.
func labeled(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("component", name), func(context.Context) { f() })
}

func (e *env) close() {
	if e.nc != nil {
		e.nc.Close()
	}
	if e.emu != nil {
		e.emu.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	_ = os.RemoveAll(e.tmp)
}

func (e *env) logf(format string, args ...any) {
	if e.opts.Log != nil {
		fmt.Fprintf(e.opts.Log, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

// clerkLimit is a rate limit the emulator enforces per key; the zero value
// is none.
type clerkLimit struct {
	n      int
	window time.Duration
	mode   emulator.RateLimitMode // the window form; zero is fixed windows
}

func (l clerkLimit) perSecond() float64 { return float64(l.n) / l.window.Seconds() }

func (l clerkLimit) String() string {
	form := "fixed windows"
	if l.mode == emulator.SlidingWindow {
		form = "sliding window"
	}
	return fmt.Sprintf("%d per %g s, %s", l.n, l.window.Seconds(), form)
}

// resetEmulator sets the emulator's latency and rate limit for a run and
// empties its call log.
func (e *env) resetEmulator(latency time.Duration, lim clerkLimit) {
	e.emu.Emulator.SetRateLimitMode(cmp.Or(lim.mode, emulator.FixedWindow))
	e.emu.Emulator.SetFaults(emulator.Faults{Latency: latency})
	e.emu.Emulator.SetRateLimit(lim.n, lim.window)
	e.emu.Emulator.ResetCalls()
}

// newRun sets the emulator for a run (see resetEmulator) and returns fresh
// streams and subjects, so that runs never see each other's messages.
// dropTopology deletes them.
func (e *env) newRun(ctx context.Context, latency time.Duration, lim clerkLimit) (jobs.Topology, error) {
	e.resetEmulator(latency, lim)
	e.runs++
	id := strconv.Itoa(e.runs)
	t := jobs.DefaultTopology()
	t.Subjects.Prefix = "bench" + id
	t.JobsStream = "BENCH" + id + "_JOBS"
	t.ResultsStream = "BENCH" + id + "_RESULTS"
	t.DeadLetterStream = "BENCH" + id + "_DLQ"
	t.Consumer = "bench-worker"
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := t.Ensure(ctx, e.js)
	return t, err
}

func (e *env) dropTopology(t jobs.Topology) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range []string{t.JobsStream, t.ResultsStream, t.DeadLetterStream} {
		_ = e.js.DeleteStream(ctx, s)
	}
}

// streamMsgs is the number of messages in a stream now.
func (e *env) streamMsgs(ctx context.Context, stream string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.Msgs, nil
}

// workerSpec is what a bench run changes in a worker's configuration; the
// rest is the worker's default.
type workerSpec struct {
	Concurrency int
	// RateLimit is the worker's --rate-limit, as on its command line.
	RateLimit       string
	BulkConcurrency int // 0: default
	// Bin is another cmd/worker binary to run (empty: the one under
	// test), Env variables added to its environment (OTEL_*). Either makes
	// the worker a process whatever the mode: they only mean something to
	// one.
	Bin string
	Env []string
}

// runningWorker is a worker started for a run: a cmd/worker process, or a
// Worker inside the bench process.
type runningWorker struct {
	pid     int           // whose CPU and memory are the worker's: the bench's own when in-process
	proc    *os.Process   // nil in-process
	term    func()        // asks for a graceful stop: SIGTERM, or the end of Run's context
	halt    func()        // stops at once: SIGKILL, or Run's context ended and its connection closed
	exited  chan struct{} // closed when the worker has stopped; then err is set
	err     error
	logPath string // a process's log
}

// startWorker starts a worker of the run's mode with spec and waits until
// it is ready.
func (e *env) startWorker(ctx context.Context, t jobs.Topology, spec workerSpec) (*runningWorker, error) {
	if e.opts.Worker == "inprocess" && spec.Bin == "" && len(spec.Env) == 0 {
		return e.startInProcess(ctx, t, spec)
	}
	return e.startProcess(ctx, t, spec, 0)
}

// sample reads the CPU time and memory of the worker's process (the whole
// bench process for an in-process worker).
func (w *runningWorker) sample() procSample {
	s, _ := readProc(w.pid)
	return s
}

func instanceName(t jobs.Topology, i int) string {
	return fmt.Sprintf("bench-%s-%d", t.Subjects.Prefix, i)
}

func (e *env) startProcess(ctx context.Context, t jobs.Topology, spec workerSpec, i int) (*runningWorker, error) {
	instance := instanceName(t, i)
	args := []string{
		"--nats-url", e.srv.ClientURL(),
		"--clerk-api-url", e.emu.URL,
		"--concurrency", strconv.Itoa(spec.Concurrency),
		"--rate-limit", spec.RateLimit,
		"--subject-prefix", t.Subjects.Prefix,
		"--jobs-stream", t.JobsStream,
		"--results-stream", t.ResultsStream,
		"--dlq-stream", t.DeadLetterStream,
		"--consumer", t.Consumer,
		"--instance", instance,
		"--metrics-addr=",
		"--log-format", "json",
		"--log-level", "info",
	}
	if spec.BulkConcurrency > 0 {
		args = append(args, "--bulk-concurrency", strconv.Itoa(spec.BulkConcurrency))
	}
	w := &runningWorker{exited: make(chan struct{}), logPath: filepath.Join(e.tmp, instance+".log")}
	out, err := os.Create(w.logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	bin := cmp.Or(spec.Bin, e.workerBin)
	cmd := exec.Command(bin, args...)
	// A clean environment: no WORKER_*, NATS_* or OTEL_* variable of the
	// caller may change the configuration under test.
	cmd.Env = append([]string{"CLERK_SECRET_KEY=" + emulator.DefaultSecretKey, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, spec.Env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", bin, err)
	}
	w.proc, w.pid = cmd.Process, cmd.Process.Pid
	w.term = func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
	w.halt = func() { _ = cmd.Process.Kill() }
	go func() { w.err = cmd.Wait(); close(w.exited) }()
	return w, e.waitReady(ctx, w, instance)
}

// startInProcess connects and starts a Worker with the pprof label
// component=worker: every goroutine it starts (NATS reader, HTTP
// connections, jobs) inherits it.
func (e *env) startInProcess(ctx context.Context, t jobs.Topology, spec workerSpec) (*runningWorker, error) {
	cfg := worker.DefaultConfig()
	cfg.Topology = t
	cfg.Concurrency = spec.Concurrency
	l, err := worker.ParseRateLimit(spec.RateLimit)
	if err != nil {
		return nil, err
	}
	cfg.RateLimit, cfg.RateKey = l, worker.KeyFingerprint(emulator.DefaultSecretKey)
	if spec.BulkConcurrency > 0 {
		cfg.Bulk.Concurrency = spec.BulkConcurrency
	}
	cfg.Instance = instanceName(t, 0)
	// The log lines are formatted as in production, then discarded.
	cfg.Logger = zerolog.New(io.Discard).With().Timestamp().Logger()
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(e.emu.URL),
		clerkapi.WithUserAgent("clerkjobs-worker/"+worker.Version))
	if err != nil {
		return nil, err
	}
	w := &runningWorker{pid: os.Getpid(), exited: make(chan struct{})}
	labeled("worker", func() {
		var nc *nats.Conn
		if nc, err = nats.Connect(e.srv.ClientURL(), nats.Name(cfg.Instance)); err != nil {
			return
		}
		var wk *worker.Worker
		if wk, err = worker.New(nc, clerk, cfg); err != nil {
			nc.Close()
			return
		}
		rctx, cancel := context.WithCancel(context.Background())
		w.term, w.halt = cancel, func() { cancel(); nc.Close() }
		go func() {
			w.err = wk.Run(rctx)
			nc.Close()
			close(w.exited)
		}()
	})
	if err != nil {
		return nil, err
	}
	return w, e.waitReady(ctx, w, cfg.Instance)
}

// waitReady asks the worker's micro-service status endpoint until it says
// ready (bounded: 30 s); a worker that is not is killed.
func (e *env) waitReady(ctx context.Context, w *runningWorker, instance string) error {
	subject := fmt.Sprintf("clerkjobs.worker.%s.status", instance)
	err := poll(ctx, 20*time.Millisecond, 30*time.Second, func() bool {
		m, err := e.nc.Request(subject, nil, 200*time.Millisecond)
		var st worker.Status
		return err == nil && json.Unmarshal(m.Data, &st) == nil && st.Ready || w.stopped()
	})
	if err == nil && w.stopped() {
		err = fmt.Errorf("stopped before it was ready: %v", w.err)
	}
	if err != nil {
		_ = w.kill()
		return fmt.Errorf("worker %s: %w\n%s", instance, err, w.logTail())
	}
	return nil
}

// poll calls done every interval until it reports true; it fails when
// ctx ends or timeout passes first.
func poll(ctx context.Context, every, timeout time.Duration, done func() bool) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !done() {
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("not done within %s", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (w *runningWorker) stopped() bool {
	select {
	case <-w.exited:
		return true
	default:
		return false
	}
}

// stop asks for a graceful shutdown (SIGTERM, or the end of Run's
// context) and waits up to 30 s; then a process is killed.
func (w *runningWorker) stop() error {
	w.term()
	select {
	case <-w.exited:
		if w.err != nil {
			return fmt.Errorf("worker stopped: %w\n%s", w.err, w.logTail())
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = w.kill()
		return errors.New("worker did not stop within 30s")
	}
}

// kill stops a worker at once, without a drain: SIGKILL, or for an
// in-process Worker its context ended and its connection closed. Its jobs
// in flight are left to JetStream's redelivery. It fails if the worker had
// stopped on its own.
func (w *runningWorker) kill() error {
	if w.stopped() {
		return fmt.Errorf("worker stopped before it was killed: %v\n%s", w.err, w.logTail())
	}
	w.halt()
	<-w.exited
	return nil
}

// logTail is the end of a worker process's log, for an error message.
func (w *runningWorker) logTail() string {
	b, _ := os.ReadFile(w.logPath)
	return string(b[max(len(b)-2000, 0):])
}
