package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// What the latency-bound, bulk and backlog scenarios hold constant.
const (
	clerkLatency   = 100 * time.Millisecond // latency-bound, and the bulk rows with latency
	latencyLimit   = 1000.0                 // calls/s of the latency-bound scenario's --rate-limit
	bulkLimit      = 1000.0                 // calls/s of the 0-latency bulk row's --rate-limit
	backlogConc    = 256
	backlogTimeout = 15 * time.Minute
)

// sizes are how big each scenario is; quick mode makes them tiny.
type sizes struct {
	overheadConc    []int
	overheadJobs    int
	overheadWarm    int // completions left out of each overhead run
	overheadDur     time.Duration
	overheadRepeats int
	latencyConc     []int
	latencyDur      time.Duration
	rateDur         time.Duration // measured time of each rate row
	bulkSessions    int
	bulkLatSessions int // sessions of the bulk rows with latency; 0 skips them
	backlogJobs     int
}

func sizesFor(o Options) sizes {
	sz := sizes{
		overheadConc: []int{1, 16, 256}, overheadJobs: 200_000, overheadDur: 6 * time.Second, overheadRepeats: 3,
		latencyConc: []int{1, 8, 32, 64, 128, 256}, latencyDur: 8 * time.Second,
		rateDur:      40 * time.Second, // four of Clerk's 10 s windows
		bulkSessions: 10_000, bulkLatSessions: 1000, backlogJobs: 100_000,
	}
	if o.Quick {
		sz = sizes{
			// The duration only caps a run, which ends once its 200 jobs
			// are done: it leaves room for a pull stalled until its expiry.
			overheadConc: []int{1, 16}, overheadJobs: 200, overheadDur: 10 * time.Second, overheadRepeats: 1,
			latencyConc: []int{1, 8}, latencyDur: time.Second, rateDur: 3 * time.Second,
			bulkSessions: 200, backlogJobs: 2000,
		}
	}
	if len(o.Concurrency) > 0 {
		sz.overheadConc, sz.latencyConc = o.Concurrency, o.Concurrency
	}
	if o.Duration > 0 {
		sz.overheadDur, sz.latencyDur = o.Duration, o.Duration
	}
	if o.Repeats > 0 {
		sz.overheadRepeats = o.Repeats
	}
	sz.overheadWarm = min(sz.overheadJobs/10, 2000)
	return sz
}

// ratio is a/b, or 0 when b is not positive. A flow that measured nothing
// (stalled, or slower than its warm-up) must still leave a report that
// can be written: JSON has no +Inf or NaN.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func perJobUS(d time.Duration, n int) float64 {
	return ratio(float64(d.Nanoseconds())/1000, float64(n))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// ---- 1. overhead ----

func (e *env) overhead(ctx context.Context, sz sizes, rep *Report) error {
	for _, c := range sz.overheadConc {
		m, err := medians(sz.overheadRepeats, []flow{
			{fmt.Sprintf("raw JetStream, concurrency %d", c), func() (Row, error) { return e.runRawJetStream(ctx, c, sz) }},
			{fmt.Sprintf("raw HTTP, concurrency %d", c), func() (Row, error) { return e.runRawHTTP(ctx, c, sz) }},
			{fmt.Sprintf("worker, concurrency %d", c), func() (Row, error) { return e.overheadRun(ctx, "overhead", sz, workerSpec{Concurrency: c}) }},
		}, func(run int, r []Row) {
			e.logf("overhead c=%d run %d: raw JetStream %.0f/s, raw HTTP %.0f/s, worker %.0f/s", c, run, r[0].JobsPerS, r[1].JobsPerS, r[2].JobsPerS)
		})
		if err != nil {
			return err
		}
		r, target := overheadRows(c, m[0], m[1], m[2])
		rep.Rows, rep.Targets = append(rep.Rows, r...), append(rep.Targets, target)
	}
	return nil
}

