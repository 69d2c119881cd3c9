package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Worker runs session jobs. Create it with New, start it with Run. Several
// processes (or Workers) share the work through one durable consumer.
type Worker struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	clerk   *gate
	handler handlers.Handler
	metrics *metrics
	circuit *circuit
	clock   clock

	inflight  inflight
	history   history
	recordIDs string // prefix of result and dead-letter Nats-Msg-Ids
	// trustedResults: the handler is the worker's own, whose answers are
	// json.Marshal output (see encodeResult).
	trustedResults bool

	started   atomic.Bool
	recordErr atomic.Pointer[refusal] // last refused record, cleared on success
	fetchErr  atomic.Pointer[string]  // last failed fetch, cleared by one that works
}

// Option changes how New builds a Worker.
type Option func(*Worker)

// WithHandler replaces the job handler: every job goes to h.
func WithHandler(h handlers.Handler) Option { return func(w *Worker) { w.handler = h } }

// New builds a Worker that takes jobs from nc's JetStream and runs them
// against clerk. It checks cfg; nothing starts before Run.
func New(nc *nats.Conn, clerk clerkapi.Sessions, cfg Config, opts ...Option) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || clerk == nil {
		return nil, errors.New("worker: a NATS connection and a Clerk client are required")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("worker: JetStream: %w", err)
	}
	m := newMetrics()
	w := &Worker{cfg: cfg, nc: nc, js: js, metrics: m, clock: realClock{}}
	w.clerk = newGate(clerk, cfg.RateLimit, cfg.RateBurst, m)
	w.circuit = newCircuit(w.probe, cfg.ProbeInterval, cfg.Logger, w.setCircuitMetric)
	w.history = newHistory(10000)
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

// Clerk is the rate-limited Clerk client the worker's handlers use; a
// custom handler (WithHandler) should call Clerk through it too.
func (w *Worker) Clerk() clerkapi.Sessions { return w.clerk }

// Run creates or updates the streams and the consumer, then runs jobs until
// ctx ends. Then it stops fetching, gives the jobs in flight DrainTimeout to
// finish, naks the rest so another worker takes them at once, and returns
// nil. It returns an error only when it cannot start.
func (w *Worker) Run(ctx context.Context) error {
	topo := w.cfg.Topology
	cons, err := w.setUp(ctx)
	if errors.Is(err, errStopped) {
		return nil // asked to stop before it could start: a graceful stop
	}
	if err != nil {
		return err
	}
	info, err := w.js.Stream(ctx, topo.JobsStream)
	if err != nil {
		return fmt.Errorf("worker: stream %s: %w", topo.JobsStream, err)
	}
	// The stream's creation time keeps record ids unique even if the
	// stream is deleted and recreated (sequences restart then).
	w.recordIDs = fmt.Sprintf("%s-%d", topo.JobsStream, info.CachedInfo().Created.UnixNano())
	if w.handler == nil {
		kv, err := w.js.KeyValue(ctx, topo.ProgressBucket)
		if err != nil {
			return fmt.Errorf("worker: progress bucket %s: %w", topo.ProgressBucket, err)
		}
		w.handler = handlers.Router{Sessions: handlers.Sessions{Clerk: w.clerk}, RevokeAll: w.revokeAllHandler(kv)}
		w.trustedResults = true
	}

	// workCtx outlives ctx by the drain timeout: jobs in flight at
	// shutdown get that long to finish.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	run := chain(adapt(w.handler),
		w.circuit.middleware(workCtx),
		retry(w.cfg.Retry, w.clock, w.onRetry),
	)

	svc, err := w.registerService()
	if err != nil {
		return err
	}
	defer svc.Stop()

	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); w.heartbeat(workCtx) }()
	go func() { defer bg.Done(); w.backstop(workCtx) }()

	w.started.Store(true)
	w.cfg.Logger.Info().Str("instance", w.cfg.Instance).Int("concurrency", w.cfg.Concurrency).
		Float64("rate_limit", w.cfg.RateLimit).Str("stream", topo.JobsStream).Str("consumer", topo.Consumer).
		Str("nats_server", w.nc.ConnectedUrlRedacted()).
		Msg("worker started")

	// Jobs run on Concurrency long-lived goroutines (a goroutine per job
	// would grow a fresh stack through the JSON, HTTP and NATS code of
	// every job). A job is fetched only for a free slot, and a slot is freed
	// only when its job is settled, so there is always an idle goroutine for
	// a fetched job: none waits in the queue, unwatched by the heartbeat,
	// behind a long one.
	var jobsWG sync.WaitGroup
	queue := make(chan jetstream.Msg, w.cfg.Concurrency)
	for range w.cfg.Concurrency {
		jobsWG.Add(1)
		go func() {
			defer jobsWG.Done()
			for msg := range queue {
				w.process(workCtx, run, msg)
			}
		}()
	}
	w.fetchLoop(ctx, cons, func(msg jetstream.Msg) { queue <- msg })
	close(queue)

	w.started.Store(false)
	w.cfg.Logger.Info().Int("in_flight", w.inflight.len()).Dur("drain_timeout", w.cfg.DrainTimeout).Msg("stopping: draining jobs in flight")
	done := make(chan struct{})
	go func() { jobsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.DrainTimeout):
		w.cfg.Logger.Warn().Int("in_flight", w.inflight.len()).Msg("drain timeout: naking the jobs still running")
		cancelWork()
		<-done
	}
	cancelWork()
	bg.Wait()
	w.cfg.Logger.Info().Msg("worker stopped")
	return nil
}

