package bench

import (
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
	"sync"
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
	opts    Options
	log     io.Writer
	tmp     string
	natsURL string
	srv     *server.Server // nil with an external server
	nc      *nats.Conn
	js      jetstream.JetStream
	emu     *emulator.Server

	workerBin string // process mode

	mu      sync.Mutex
	runs    int
	pool    []string // sessions the single jobs revoke
	pubErrs int
}

func newEnv(ctx context.Context, o Options) (*env, error) {
	tmp, err := os.MkdirTemp("", "clerkjobs-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{opts: o, log: o.Log, tmp: tmp}
	if o.NATSURL == "" {
		var s *server.Server
		// pprof labels tell the components apart in a --cpuprofile of an
		// in-process run: goroutines inherit them.
		labeled("nats-server", func() {
			s, err = embedded.Start(embedded.Options{Addr: "127.0.0.1:0", StoreDir: filepath.Join(tmp, "nats")})
		})
		if err != nil {
			e.close()
			return nil, err
		}
		e.srv, e.natsURL = s, s.ClientURL()
	} else {
		e.natsURL = o.NATSURL
	}
	e.nc, err = nats.Connect(e.natsURL, nats.Name("clerkjobs-bench"))
	if err != nil {
		e.close()
		return nil, fmt.Errorf("connect to NATS at %s: %w", e.natsURL, err)
	}
	e.js, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) {
			e.mu.Lock()
			e.pubErrs++
			e.mu.Unlock()
		}))
	if err != nil {
		e.close()
		return nil, err
	}
	// The emulator keeps every call of a run (WithCallLogLimit) so that
	// 429s can be counted.
	labeled("emulator", func() {
		e.emu = emulator.NewServer(emulator.WithCallLogLimit(200_000), emulator.WithSeed(1))
	})
	user := e.emu.Emulator.CreateUser()
	e.pool = e.emu.Emulator.CreateSessions(user, 1000)
	if o.Worker == "process" {
		if e.workerBin = o.WorkerBin; e.workerBin == "" {
			e.workerBin = filepath.Join(tmp, "worker")
			e.logf("building the worker: go build -o %s ./cmd/worker", e.workerBin)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", e.workerBin, "github.com/clerkjobs/clerkjobs/cmd/worker")
			if out, err := cmd.CombinedOutput(); err != nil {
				e.close()
				return nil, fmt.Errorf("go build ./cmd/worker: %v\n%s", err, out)
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
	if e.log != nil {
		fmt.Fprintf(e.log, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

// resetEmulator sets the emulator's latency and rate limit for a run and
// empties its call log.
func (e *env) resetEmulator(latency time.Duration, rateN int, window time.Duration) {
	e.emu.Emulator.SetFaults(emulator.Faults{Latency: latency})
	e.emu.Emulator.SetRateLimit(rateN, window)
	e.emu.Emulator.ResetCalls()
}

// topology returns fresh stream and subject names for one run, so that runs
// never see each other's messages (and an external server's own streams
// are left alone). dropTopology deletes them.
func (e *env) topology(ctx context.Context) (jobs.Topology, error) {
	e.mu.Lock()
	e.runs++
	n := e.runs
	e.mu.Unlock()
	t := jobs.DefaultTopology()
	id := fmt.Sprintf("%d%d", time.Now().Unix()%100000, n)
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
	Concurrency     int
	RateLimit       float64 // 0: none
	BulkConcurrency int     // 0: default
}

// runningWorker is a worker started for a run.
type runningWorker interface {
	// sample reads the worker's CPU time and memory (process mode: the
	// worker process; in-process mode: the whole bench process).
	sample() procSample
	resetPeak()
	stop() error
}

// startWorkers starts n workers with spec and waits until every one is
// ready. Each has its own NATS connection and its own rate limiter.
func (e *env) startWorkers(ctx context.Context, t jobs.Topology, n int, spec workerSpec) ([]runningWorker, error) {
	var ws []runningWorker
	for i := range n {
		var w runningWorker
		var err error
		if e.opts.Worker == "process" {
			w, err = e.startProcess(ctx, t, spec, i)
		} else {
			w, err = e.startInProcess(ctx, t, spec, i)
		}
		if err != nil {
			stopAll(ws)
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

func stopAll(ws []runningWorker) error {
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.stop())
	}
	return errors.Join(errs...)
}

// sampleAll adds up the samples of workers; in-process workers share one
// process, which is counted once.
func sampleAll(ws []runningWorker) procSample {
	var s procSample
	for i, w := range ws {
		x := w.sample()
		if _, in := w.(*inProcessWorker); in && i > 0 {
			continue
		}
		s.CPU += x.CPU
		s.RSS += x.RSS
		s.HWM = max(s.HWM, x.HWM) // peak of the largest process
	}
	return s
}

// ---- worker processes ----

type processWorker struct {
	cmd    *exec.Cmd
	exited chan error
	logf   string
}

func (e *env) startProcess(ctx context.Context, t jobs.Topology, spec workerSpec, i int) (*processWorker, error) {
	instance := fmt.Sprintf("bench-%s-%d", t.Subjects.Prefix, i)
	args := []string{
		"--nats-url", e.natsURL,
		"--clerk-api-url", e.emu.URL,
		"--concurrency", strconv.Itoa(spec.Concurrency),
		"--rate-limit", strconv.FormatFloat(spec.RateLimit, 'f', -1, 64),
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
	logPath := filepath.Join(e.tmp, instance+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(e.workerBin, args...)
	// A clean environment: no WORKER_* or NATS_* variable of the caller
	// may change the configuration under test.
	cmd.Env = []string{"CLERK_SECRET_KEY=" + emulator.DefaultSecretKey, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", e.workerBin, err)
	}
	w := &processWorker{cmd: cmd, exited: make(chan error, 1), logf: logPath}
	go func() { w.exited <- cmd.Wait() }()
	if err := e.waitReady(ctx, instance, w.exited); err != nil {
		_ = w.stop()
		return nil, fmt.Errorf("worker %s: %w\n%s", instance, err, tail(logPath, 2000))
	}
	return w, nil
}

// waitReady asks the worker's micro-service status endpoint until it says
// ready (bounded: 30 s).
func (e *env) waitReady(ctx context.Context, instance string, exited <-chan error) error {
	subject := fmt.Sprintf("clerkjobs.worker.%s.status", instance)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		m, err := e.nc.Request(subject, nil, 200*time.Millisecond)
		if err == nil {
			var st worker.Status
			if json.Unmarshal(m.Data, &st) == nil && st.Ready {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("not ready within 30s")
}

func (w *processWorker) sample() procSample {
	s, _ := readProc(w.cmd.Process.Pid)
	return s
}

func (w *processWorker) resetPeak() { _ = resetPeak(w.cmd.Process.Pid) }

// stop sends SIGTERM (a graceful shutdown) and waits up to 30 s, then
// kills.
func (w *processWorker) stop() error {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.exited:
		if err != nil {
			return fmt.Errorf("worker exited: %v\n%s", err, tail(w.logf, 2000))
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
		return errors.New("worker did not stop within 30s; killed")
	}
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}

// ---- in-process workers ----

type inProcessWorker struct {
	w      *worker.Worker
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

func (e *env) startInProcess(ctx context.Context, t jobs.Topology, spec workerSpec, i int) (*inProcessWorker, error) {
	var iw *inProcessWorker
	var err error
	labeled("worker", func() { iw, err = e.launchInProcess(t, spec, i) })
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for iw.w.Ready() != nil {
		select {
		case err := <-iw.done:
			iw.nc.Close()
			return nil, fmt.Errorf("worker stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = iw.stop()
			return nil, fmt.Errorf("worker not ready: %v", iw.w.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return iw, nil
}

// launchInProcess connects and starts a Worker; every goroutine it starts
// (NATS reader, HTTP connections, jobs) inherits the caller's labels.
func (e *env) launchInProcess(t jobs.Topology, spec workerSpec, i int) (*inProcessWorker, error) {
	nc, err := nats.Connect(e.natsURL, nats.Name(fmt.Sprintf("bench-worker-%d", i)))
	if err != nil {
		return nil, err
	}
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(e.emu.URL),
		clerkapi.WithUserAgent("clerkjobs-worker/"+worker.Version))
	if err != nil {
		nc.Close()
		return nil, err
	}
	cfg := worker.DefaultConfig()
	cfg.Topology = t
	cfg.Concurrency = spec.Concurrency
	cfg.RateLimit = spec.RateLimit
	if spec.BulkConcurrency > 0 {
		cfg.Bulk.Concurrency = spec.BulkConcurrency
	}
	cfg.Instance = fmt.Sprintf("bench-%s-%d", t.Subjects.Prefix, i)
	// The log lines are formatted as in production, then discarded.
	cfg.Logger = zerolog.New(io.Discard).With().Timestamp().Logger()
	w, err := worker.New(nc, clerk, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	iw := &inProcessWorker{w: w, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { iw.done <- w.Run(rctx) }()
	return iw, nil
}

func (w *inProcessWorker) sample() procSample {
	s, _ := readProc(os.Getpid())
	s.CPU = selfCPU()
	return s
}

func (w *inProcessWorker) resetPeak() { _ = resetPeak(os.Getpid()) }

func (w *inProcessWorker) stop() error {
	w.cancel()
	defer w.nc.Close()
	select {
	case err := <-w.done:
		if err == nil {
			_ = w.nc.Drain()
		}
		return err
	case <-time.After(30 * time.Second):
		return errors.New("in-process worker did not stop within 30s")
	}
}
