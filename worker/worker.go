package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
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
	// progress is the revoke_all progress store of the worker's own
	// handler, nil with WithHandler: a revoke_all's dead letter deletes
	// the job's progress from it (dropProgress).
	progress handlers.ProgressStore
	metrics  *metrics
	circuit  *circuit
	clock    clock.Clock
	// ensureMu lets one ensure run at a time: the fetch loop and the
	// record path may both find a deletion, and JetStream (2.15) races a
	// stream's update against the creation of its consumer (the race
	// detector sees it in the embedded server).
	ensureMu sync.Mutex
	replies  *replies
	tracer   trace.Tracer // the worker's spans' tracer, from Config.TracerProvider
	tracing  bool         // whether tracer's spans record (see newTracer)

	inflight inflight
	history  history
	records  *records

	started atomic.Bool
	// fetchErr is why the fetch loop cannot take jobs (a consumer that is
	// gone and cannot be recreated yet), nil while it can.
	fetchErr atomic.Pointer[string]
	// consumerAckWait is the consumer's ack wait as last read (see
	// ackWait), 0 before; ackWaitChanged wakes the heartbeat when it
	// changes.
	consumerAckWait atomic.Int64
	ackWaitChanged  chan struct{}
	// consumerCreated is when the consumer was created as last read
	// (UnixNano; see delivery.replaced), 0 before; consumerRenewed wakes
	// the fetch loop when it moves on (see take).
	consumerCreated atomic.Int64
	consumerRenewed chan struct{}
	// consumerStall is why the consumer delivers some jobs or none (paused,
	// filtered: see observeStall), nil while it delivers every job.
	consumerStall atomic.Pointer[stall]
	// pulling is how many jobs the pull under way asks for at most (see
	// pullBatch), 0 before the first.
	pulling atomic.Int64
	// consumerBatch is the consumer's max_batch as last read, plus one (0
	// before the first read); batchChanged wakes the pull under way when
	// it changes, for a pull of the size it calls for (see take).
	consumerBatch atomic.Int64
	batchChanged  chan struct{}
	// jobsStream is the jobs stream's use as the sweep last read it (see
	// noteJobsStream), nil before.
	jobsStream atomic.Pointer[StreamStatus]
}

// Option changes how New builds a Worker.
type Option func(*Worker)

// WithHandler replaces the job handler: every job goes to h.
func WithHandler(h handlers.Handler) Option { return func(w *Worker) { w.handler = h } }