// errStopped: Run was asked to stop while setting up.
var errStopped = errors.New("stopped during set-up")

// setUp checks what exists against the configuration, then creates or
// updates the streams, bucket and consumer. A difference that cannot be
// updated in place (storage, retention, ...) stops the worker with what to
// do; anything else that fails (no quorum yet on a fresh cluster, a lost API
// reply, several workers creating the same streams at once) is retried with
// backoff until ctx ends, the worker not ready meanwhile.
func (w *Worker) setUp(ctx context.Context) (jetstream.Consumer, error) {
	topo := w.cfg.Topology
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 500*time.Millisecond, 15*time.Second, 0
	for {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		drifts, err := topo.Check(cctx, w.js)
		var drift *jobs.DriftError
		if errors.As(err, &drift) {
			cancel()
			return nil, fmt.Errorf("worker: %w", err)
		}
		var cons jetstream.Consumer
		if err == nil {
			for _, d := range drifts {
				w.cfg.Logger.Warn().Str("drift", d.String()).Msg("JetStream differs from the configuration; updating it")
			}
			cons, err = topo.Ensure(cctx, w.js)
		}
		cancel()
		if err == nil {
			return cons, nil
		}
		wait := b.NextBackOff()
		w.cfg.Logger.Warn().Err(err).Dur("retry_in", wait).Msg("cannot set up the streams and consumer yet; retrying")
		select {
		case <-ctx.Done():
			return nil, errStopped
		case <-time.After(wait):
		}
	}
}