// overheadRows are the rows of one concurrency's median runs, the worker's
// rated against the smaller raw limit, and its target.
func overheadRows(c int, js, ht, w Row) ([]Row, Target) {
	w.Ideal = min(js.JobsPerS, ht.JobsPerS)
	w.Ratio = ratio(w.JobsPerS, w.Ideal)
	return []Row{js, ht, w}, Target{Scenario: "overhead",
		Goal:     fmt.Sprintf("concurrency %d: worker ≥ 50%% of the smaller raw limit", c),
		Measured: fmt.Sprintf("%.0f jobs/s = %.0f%% of %.0f/s", w.JobsPerS, 100*w.Ratio, w.Ideal),
		Met:      w.Ratio >= 0.5}
}

// flow is one of the flows a scenario runs in turns; label names it in an
// error.
type flow struct {
	label string
	run   func() (Row, error)
}

// medians runs the flows in turns, repeats times, and returns each flow's
// median run (the lower middle one of an even count) with the spread of
// all of them: other load on the machine hits every flow alike. logRound
// sees each round's runs.
func medians(repeats int, flows []flow, logRound func(run int, rows []Row)) ([]Row, error) {
	runs := make([][]Row, len(flows))
	for rep := range repeats {
		round := make([]Row, len(flows))
		for i, f := range flows {
			r, err := f.run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.label, err)
			}
			round[i], runs[i] = r, append(runs[i], r)
		}
		logRound(rep+1, round)
	}
	out := make([]Row, len(flows))
	for i, s := range runs {
		slices.SortFunc(s, func(a, b Row) int { return cmp.Compare(a.JobsPerS, b.JobsPerS) })
		out[i] = s[(len(s)-1)/2]
		if len(s) > 1 {
			out[i].MinPerS, out[i].MaxPerS = s[0].JobsPerS, s[len(s)-1].JobsPerS
		}
	}
	return out, nil
}

// overheadRun is the overhead closed loop through one worker, at
// --rate-limit 0.
func (e *env) overheadRun(ctx context.Context, scenario string, sz sizes, spec workerSpec) (Row, error) {
	spec.RateLimit = "0"
	return e.runWorkerLoad(ctx, scenario, spec, 0, sz.overheadJobs, sz.overheadWarm, sz.overheadDur)
}

func (e *env) runRawJetStream(ctx context.Context, c int, sz sizes) (Row, error) {
	t, err := e.newRun(ctx, 0, clerkLimit{})
	if err != nil {
		return Row{}, err
	}
	defer e.dropTopology(t)
	rc, err := e.startRawConsumer(ctx, t, c)
	if err != nil {
		return Row{}, err
	}
	defer rc.stop()
	r, err := e.drive(ctx, t, c, sz.overheadJobs, sz.overheadWarm, sz.overheadDur, nil)
	r.Name, r.Note = "raw JetStream", "publish → consume → publish result (PubAck) → ack; no HTTP; prefetching consumer"
	return r, err
}

func (e *env) runRawHTTP(ctx context.Context, c int, sz sizes) (Row, error) {
	e.resetEmulator(0, clerkLimit{})
	r, err := measure(c, nil, func() (loadStats, error) { return e.rawHTTP(ctx, c, sz.overheadJobs, sz.overheadWarm, sz.overheadDur) })
	r.Name, r.Note = "raw HTTP", "emulator RevokeSession, plain net/http client, keep-alive"
	return r, err
}

// runWorkerLoad drives one worker with a closed loop of revoke jobs (2 ×
// concurrency outstanding) and measures it.
func (e *env) runWorkerLoad(ctx context.Context, scenario string, spec workerSpec, latency time.Duration, total, warm int, dur time.Duration) (Row, error) {
	t, err := e.newRun(ctx, latency, clerkLimit{})
	if err != nil {
		return Row{}, err
	}
	defer e.dropTopology(t)
	w, err := e.startWorker(ctx, t, spec)
	if err != nil {
		return Row{}, err
	}
	r, err := e.drive(ctx, t, spec.Concurrency, total, warm, dur, w)
	if serr := w.stop(); err == nil {
		err = serr
	}
	r.Scenario, r.Name, r.Replicas, r.RateLimit = scenario, "worker", 1, spec.RateLimit
	return r, err
}