// ErrConnectionClosed is returned by Run when the NATS connection is closed
// for good (the client gave up reconnecting, or the server closed it): the
// worker can neither work nor recover, and its supervisor should start a
// new process.
var ErrConnectionClosed = errors.New("worker: the NATS connection is closed")

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
	w := &Worker{cfg: cfg, nc: nc, js: js, metrics: m, clock: clock.Real{}, ackWaitChanged: make(chan struct{}, 1),
		consumerRenewed: make(chan struct{}, 1), batchChanged: make(chan struct{}, 1)}
	w.tracer, w.tracing = newTracer(cfg.TracerProvider)
	w.clerk = newGate(clerk, m)
	// Until Run joins the fleet's budget, and without a limit, a budget of
	// this process's own still honours every Retry-After.
	local := RateLimit{}
	if cfg.RateScope == RateProcess && !cfg.RateLimit.Unlimited() {
		local = cfg.RateLimit
	}
	b, err := ratebudget.NewLocal(local)
	if err != nil {
		return nil, fmt.Errorf("worker: rate limit: %w", err)
	}
	w.clerk.budget.Store(b)
	m.observeBudget(w.budgetStats)
	w.circuit = newCircuit(w.probe, cfg.ProbeInterval, cfg.Logger, m.circuitOpen)
	w.clerk.hold = w.circuit.Wait
	w.inflight.ds = map[*delivery]struct{}{}
	w.history.byKey = map[msgIdentity][]jobs.Failure{}
	w.replies = &replies{nc: nc, js: js, subjects: cfg.Topology.Subjects, prefixes: cfg.ReplyPrefixes}
	w.records = &records{w: w, parked: map[*delivery]*outcome{}, full: newLevel(), wake: make(chan struct{}, 1)}
	w.records.gen.Store(new(string)) // "" until Run reads the jobs stream's
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
// nil. It returns an error when it cannot start, and ErrConnectionClosed
// when the NATS connection closes for good.
func (w *Worker) Run(ctx context.Context) error {
	topo := w.cfg.Topology
	cons, err := w.setUp(ctx)
	if errors.Is(err, errStopped) {
		return nil // asked to stop before it could start: a graceful stop
	}
	if err != nil {
		return err
	}
	if err := w.joinFleetBudget(ctx); err != nil {
		return err
	}
	defer func() { w.clerk.budget.Load().Close() }()
	if w.handler == nil {
		kv, err := w.js.KeyValue(ctx, topo.ProgressBucket)
		if err != nil {
			return fmt.Errorf("worker: progress bucket %s: %w", topo.ProgressBucket, err)
		}
		ra := w.revokeAllHandler(kv)
		w.handler, w.progress = handlers.Router{Sessions: handlers.Sessions{Clerk: w.clerk}, RevokeAll: ra}, ra.Store
	}

	// workCtx outlives ctx by the drain timeout: jobs in flight at
	// shutdown get that long to finish.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	run := chain(adapt(w.handler),
		recoverPanic(w.cfg.Logger),
		w.circuit.middleware(workCtx),
		retry(w.cfg.Retry, w.clock, w.onRetry),
	)

	svc, err := w.registerService()
	if err != nil {
		return err
	}
	defer svc.Stop()
	w.replies.loadPermissions(ctx, w.cfg.Logger)

	// The heartbeat lasts as long as the worker holds jobs: past the drain
	// timeout, the shutdown still waits for the jobs that have not
	// returned (a handler slow to stop, a record being stored) and hands
	// back the parked ones. Stopped with workCtx, such a job would be
	// redelivered, and run elsewhere, while it runs here.
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	var beat sync.WaitGroup
	beat.Go(func() { w.heartbeat(beatCtx) })
	defer func() { stopBeat(); beat.Wait() }()
	advisories, stopListening := w.listenMaxDeliveries()
	defer stopListening()
	var bg sync.WaitGroup
	for _, f := range []func(context.Context){
		w.watchConsumer, w.watchTopology, func(ctx context.Context) { w.backstop(ctx, advisories) }, w.records.retryParked, w.records.sweepLetters,
	} {
		bg.Go(func() { f(workCtx) })
	}

	w.started.Store(true)
	w.cfg.Logger.Info().Str("instance", w.cfg.Instance).Int("concurrency", w.cfg.Concurrency).
		Str("rate_limit", w.cfg.RateLimit.String()).Str("rate_scope", string(w.cfg.RateScope)).Str("stream", topo.JobsStream).Str("consumer", topo.Consumer).
		// natsconn.Redact, not ConnectedUrlRedacted: nats.go hides a
		// password but not a token given as the URL's user part.
		Str("nats_server", natsconn.Redact(w.nc.ConnectedUrl())).
		Msg("worker started")
	if msg, ok := rateWarning(w.cfg.RateLimit, w.cfg.RateScope); ok {
		w.cfg.Logger.Warn().Str("rate_limit", w.cfg.RateLimit.String()).Msg(msg)
	}

	// Jobs run on Concurrency long-lived goroutines (a goroutine per job
	// would grow a fresh stack through the JSON, HTTP and NATS code of
	// every job). A job is taken only for a free slot, and a slot is freed
	// only when its job is settled (or parked, see records), so there is
	// always an idle goroutine for a job taken: none waits in the queue,
	// unwatched by the heartbeat, behind a long one.
	var jobsWG sync.WaitGroup
	queue := make(chan *delivery, w.cfg.Concurrency)
	for range w.cfg.Concurrency {
		jobsWG.Go(func() {
			for d := range queue {
				w.process(workCtx, run, d)
			}
		})
	}
	fetchErr := w.fetchLoop(ctx, cons, queue)
	close(queue)

	w.started.Store(false)
	w.cfg.Logger.Info().Int("in_flight", w.inflight.len()).Dur("drain_timeout", w.cfg.DrainTimeout).Msg("stopping: draining jobs in flight")
	done := make(chan struct{})
	go func() { jobsWG.Wait(); w.records.drain(workCtx); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.DrainTimeout):
		w.cfg.Logger.Warn().Int("in_flight", w.inflight.len()).Msg("drain timeout: naking the jobs still running")
		cancelWork()
		<-done
	}
	cancelWork()
	bg.Wait()
	w.records.nakParked()
	if fetchErr != nil {
		w.cfg.Logger.Error().Err(fetchErr).Msg("worker stopped: it can neither work nor recover")
		return fetchErr
	}
	w.cfg.Logger.Info().Msg("worker stopped")
	return nil
}