// fetchLoop pulls only as many jobs as there are free slots, so that no job
// waits in a client buffer with its ack timer running, and pulls nothing
// while the circuit is open.
func (w *Worker) fetchLoop(ctx context.Context, cons jetstream.Consumer, start func(jetstream.Msg)) {
	slots := make(chan struct{}, w.cfg.Concurrency)
	for i := 0; i < w.cfg.Concurrency; i++ {
		slots <- struct{}{}
	}
	release := func() { slots <- struct{}{} }
	for ctx.Err() == nil {
		if err := w.circuit.Wait(ctx); err != nil {
			return
		}
		// Take at least one slot, then every free one.
		n := 0
		select {
		case <-slots:
			n = 1
		case <-ctx.Done():
			return
		}
	more:
		for n < w.cfg.Concurrency {
			select {
			case <-slots:
				n++
			default:
				break more
			}
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(w.cfg.FetchMaxWait))
		if err != nil {
			for ; n > 0; n-- {
				release()
			}
			if ctx.Err() == nil {
				w.fetchFailed(err)
				w.cfg.Logger.Warn().Err(err).Msg("fetch failed; retrying in 1s")
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		for msg := range batch.Messages() {
			n--
			start(&slotMsg{Msg: msg, release: release})
		}
		for ; n > 0; n-- {
			release()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoHeartbeat) && ctx.Err() == nil {
			w.fetchFailed(err)
			w.cfg.Logger.Warn().Err(err).Msg("fetch ended with an error")
			sleepCtx(ctx, 100*time.Millisecond)
		} else if err == nil || errors.Is(err, nats.ErrTimeout) {
			w.fetchErr.Store(nil)
		}
	}
}

// fetchFailed keeps the reason for Ready: a worker that cannot fetch (the
// consumer has no leader, its stream no quorum) takes no jobs, even though
// it is connected and has nothing to record.
func (w *Worker) fetchFailed(err error) {
	topo := w.cfg.Topology
	msg := fmt.Sprintf("cannot fetch jobs from consumer %s of stream %s: %v", topo.Consumer, topo.JobsStream, err)
	if errors.Is(err, nats.ErrNoResponders) {
		msg += " (no server serves the consumer now: after the loss of a NATS node this lasts until it has a new leader, seconds; if it lasts, check that the consumer exists and that most of the stream's nodes are up)"
	}
	w.fetchErr.Store(&msg)
}

// slotMsg is a delivery in flight: it gives its slot back when done, and
// keeps progress signals from crossing its settlement.
type slotMsg struct {
	jetstream.Msg
	release func()
	once    sync.Once

	mu      sync.Mutex
	settled bool
}

func (m *slotMsg) done() { m.once.Do(m.release) }

// InProgress extends the ack wait unless the delivery is settled. A progress
// signal that reached the server after a nak would restart the ack wait and
// cancel the nak's delay, so the two never cross.
func (m *slotMsg) InProgress() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.settled {
		return nil
	}
	return m.Msg.InProgress()
}

// Ack settles the delivery.
func (m *slotMsg) Ack() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled = true
	return m.Msg.Ack()
}

// NakWithDelay settles the delivery.
func (m *slotMsg) NakWithDelay(d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled = true
	return m.Msg.NakWithDelay(d)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// probe asks Clerk something cheap with the worker's key: a 404 for a
// session that does not exist means the key is accepted.
func (w *Worker) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := w.clerk.GetSession(pctx, "sess_circuitprobe")
	return err
}

func (w *Worker) setCircuitMetric(open bool) {
	if open {
		w.metrics.circuitOpen.Set(1)
	} else {
		w.metrics.circuitOpen.Set(0)
	}
}

func (w *Worker) onRetry(j *job, err error, wait time.Duration) {
	w.metrics.retries.WithLabelValues(string(j.Op)).Inc()
	w.cfg.Logger.Debug().Str("job_id", j.ID).Str("op", string(j.Op)).Int("attempt", j.Attempts).
		Dur("backoff", wait).Str("error", err.Error()).Msg("retrying")
}

// refusal is a record JetStream refused, and when.
type refusal struct {
	reason string
	at     time.Time
}

// refusalTTL is how long a refused record keeps the worker not ready when
// no later record is stored: the longest a refused job waits for its next
// delivery, ack wait included, and that record's own timeout. A job still
// refused is refused again within it; without one (a worker gone idle while
// another stored the job once the stream was back) the refusal is stale,
// and would otherwise keep the worker not ready until its next job.
func (w *Worker) refusalTTL() time.Duration {
	r := w.cfg.Retry
	return time.Duration(float64(r.NakDelayMax)*(1+r.Jitter)) + w.cfg.Topology.AckWait + recordTimeout
}

// Ready reports nil when the worker takes jobs, or why it does not.
func (w *Worker) Ready() error {
	if !w.started.Load() {
		return errors.New("not running")
	}
	if !w.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if open, cause := w.circuit.Open(); open {
		return fmt.Errorf("circuit open: Clerk rejects the secret key (%s)", cause)
	}
	if r := w.recordErr.Load(); r != nil && w.clock.Now().Sub(r.at) < w.refusalTTL() {
		return fmt.Errorf("JetStream refuses results or dead letters: %s", r.reason)
	}
	if p := w.fetchErr.Load(); p != nil {
		return errors.New(*p)
	}
	return nil
}
