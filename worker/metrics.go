package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
)

// metrics are the worker's Prometheus metrics, on a registry of its own so
// that several workers (tests) can live in one process. Their names are part
// of the contract documented in the README.
type metrics struct {
	reg                   *prometheus.Registry
	jobs                  *prometheus.CounterVec // op, outcome
	retries               *prometheus.CounterVec // op
	deadLetters           *prometheus.CounterVec // op, class
	deadLettersSuperseded prometheus.Counter
	jobDuration           *prometheus.HistogramVec // op
	apiLatency            *prometheus.HistogramVec // op, status
	inFlight              prometheus.Gauge
	rateLimitWait         prometheus.Counter
	rateLimitWaits        prometheus.Counter
	retryAfterPauses      prometheus.Counter
	circuitOpen           prometheus.Gauge
	recordFailures        *prometheus.CounterVec // stream
}

// observeBudget exports the rate budget's state, read when scraped.
func (m *metrics) observeBudget(stats func() (ratebudget.Stats, bool)) {
	const ns = "clerkjobs"
	get := func(f func(ratebudget.Stats) float64) func() float64 {
		return func() float64 {
			s, ok := stats()
			if !ok {
				return 0
			}
			return f(s)
		}
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "rate_budget_limit",
			Help: "Calls per second the key's budget lets the fleet (or this process) make: Clerk's limit less the safety margin; 0 without a limit."},
			get(func(s ratebudget.Stats) float64 { return s.Rate })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "rate_budget_calls_granted_total",
			Help: "Clerk calls this process's budget let through."}, get(func(s ratebudget.Stats) float64 { return float64(s.Granted) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "rate_budget_waits_total",
			Help: "Calls that waited for the budget."}, get(func(s ratebudget.Stats) float64 { return float64(s.Waits) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "rate_budget_paused_until_seconds",
			Help: "Unix time until which a 429 (here or on another replica) pauses every call; 0 when not paused."},
			get(func(s ratebudget.Stats) float64 {
				if s.PausedUntil.IsZero() {
					return 0
				}
				return float64(s.PausedUntil.UnixMilli()) / 1000
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "rate_budget_members",
			Help: "Worker processes sharing the key's budget (1 in process scope)."}, get(func(s ratebudget.Stats) float64 { return float64(s.Members) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "rate_budget_fallback",
			Help: "1 while JetStream cannot be reached and the budget spends only what it holds and a reserved trickle."},
			get(func(s ratebudget.Stats) float64 {
				if s.Mode == ratebudget.ModeFallback {
					return 1
				}
				return 0
			})),
	)
}

func newMetrics() *metrics {
	const ns = "clerkjobs"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "jobs_total",
			Help: "Jobs settled, by op and outcome (succeeded, dead_lettered, redelivered, already_recorded)."}, []string{"op", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "retries_total",
			Help: "Retries of a Clerk call within a delivery, by op."}, []string{"op"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dead_letters_total",
			Help: "Jobs dead-lettered, by op and class (invalid, permanent, exhausted, max_deliveries)."}, []string{"op", "class"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "job_duration_seconds",
			Help: "Time from the start of a delivery to its settlement, by op.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}, []string{"op"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "clerk_request_duration_seconds",
			Help: "Clerk API call latency, by operation and HTTP status (or error).", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}, []string{"op", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "jobs_in_flight",
			Help: "Jobs being run now."}),
		rateLimitWait: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rate_limit_wait_seconds_total",
			Help: "Time calls spent waiting for the rate limiter or a Retry-After."}),
		rateLimitWaits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rate_limit_waits_total",
			Help: "Calls that waited for the rate limiter or a Retry-After."}),
		retryAfterPauses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "retry_after_pauses_total",
			Help: "429 answers from Clerk, each pausing every call for its Retry-After."}),
		circuitOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "circuit_open",
			Help: "1 while Clerk rejects the secret key and the worker takes no jobs."}),
		deadLettersSuperseded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "dead_letters_superseded_total",
			Help: "Dead letters removed because the job has a result (two deliveries overlapped after a crash or a pause; found when storing, or by the sweep)."}),
		recordFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "record_publish_failures_total",
			Help: "Results or dead letters JetStream refused (the job was kept), by stream."}, []string{"stream"}),
	}
	m.reg.MustRegister(m.jobs, m.retries, m.deadLetters, m.jobDuration, m.apiLatency, m.inFlight,
		m.rateLimitWait, m.rateLimitWaits, m.retryAfterPauses, m.circuitOpen, m.recordFailures, m.deadLettersSuperseded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