// joinFleetBudget replaces the process's own budget with the key's budget
// in the fleet (RateFleet with a limit).
func (w *Worker) joinFleetBudget(ctx context.Context) error {
	if w.cfg.RateScope != RateFleet || w.cfg.RateLimit.Unlimited() {
		w.warnOutsideFleet(ctx)
		return nil
	}
	kv, err := w.js.KeyValue(ctx, w.cfg.Topology.RateBucket)
	if err != nil {
		return fmt.Errorf("worker: rate-budget bucket %s: %w", w.cfg.Topology.RateBucket, err)
	}
	// A bucket deleted by hand is created again like the worker's streams
	// (heal: the whole topology, at most once every two seconds).
	b, err := ratebudget.New(kv, w.cfg.RateKey, w.cfg.RateLimit,
		ratebudget.WithLogger(w.cfg.Logger), ratebudget.WithRecreate(w.records.heal))
	if err != nil {
		return fmt.Errorf("worker: rate budget: %w", err)
	}
	w.clerk.budget.Swap(b).Close()
	return nil
}

// warnOutsideFleet says so when replicas share this worker's key in the
// fleet while it stays outside (process scope, or no limit): its calls are
// in nobody's budget, so together they can exceed Clerk's limit. An
// operator's mistake, said at start; nothing here may stop the worker.
func (w *Worker) warnOutsideFleet(ctx context.Context) {
	if w.cfg.RateKey == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	kv, err := w.js.KeyValue(ctx, w.cfg.Topology.RateBucket)
	if err != nil {
		return
	}
	all, err := ratebudget.ReadStatus(ctx, kv)
	if err != nil {
		return
	}
	for _, st := range all {
		if st.Fingerprint == w.cfg.RateKey && st.Members > 0 {
			w.cfg.Logger.Warn().Int("fleet_replicas", st.Members).Str("fleet_limit", st.Limit.String()).
				Str("rate_limit", w.cfg.RateLimit.String()).Str("rate_scope", string(w.cfg.RateScope)).
				Msg("other workers share this Clerk key's rate budget in the fleet, and this one stays outside it: its calls count in no budget, " +
					"so together they can exceed Clerk's limit; give every worker of a key the same --rate-limit and --rate-limit-scope fleet")
			return
		}
	}
}

// budgetStats is the rate budget's state, ok false without a limit.
func (w *Worker) budgetStats() (ratebudget.Stats, bool) {
	if w.cfg.RateLimit.Unlimited() {
		return ratebudget.Stats{}, false
	}
	return w.clerk.budget.Load().Stats(), true
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
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 500*time.Millisecond, 15*time.Second, 0
	for {
		cons, err := w.ensure(ctx)
		if errors.As(err, new(*jobs.DriftError)) {
			return nil, fmt.Errorf("worker: %w", err)
		}
		if err == nil {
			return cons, nil
		}
		if w.nc.IsClosed() {
			return nil, ErrConnectionClosed
		}
		wait := b.NextBackOff()
		w.cfg.Logger.Warn().Err(err).Dur("retry_in", wait).Msg("cannot set up the streams and consumer yet; retrying")
		if clock.Sleep(ctx, wait) != nil {
			return nil, errStopped
		}
	}
}