// drive runs a closed loop of revoke jobs (2 × concurrency outstanding)
// through whatever consumes the topology's jobs: w, or (w nil) a raw
// consumer.
func (e *env) drive(ctx context.Context, t jobs.Topology, c, total, warm int, dur time.Duration, w *runningWorker) (Row, error) {
	done, stopWatch, err := e.watchResults(ctx, t.ResultsStream, total+2*c)
	if err != nil {
		return Row{}, err
	}
	defer stopWatch()
	return measure(c, w, func() (loadStats, error) { return e.closedLoop(ctx, t, 2*c, total, warm, dur, done) })
}

// measure runs load at concurrency c and makes it an overhead row: CPU per
// job of the worker w (a process) and of the bench process, and w's peak
// RSS. w nil is a raw flow: only the bench process to sample.
func measure(c int, w *runningWorker, load func() (loadStats, error)) (Row, error) {
	self := &runningWorker{pid: os.Getpid()}
	if w == nil {
		w = self
	}
	_ = resetPeak(w.pid)
	_ = resetPeak(os.Getpid())
	w0, cpu0 := w.sample(), selfCPU()
	st, err := load()
	w1, cpu1 := w.sample(), selfCPU()
	if err != nil {
		return Row{}, err
	}
	r := Row{Scenario: "overhead", Concurrency: c, Jobs: st.Completed, DurationS: st.Span.Seconds(), JobsPerS: st.rate(),
		BenchCPUUS: perJobUS(cpu1-cpu0, st.Completed), PeakRSSMiB: mib(w1.HWM)}
	r.P50MS, r.P99MS = latencies(st.Lat)
	switch {
	case w.proc != nil:
		r.WorkerCPUUS = perJobUS(w1.CPU-w0.CPU, st.Completed)
	case w != self:
		r.Note = "in-process worker: CPU and RSS are the whole bench process"
	}
	return r, nil
}

// ---- 2. latency-bound ----

func (e *env) latencyBound(ctx context.Context, sz sizes, rep *Report) error {
	for _, c := range sz.latencyConc {
		ideal := math.Min(float64(c)/clerkLatency.Seconds(), latencyLimit)
		total := int(ideal*sz.latencyDur.Seconds()) + 2*c
		warm := max(total/10, 2*c)
		total += warm
		r, err := e.runWorkerLoad(ctx, "latency", workerSpec{Concurrency: c, RateLimit: clerkForm(latencyLimit)}, clerkLatency, total, warm, sz.latencyDur*3)
		if err != nil {
			return fmt.Errorf("latency-bound, concurrency %d: %w", c, err)
		}
		r.Ideal = ideal
		r.Ratio = ratio(r.JobsPerS, ideal)
		rep.Rows = append(rep.Rows, r)
		rep.Targets = append(rep.Targets, Target{Scenario: "latency",
			Goal:     fmt.Sprintf("concurrency %d: ≥ 95%% of min(concurrency / %s, limit) = %.0f/s", c, clerkLatency, ideal),
			Measured: fmt.Sprintf("%.1f jobs/s = %.1f%%", r.JobsPerS, 100*r.Ratio),
			Met:      r.Ratio >= 0.95})
		e.logf("latency-bound c=%d: %.1f jobs/s of %.0f ideal (%.1f%%)", c, r.JobsPerS, ideal, 100*r.Ratio)
	}
	return nil
}

// ---- 4. bulk revoke ----

func (e *env) bulk(ctx context.Context, sz sizes, rep *Report) error {
	r, err := e.bulkRun(ctx, sz.bulkSessions, bulkLimit, 0, 0)
	if err != nil {
		return err
	}
	rep.Rows = append(rep.Rows, r)
	rep.Targets = append(rep.Targets, bulkTarget(r, fmt.Sprintf("revoke_all of %d sessions at --rate-limit %s, default bulk concurrency", sz.bulkSessions, clerkForm(bulkLimit))))
	if sz.bulkLatSessions > 0 {
		// The default (sized from the limit and the latency it observes)
		// against the fixed 8 that was the default before.
		for _, bc := range []int{0, 8} {
			r, err := e.bulkRun(ctx, sz.bulkLatSessions, 100, clerkLatency, bc)
			if err != nil {
				return err
			}
			rep.Rows = append(rep.Rows, r)
			if bc == 0 {
				rep.Targets = append(rep.Targets, bulkTarget(r, fmt.Sprintf("revoke_all of %d sessions at --rate-limit %s, Clerk latency %s, default bulk concurrency", sz.bulkLatSessions, clerkForm(100), clerkLatency)))
			}
		}
	}
	return nil
}

