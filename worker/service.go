package worker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/streamuse"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// ServiceName is the NATS micro service every worker registers
// (jobs.WorkerService).
const ServiceName = jobs.WorkerService

// Version is reported by the micro service.
const Version = "0.1.0"

// Status is what a worker reports about itself.
type Status struct {
	Instance string `json:"instance"`
	Version  string `json:"version"`
	Ready    bool   `json:"ready"`
	Reason   string `json:"reason,omitempty"`
	InFlight int    `json:"in_flight"`
	// InFlightByOp splits InFlight by the op of the job's subject.
	InFlightByOp map[jobs.Op]int `json:"in_flight_by_op,omitempty"`
	Concurrency  int             `json:"concurrency"`
	CircuitOpen  bool            `json:"circuit_open"`
	// RateBudget is the Clerk key's rate budget as this worker sees it;
	// absent without a limit.
	RateBudget *BudgetStatus `json:"rate_budget,omitempty"`
	// JobsStream is the jobs stream's size against its cap as the worker
	// last read it; absent before the first read.
	JobsStream *StreamStatus `json:"jobs_stream,omitempty"`
}

// StreamStatus is the jobs stream's size against its cap in a Status. It
// is read when the worker looks for jobs that ran out of deliveries (at
// start and every SweepInterval), a read it makes anyway: a status request
// waits on nothing, and costs JetStream nothing more.
type StreamStatus struct {
	Name string `json:"name"`
	// Bytes and Messages are what the stream holds; MaxBytes its cap
	// (-1: none), past which it refuses new jobs. Percent is Bytes of
	// MaxBytes, rounded down (0 without a cap); NearlyFull is set from
	// streamuse.NearlyFullPercent on.
	Bytes      uint64 `json:"bytes"`
	MaxBytes   int64  `json:"max_bytes"`
	Messages   uint64 `json:"messages"`
	Percent    uint64 `json:"percent"`
	NearlyFull bool   `json:"nearly_full"`
	// ReadAt is when it was read; Error why it could not be (the numbers
	// are then 0).
	ReadAt time.Time `json:"read_at"`
	Error  string    `json:"error,omitempty"`
}

// noteJobsStream keeps what a read of the jobs stream's info found, for
// Status.
func (w *Worker) noteJobsStream(s jetstream.Stream, err error) {
	st := &StreamStatus{Name: w.cfg.Topology.JobsStream, ReadAt: time.Now().UTC()}
	if err != nil {
		// JetStream's words (not found, a permission refused, a
		// timeout), text from elsewhere all the same: redacted as a
		// record's reasons are, before it is cut to one bounded line (a
		// cut secret would no longer look like one).
		st.Error = text.Line(redact.Text(fmt.Sprintf("cannot read the jobs stream %s: %v", st.Name, err)), 500)
	} else {
		u := streamuse.Of(s.CachedInfo())
		st.Bytes, st.MaxBytes, st.Messages, st.Percent, st.NearlyFull = u.Bytes, u.MaxBytes, u.Messages, u.Percent(), u.NearlyFull()
	}
	w.jobsStream.Store(st)
}

// BudgetStatus is the rate budget's state in a Status.
type BudgetStatus struct {
	// Limit is Clerk's limit as configured ("1000/10s"); Scope "fleet" or
	// "process"; Mode "fleet", "fallback" (JetStream unreachable) or
	// "process".
	Limit string `json:"limit"`
	Scope string `json:"scope"`
	Mode  string `json:"mode"`
	// Rate is the calls per second the budget lets the fleet (or this
	// process) make; Granted the calls this process made.
	Rate    float64 `json:"rate"`
	Granted uint64  `json:"granted"`
	// Members is the number of processes sharing the budget.
	Members     int        `json:"members"`
	PausedUntil *time.Time `json:"paused_until,omitempty"`
}

// Status reports the worker's state.
func (w *Worker) Status() Status {
	s := Status{Instance: w.cfg.Instance, Version: Version, Concurrency: w.cfg.Concurrency}
	s.InFlight, s.InFlightByOp = w.inflight.byOp(w.cfg.Topology.Subjects)
	if err := w.Ready(); err != nil {
		s.Reason = err.Error()
	} else {
		s.Ready = true
	}
	s.CircuitOpen, _ = w.circuit.Open()
	if st, ok := w.budgetStats(); ok {
		b := &BudgetStatus{Limit: st.Limit.String(), Scope: string(w.cfg.RateScope), Mode: string(st.Mode), Rate: st.Rate,
			Granted: st.Granted, Members: st.Members}
		if !st.PausedUntil.IsZero() {
			t := st.PausedUntil.UTC()
			b.PausedUntil = &t
		}
		s.RateBudget = b
	}
	if js := w.jobsStream.Load(); js != nil {
		c := *js
		s.JobsStream = &c
	}
	return s
}

func (w *Worker) registerService() (micro.Service, error) {
	svc, err := micro.AddService(w.nc, micro.Config{
		Name:        ServiceName,
		Version:     Version,
		Description: "Runs Clerk session jobs from JetStream",
		Metadata:    map[string]string{"instance": w.cfg.Instance, "stream": w.cfg.Topology.JobsStream},
	})
	if err != nil {
		return nil, fmt.Errorf("worker: register micro service %s: %w", ServiceName, err)
	}
	err = svc.AddEndpoint("status", micro.HandlerFunc(func(r micro.Request) {
		_ = r.RespondJSON(w.Status())
	}), micro.WithEndpointSubject(fmt.Sprintf("clerkjobs.worker.%s.status", w.cfg.Instance)))
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("worker: micro endpoint: %w", err)
	}
	return svc, nil
}

// Handler serves /metrics (Prometheus), /healthz (200 unless the worker
// can neither work nor recover: its NATS connection is closed for good) and
// /readyz (200 only while the worker takes jobs; 503 with the reason
// otherwise: not connected, circuit open, outcomes waiting to be recorded).
// The reasons are the worker's state, never text from Clerk or a publisher.
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		if err := w.Live(); err != nil {
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte(err.Error() + "\n"))
			return
		}
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		st := w.Status()
		rw.Header().Set("Content-Type", "application/json")
		if !st.Ready {
			rw.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(rw).Encode(st)
	})
	return mux
}
