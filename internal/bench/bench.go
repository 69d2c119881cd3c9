// Package bench measures the worker on one machine: an embedded NATS
// server, the Clerk emulator (in-process), worker processes (the real
// cmd/worker binary, or in-process Workers for profiling) and a publisher,
// in seven scenarios: overhead against the raw JetStream and raw HTTP
// limits, the same against another build of the worker, the cost of
// tracing, latency-bound throughput, rate-limit adherence of a fleet of
// replicas, bulk revoke, and a large backlog. cmd/bench is its command line;
// BENCHMARKS.md holds its results.
//
// Every loop is bounded in count and time, and everything listens on and
// connects to loopback addresses only.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Scenarios, in the order they run. Without a selection every one runs,
// compare only when there is a baseline to compare with.
var Scenarios = []string{"overhead", "compare", "tracing", "latency", "ratelimit", "bulk", "backlog"}

// Options configure a run.
type Options struct {
	// Scenarios to run (see Scenarios); empty runs all of them.
	Scenarios []string
	// Quick shrinks every scenario to a smoke test of a few seconds.
	Quick bool
	// Worker is "process" (the cmd/worker binary, one OS process per
	// worker: CPU and memory are the worker's own) or "inprocess" (Workers
	// inside the bench process, so that a CPU profile of the bench sees
	// them; CPU and memory are the whole bench process's). The ratelimit
	// scenario always runs processes: it SIGKILLs one.
	Worker string
	// WorkerBin is a prebuilt cmd/worker binary, e.g. of an older commit;
	// empty builds one from this module.
	WorkerBin string
	// BaselineBin is the cmd/worker binary the compare scenario measures
	// the worker against, e.g. one built from main before a change.
	BaselineBin string
	// Concurrency, Duration and Repeats, if set, replace the concurrency
	// sweep of the overhead and latency scenarios, the time each of their
	// points runs, and how often each overhead point runs (the median is
	// reported).
	Concurrency []int
	Duration    time.Duration
	Repeats     int
	// Command is the command line, for the report.
	Command string
	// Log receives progress lines; nil is quiet.
	Log io.Writer
}

// Report is everything a run measured.
type Report struct {
	Started   time.Time `json:"started"`
	Command   string    `json:"command"`
	Quick     bool      `json:"quick"`
	Worker    string    `json:"worker_mode"`
	Machine   Machine   `json:"machine"`
	Versions  Versions  `json:"versions"`
	Scenarios []string  `json:"scenarios"`
	Rows      []Row     `json:"rows"`
	Targets   []Target  `json:"targets"`
	ElapsedS  float64   `json:"elapsed_s"`
}

// Row is one measured configuration. Rates are jobs/s, calls/s (raw
// HTTP, rate adherence: successful calls) or sessions/s (bulk revoke); CPU
// is µs per job, of the worker processes and of the bench process (NATS
// server, emulator, publisher, raw clients).
type Row struct {
	Scenario    string `json:"scenario"`
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency,omitempty"`
	Replicas    int    `json:"replicas,omitempty"`
	RateLimit   string `json:"rate_limit,omitempty"` // the worker's --rate-limit, verbatim
	// ClerkLimit is what the emulator enforced ("1000 per 10 s, fixed
	// windows"); WorstWindow the most calls it received in one window of
	// that length, wherever it starts.
	ClerkLimit  string  `json:"clerk_limit,omitempty"`
	WorstWindow int     `json:"worst_window_calls,omitempty"`
	Load        string  `json:"load,omitempty"`   // rate adherence: "even" or "uneven"
	Killed      int     `json:"killed,omitempty"` // replicas SIGKILLed mid-run
	Jobs        int     `json:"jobs"`
	DurationS   float64 `json:"duration_s"`
	JobsPerS    float64 `json:"jobs_per_s"`
	P50MS       float64 `json:"p50_ms,omitempty"`
	P99MS       float64 `json:"p99_ms,omitempty"`
	WorkerCPUUS float64 `json:"worker_cpu_us_per_job,omitempty"`
	BenchCPUUS  float64 `json:"bench_cpu_us_per_job,omitempty"`
	PeakRSSMiB  float64 `json:"peak_rss_mib,omitempty"`
	// Ideal is the rate the configuration allows; Ratio is JobsPerS over
	// it (overhead: over the smaller raw limit).
	Ideal     float64 `json:"ideal_per_s,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"`
	Status429 int     `json:"status_429,omitempty"`
	// PhasePerS is a revoke_all's rate from its first revoke to its last.
	PhasePerS float64 `json:"revoke_phase_per_s,omitempty"`
	// MinPerS and MaxPerS are the slowest and fastest of repeated runs
	// (the row is the median one).
	MinPerS float64 `json:"min_per_s,omitempty"`
	MaxPerS float64 `json:"max_per_s,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// Target is a goal a scenario sets and whether a run met it.
type Target struct {
	Scenario string `json:"scenario"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// ErrNoRows is returned by WritePlot when the report has nothing to plot.
var ErrNoRows = errors.New("bench: nothing to plot")

// Validate checks the options and fills in the default worker mode.
func (o *Options) Validate() error {
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q: want one of %s", s, strings.Join(Scenarios, ", "))
		}
	}
	for _, c := range o.Concurrency {
		if c < 1 || c > 4096 {
			return fmt.Errorf("concurrency %d: must be 1 to 4096", c)
		}
	}
	if slices.Contains(o.Scenarios, "compare") && o.BaselineBin == "" {
		return errors.New("scenario compare needs a baseline: --baseline-bin <path to a cmd/worker binary>")
	}
	if o.BaselineBin != "" {
		if _, err := os.Stat(o.BaselineBin); err != nil {
			return fmt.Errorf("baseline binary: %w", err)
		}
	}
	switch o.Worker {
	case "":
		o.Worker = "process"
	case "process", "inprocess":
	default:
		return fmt.Errorf("worker mode %q: want process or inprocess", o.Worker)
	}
	return nil
}

// Run runs the selected scenarios and returns what they measured. A
// scenario that fails stops the run; the rows measured so far are
// returned with the error.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	sel := o.Scenarios
	if len(sel) == 0 {
		sel = slices.DeleteFunc(slices.Clone(Scenarios), func(s string) bool { return s == "compare" && o.BaselineBin == "" })
	}
	rep := &Report{Started: time.Now().UTC(), Command: o.Command, Quick: o.Quick, Worker: o.Worker, Scenarios: sel, Machine: machine()}
	e, err := newEnv(ctx, o, slices.Contains(sel, "ratelimit"))
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep.Versions = Versions{Go: runtime.Version(), NATSGo: nats.Version, NATSServer: server.VERSION + " (embedded)"}
	sz := sizesFor(o)
	start := time.Now()
	defer func() { rep.ElapsedS = time.Since(start).Seconds() }()
	measure := map[string]func(context.Context, sizes, *Report) error{
		"overhead": e.overhead, "compare": e.compare, "tracing": e.tracing, "latency": e.latencyBound,
		"ratelimit": e.rateAdherence, "bulk": e.bulk, "backlog": e.backlog,
	}
	for _, s := range Scenarios {
		if !slices.Contains(sel, s) {
			continue
		}
		e.logf("scenario %s", s)
		err := measure[s](ctx, sz, rep)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return rep, fmt.Errorf("scenario %s: %w", s, err)
		}
	}
	rep.Machine.LoadAfter = loadAvg()
	return rep, nil
}
