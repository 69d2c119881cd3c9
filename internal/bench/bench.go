// Package bench measures the worker on one machine: NATS (embedded, or an
// external server), the Clerk emulator (in-process), worker processes (the
// real cmd/worker binary, or in-process Workers) and a publisher, in five
// scenarios: overhead against the raw JetStream and raw HTTP limits,
// latency-bound throughput, rate-limit adherence, bulk revoke, and a large
// backlog. cmd/bench is its command line; BENCHMARKS.md holds its results.
//
// Every loop is bounded in count and time, and everything listens on and
// connects to loopback addresses only (unless --nats-url names another
// server).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Scenarios, in the order they run.
var Scenarios = []string{"overhead", "latency", "ratelimit", "bulk", "backlog"}

// Options configure a run.
type Options struct {
	// Scenarios to run (see Scenarios); empty runs all of them.
	Scenarios []string
	// Quick shrinks every scenario to a smoke test of a few seconds.
	Quick bool
	// NATSURL is an external NATS server; empty starts an embedded one.
	NATSURL string
	// Worker is "process" (the cmd/worker binary, one OS process per
	// worker: CPU and memory are the worker's own) or "inprocess" (Workers
	// inside the bench process, each with its own NATS connection and rate
	// limiter: CPU and memory are the whole bench process's).
	Worker string
	// WorkerBin is a prebuilt cmd/worker binary; empty builds one.
	WorkerBin string
	// Concurrency, if set, replaces the concurrency sweep of the overhead
	// and latency scenarios.
	Concurrency []int
	// Duration, if set, replaces the time each overhead and latency point
	// runs.
	Duration time.Duration
	// Repeats, if set, replaces how often each overhead point runs (3;
	// the median is reported).
	Repeats int
	// BacklogJobs and BacklogConcurrency, if set, replace the backlog
	// scenario's size (100,000) and the worker's concurrency (256).
	BacklogJobs, BacklogConcurrency int
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

// Validate checks the options.
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
		sel = Scenarios
	}
	rep := &Report{Started: time.Now().UTC(), Command: o.Command, Quick: o.Quick, Worker: o.Worker, Scenarios: sel}
	rep.Machine = machine()
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep.Versions = versions(e)
	sz := sizesFor(o.Quick)
	if len(o.Concurrency) > 0 {
		sz.overheadConc, sz.latencyConc = o.Concurrency, o.Concurrency
	}
	if o.Repeats > 0 {
		sz.overheadRepeats = o.Repeats
	}
	if o.BacklogJobs > 0 {
		sz.backlogJobs = o.BacklogJobs
	}
	if o.BacklogConcurrency > 0 {
		sz.backlogConc = o.BacklogConcurrency
	}
	if o.Duration > 0 {
		sz.overheadDur, sz.latencyDur = o.Duration, o.Duration
	}
	start := time.Now()
	for _, s := range Scenarios {
		if !slices.Contains(sel, s) {
			continue
		}
		e.logf("scenario %s", s)
		var rows []Row
		var targets []Target
		var err error
		switch s {
		case "overhead":
			rows, targets, err = e.overhead(ctx, sz)
		case "latency":
			rows, targets, err = e.latencyBound(ctx, sz)
		case "ratelimit":
			rows, targets, err = e.rateAdherence(ctx, sz)
		case "bulk":
			rows, targets, err = e.bulk(ctx, sz)
		case "backlog":
			rows, targets, err = e.backlog(ctx, sz)
		}
		rep.Rows = append(rep.Rows, rows...)
		rep.Targets = append(rep.Targets, targets...)
		if err != nil {
			rep.ElapsedS = time.Since(start).Seconds()
			return rep, fmt.Errorf("scenario %s: %w", s, err)
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	rep.ElapsedS = time.Since(start).Seconds()
	rep.Machine.LoadAfter = loadAvg()
	return rep, nil
}

func selfPID() int { return os.Getpid() }

// ErrNoRows is returned by writers given an empty report.
var ErrNoRows = errors.New("bench: nothing measured")