// bulkTarget: a revoke_all revokes at ≥ 95% of the limit once it has
// listed the sessions (listing comes first and takes its own calls).
func bulkTarget(r Row, what string) Target {
	limit := r.JobsPerS / r.Ratio
	return Target{Scenario: "bulk",
		Goal: what + ": revokes/s ≥ 95% of the limit",
		Measured: fmt.Sprintf("%.0f revokes/s = %.1f%% of the limit (job published → result stored: %.0f sessions/s = %.1f%%)",
			r.PhasePerS, 100*r.PhasePerS/limit, r.JobsPerS, 100*r.Ratio),
		Met: r.PhasePerS >= 0.95*limit}
}

// publishRevokeAll queues one revoke_all job for user.
func (e *env) publishRevokeAll(ctx context.Context, t jobs.Topology, user string) error {
	m := nats.NewMsg(t.Subjects.Job(jobs.OpRevokeAll))
	m.Data = fmt.Appendf(nil, `{"job_id":"bulk-%s","user_id":%q}`, t.Subjects.Prefix, user)
	m.Header.Set(jetstream.MsgIDHeader, "bulk-"+t.Subjects.Prefix)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := e.js.PublishMsg(ctx, m)
	return err
}

// bulkRun revokes every session of a user with one revoke_all job; limit
// is the worker's --rate-limit in calls per second (given to it per 10 s,
// see clerkForm), bulkConc its
// --bulk-concurrency (0: default).
func (e *env) bulkRun(ctx context.Context, sessions int, limit float64, latency time.Duration, bulkConc int) (Row, error) {
	user := e.emu.Emulator.CreateUser()
	e.emu.Emulator.CreateSessions(user, sessions)
	t, err := e.newRun(ctx, latency, clerkLimit{})
	if err != nil {
		return Row{}, err
	}
	defer e.dropTopology(t)
	spec := workerSpec{Concurrency: 16, RateLimit: clerkForm(limit), BulkConcurrency: bulkConc}
	w, err := e.startWorker(ctx, t, spec)
	if err != nil {
		return Row{}, err
	}
	done, stopWatch, err := e.watchResults(ctx, t.ResultsStream, 1)
	if err != nil {
		_ = w.stop()
		return Row{}, err
	}
	w0, cpu0 := w.sample(), selfCPU()
	var c completion
	if err = e.publishRevokeAll(ctx, t, user); err == nil {
		timeout := time.Duration(float64(sessions)/limit*3*float64(time.Second)) + time.Minute
		select {
		case c = <-done:
		case <-time.After(timeout):
			err = fmt.Errorf("revoke_all of %d sessions did not finish within %s", sessions, timeout)
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	w1, cpu1 := w.sample(), selfCPU()
	stopWatch()
	if serr := w.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return Row{}, err
	}
	var revokes []time.Time // of the successful revoke calls
	tooMany := 0
	for _, call := range e.emu.Emulator.Calls() {
		if call.Status == 429 {
			tooMany++
		}
		if call.Op == emulator.OpRevokeSession && call.Status == 200 {
			revokes = append(revokes, call.Time)
		}
	}
	if len(revokes) != sessions {
		return Row{}, fmt.Errorf("revoke_all: %d revoke calls succeeded, want %d", len(revokes), sessions)
	}
	r := Row{Scenario: "bulk", Name: "revoke_all, bulk concurrency " + bulkConcName(bulkConc), Concurrency: bulkConc, Replicas: 1, RateLimit: spec.RateLimit,
		Jobs: sessions, DurationS: c.latency.Seconds(), JobsPerS: float64(sessions) / c.latency.Seconds(),
		PeakRSSMiB: mib(w1.HWM), Status429: tooMany, Ideal: limit, BenchCPUUS: perJobUS(cpu1-cpu0, sessions)}
	if latency > 0 && bulkConc > 0 {
		r.Ideal = math.Min(limit, float64(bulkConc)/latency.Seconds())
	}
	r.Ratio = ratio(r.JobsPerS, limit)
	if w.proc != nil {
		r.WorkerCPUUS = perJobUS(w1.CPU-w0.CPU, sessions)
	}
	r.PhasePerS = float64(sessions-1) / revokes[sessions-1].Sub(revokes[0]).Seconds()
	r.Note = fmt.Sprintf("emulator latency %s; job published → result stored %.2f s; revoke phase %.0f revokes/s = %.1f%% of the limit",
		latency, c.latency.Seconds(), r.PhasePerS, 100*r.PhasePerS/limit)
	e.logf("bulk %d sessions, limit %g, latency %s, bulk concurrency %s: %.0f sessions/s (%.1f%% of limit)", sessions, limit, latency, bulkConcName(bulkConc), r.JobsPerS, 100*r.Ratio)
	return r, nil
}

// clerkForm is a --rate-limit of perSecond calls a second in Clerk's own
// form, per 10 s. The budget's slack is never under 150 ms: in a 1 s window
// that costs 13% of the rate, in Clerk's 10 s windows 1.5%.
func clerkForm(perSecond float64) string {
	return strconv.Itoa(int(math.Round(perSecond*10))) + "/10s"
}

// bulkConcName is a --bulk-concurrency as the report shows it.
func bulkConcName(n int) string {
	if n == 0 {
		return "default (sized)"
	}
	return strconv.Itoa(n)
}

// ---- 5. backlog ----

func (e *env) backlog(ctx context.Context, sz sizes, rep *Report) error {
	t, err := e.newRun(ctx, 0, clerkLimit{})
	if err != nil {
		return err
	}
	defer e.dropTopology(t)
	n := sz.backlogJobs
	pubStart := time.Now()
	if err := e.publishBacklog(ctx, t, n); err != nil {
		return err
	}
	e.logf("backlog: %d jobs queued in %.1f s", n, time.Since(pubStart).Seconds())
	cpu0 := selfCPU()
	start := time.Now()
	w, err := e.startWorker(ctx, t, workerSpec{Concurrency: backlogConc, RateLimit: "0"})
	if err != nil {
		return err
	}
	var peakRSS int64
	var res, left uint64
	err = poll(ctx, 100*time.Millisecond, backlogTimeout, func() bool {
		s := w.sample()
		peakRSS = max(peakRSS, s.HWM, s.RSS)
		var err1, err2 error
		res, err1 = e.streamMsgs(ctx, t.ResultsStream)
		left, err2 = e.streamMsgs(ctx, t.JobsStream)
		return err1 == nil && err2 == nil && res >= uint64(n) && left == 0
	})
	if err != nil {
		_ = w.stop()
		return fmt.Errorf("backlog not drained: %d results, %d jobs left: %w", res, left, err)
	}
	drained := time.Since(start)
	s := w.sample()
	peakRSS = max(peakRSS, s.HWM)
	cpu1 := selfCPU()
	if err := w.stop(); err != nil {
		return err
	}
	r := Row{Scenario: "backlog", Name: "worker", Concurrency: backlogConc, Replicas: 1, RateLimit: "0", Jobs: n, DurationS: drained.Seconds(),
		JobsPerS: float64(n) / drained.Seconds(), PeakRSSMiB: mib(peakRSS), BenchCPUUS: perJobUS(cpu1-cpu0, n),
		Note: fmt.Sprintf("%d jobs queued before the worker started; drain = worker start → last result stored and job acked; --rate-limit 0", n)}
	if w.proc != nil {
		r.WorkerCPUUS = perJobUS(s.CPU, n)
	} else {
		r.Note += "; in-process: RSS is the whole bench process (NATS server and emulator included)"
	}
	e.logf("backlog: %d jobs drained in %.1f s (%.0f/s), peak RSS %.1f MiB", n, r.DurationS, r.JobsPerS, r.PeakRSSMiB)
	rep.Rows = append(rep.Rows, r)
	rep.Targets = append(rep.Targets, Target{Scenario: "backlog",
		Goal:     fmt.Sprintf("peak RSS of the worker < 100 MiB with a %d-job backlog", n),
		Measured: fmt.Sprintf("%.1f MiB; drained in %.1f s", r.PeakRSSMiB, r.DurationS),
		Met:      r.PeakRSSMiB < 100})
	return nil
}