// ensure checks and creates or updates the topology once, saying what it
// creates and changes, and learns the jobs stream's generation (see
// records).
func (w *Worker) ensure(ctx context.Context) (jetstream.Consumer, error) {
	w.ensureMu.Lock()
	defer w.ensureMu.Unlock()
	topo := w.cfg.Topology
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	drifts, err := topo.Check(cctx, w.js)
	if err != nil {
		return nil, err
	}
	cons, err := topo.Ensure(cctx, w.js)
	if err != nil {
		return nil, err
	}
	for _, d := range drifts {
		if d.Missing && d.Kind == "stream" && d.Name == topo.GivenUpStream() {
			// Left out when another stream captures the advisories
			// (jobs.ErrAdvisoriesTaken): not said to be created then, the
			// backstop's first sweep saying why it is not.
			if _, err := w.js.Stream(cctx, d.Name); err != nil {
				continue
			}
		}
		if d.Missing {
			w.cfg.Logger.Info().Str("kind", d.Kind).Str("name", d.Name).Msg("created " + d.Kind + " " + d.Name)
		} else {
			w.cfg.Logger.Warn().Str("drift", d.String()).Msg("JetStream differed from the configuration; updated it")
		}
	}
	if _, err := w.records.readGeneration(cctx); err != nil {
		return nil, err
	}
	return cons, nil
}

// deletionSettle is how long recreate lets a deletion end. What the server
// does after a stream leaves the API (stop its consumers, then move its
// directory aside, removed in the background) takes milliseconds whatever
// the stream holds: 16 ms for one of 20 MiB with 300 consumers.
const deletionSettle = time.Second

// recreate is ensure for what was found missing while the worker ran
// (deleted by hand). A stream leaves the API before its deletion ends, and
// one created under its name in that time is taken by NATS (2.15) and left
// unable to store: every message published to it then waits for an answer
// that never comes, until it is deleted again. So the deletion is let end
// first; what someone else created meanwhile (the operator who deleted it,
// another worker) is then found, not created again. With nothing missing
// (a stream without a leader, a lost answer), there is nothing to wait for:
// a leader election would otherwise cost every record it held a second.
func (w *Worker) recreate(ctx context.Context) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	drifts, err := w.cfg.Topology.Check(cctx, w.js)
	cancel()
	if err != nil || slices.ContainsFunc(drifts, func(d jobs.Drift) bool { return d.Missing }) {
		if err := clock.Sleep(ctx, deletionSettle); err != nil {
			return nil, err
		}
	}
	return w.ensure(ctx)
}

// probe asks Clerk something cheap with the worker's key. Only an answer
// that proves the key is accepted counts: Clerk's own 404 for a session that
// does not exist (or a 200). A dropped connection, a 5xx or a 429 prove
// nothing, and the circuit stays open.
func (w *Worker) probe(ctx context.Context) (accepted bool, err error) {
	pctx, cancel := context.WithTimeout(withProbe(ctx), 10*time.Second)
	defer cancel()
	_, err = w.clerk.GetSession(pctx, "sess_circuitprobe")
	if err == nil {
		return true, nil
	}
	e, ok := asAPIError(err)
	return ok && e.StatusCode == 404 && e.HasCode("resource_not_found"), err
}

func (w *Worker) onRetry(j *job, err error, wait time.Duration) {
	w.metrics.retries.WithLabelValues(string(j.Op)).Inc()
	w.cfg.Logger.Debug().Str("job_id", j.ID).Str("op", string(j.Op)).Int("attempt", j.Attempts).
		Dur("backoff", wait).Str("error", j.redact(err.Error())).Msg("retrying")
}

// Ready reports nil when the worker takes jobs, or why it does not. The
// reason is the worker's state, never text from elsewhere (an upstream's
// error body could carry anything).
func (w *Worker) Ready() error {
	if err := w.Live(); err != nil {
		return err
	}
	if !w.started.Load() {
		return errors.New("not running")
	}
	if !w.nc.IsConnected() {
		return errors.New("not connected to NATS (reconnecting)")
	}
	if open, cause := w.circuit.Open(); open {
		return fmt.Errorf("circuit open: %s; probing every %s", cause, w.cfg.ProbeInterval)
	}
	if p := w.fetchErr.Load(); p != nil {
		return errors.New(*p)
	}
	if p := w.consumerStall.Load(); p != nil {
		return errors.New(p.why)
	}
	return w.records.ready()
}

// Live reports nil unless the worker can neither work nor recover: its NATS
// connection is closed for good. /healthz fails then, so that a supervisor
// restarts the process.
func (w *Worker) Live() error {
	if w.nc.IsClosed() {
		return errors.New("the NATS connection is closed and will not reconnect")
	}
	return nil
}
