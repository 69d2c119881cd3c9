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
	return sz
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func perJobUS(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1000 / float64(n)
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

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// loadRow is the part of a row a driven run measured.
func loadRow(st loadStats, benchCPU time.Duration) Row {
	r := Row{Jobs: st.Completed, DurationS: st.Span.Seconds(), JobsPerS: st.rate(), BenchCPUUS: perJobUS(benchCPU, st.Completed)}
	r.P50MS, r.P99MS = latencies(st.Lat)
	return r
}

// ---- 1. overhead ----

func (e *env) overhead(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	var rows []Row
	var targets []Target
	for _, c := range sz.overheadConc {
		warm := min(sz.overheadJobs/10, 2000)
		// The three flows take turns, repeats times, and each reports its
		// median run: other load on the machine hits all three alike.
		var jsRuns, htRuns, wRuns []Row
		for rep := range sz.overheadRepeats {
			js, err := e.runRawJetStream(ctx, c, sz.overheadJobs, warm, sz.overheadDur)
			if err != nil {
				return rows, targets, fmt.Errorf("raw JetStream, concurrency %d: %w", c, err)
			}
			ht, err := e.runRawHTTP(ctx, c, sz.overheadJobs, warm, sz.overheadDur)
			if err != nil {
				return rows, targets, fmt.Errorf("raw HTTP, concurrency %d: %w", c, err)
			}
			w, err := e.runWorkerLoad(ctx, "overhead", workerSpec{Concurrency: c, RateLimit: "0"}, 0, sz.overheadJobs, warm, sz.overheadDur)
			if err != nil {
				return rows, targets, fmt.Errorf("worker, concurrency %d: %w", c, err)
			}
			jsRuns, htRuns, wRuns = append(jsRuns, js), append(htRuns, ht), append(wRuns, w)
			e.logf("overhead c=%d run %d: raw JetStream %.0f/s, raw HTTP %.0f/s, worker %.0f/s", c, rep+1, js.JobsPerS, ht.JobsPerS, w.JobsPerS)
		}
		r, target := overheadRows(c, median(jsRuns), median(htRuns), median(wRuns))
		rows, targets = append(rows, r...), append(targets, target)
	}
	return rows, targets, nil
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

// median returns the run with the median rate (the lower middle one of an
// even count), with the spread of all of them.
func median(runs []Row) Row {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b Row) int { return cmp.Compare(a.JobsPerS, b.JobsPerS) })
	m := s[(len(s)-1)/2]
	if len(s) > 1 {
		m.MinPerS, m.MaxPerS = s[0].JobsPerS, s[len(s)-1].JobsPerS
	}
	return m
}

func (e *env) runRawJetStream(ctx context.Context, c, total, warm int, dur time.Duration) (Row, error) {
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
	r, err := e.drive(ctx, t, c, total, warm, dur, nil)
	r.Name, r.Note = "raw JetStream", "publish → consume → publish result (PubAck) → ack; no HTTP; prefetching consumer"
	return r, err
}

func (e *env) runRawHTTP(ctx context.Context, c, total, warm int, dur time.Duration) (Row, error) {
	if err := e.resetEmulator(0, clerkLimit{}); err != nil {
		return Row{}, err
	}
	_ = resetPeak(os.Getpid())
	cpu0 := selfCPU()
	st, err := e.rawHTTP(ctx, c, total, warm, dur)
	if err != nil {
		return Row{}, err
	}
	r := loadRow(st, selfCPU()-cpu0)
	self, _ := readProc(os.Getpid())
	r.Scenario, r.Name, r.Concurrency, r.PeakRSSMiB = "overhead", "raw HTTP", c, mib(self.HWM)
	r.Note = "emulator RevokeSession, plain net/http client, keep-alive"
	return r, nil
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
// consumer. CPU per job is the worker's (process mode) and the bench
// process's.
func (e *env) drive(ctx context.Context, t jobs.Topology, c, total, warm int, dur time.Duration, w *runningWorker) (Row, error) {
	done, stopWatch, err := e.watchResults(ctx, t.ResultsStream, total+2*c)
	if err != nil {
		return Row{}, err
	}
	defer stopWatch()
	self := &runningWorker{pid: os.Getpid()}
	if w == nil {
		w = self // a raw consumer: only the bench process to sample
	}
	_ = resetPeak(w.pid)
	_ = resetPeak(os.Getpid())
	w0, cpu0 := w.sample(), selfCPU()
	st, err := e.closedLoop(ctx, t, 2*c, total, warm, dur, done)
	w1, cpu1 := w.sample(), selfCPU()
	if err != nil {
		return Row{}, err
	}
	r := loadRow(st, cpu1-cpu0)
	r.Scenario, r.Concurrency = "overhead", c
	r.PeakRSSMiB = mib(w1.HWM)
	switch {
	case w.proc != nil:
		r.WorkerCPUUS = perJobUS(w1.CPU-w0.CPU, st.Completed)
	case w != self:
		r.Note = "in-process worker: CPU and RSS are the whole bench process"
	}
	return r, nil
}

// ---- 2. latency-bound ----

func (e *env) latencyBound(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	var rows []Row
	var targets []Target
	for _, c := range sz.latencyConc {
		ideal := math.Min(float64(c)/clerkLatency.Seconds(), latencyLimit)
		total := int(ideal*sz.latencyDur.Seconds()) + 2*c
		warm := max(total/10, 2*c)
		total += warm
		r, err := e.runWorkerLoad(ctx, "latency", workerSpec{Concurrency: c, RateLimit: clerkForm(latencyLimit)}, clerkLatency, total, warm, sz.latencyDur*3)
		if err != nil {
			return rows, targets, fmt.Errorf("latency-bound, concurrency %d: %w", c, err)
		}
		r.Ideal = ideal
		r.Ratio = ratio(r.JobsPerS, ideal)
		rows = append(rows, r)
		targets = append(targets, Target{Scenario: "latency",
			Goal:     fmt.Sprintf("concurrency %d: ≥ 95%% of min(concurrency / %s, limit) = %.0f/s", c, clerkLatency, ideal),
			Measured: fmt.Sprintf("%.1f jobs/s = %.1f%%", r.JobsPerS, 100*r.Ratio),
			Met:      r.Ratio >= 0.95})
		e.logf("latency-bound c=%d: %.1f jobs/s of %.0f ideal (%.1f%%)", c, r.JobsPerS, ideal, 100*r.Ratio)
	}
	return rows, targets, nil
}

// ---- 4. bulk revoke ----

func (e *env) bulk(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	r, err := e.bulkRun(ctx, sz.bulkSessions, bulkLimit, 0, 0)
	if err != nil {
		return nil, nil, err
	}
	rows := []Row{r}
	targets := []Target{bulkTarget(r, fmt.Sprintf("revoke_all of %d sessions at --rate-limit %s, default bulk concurrency", sz.bulkSessions, clerkForm(bulkLimit)))}
	if sz.bulkLatSessions > 0 {
		// The default (sized from the limit and the latency it observes)
		// against the fixed 8 that was the default before.
		for _, bc := range []int{0, 8} {
			r, err := e.bulkRun(ctx, sz.bulkLatSessions, 100, clerkLatency, bc)
			if err != nil {
				return rows, targets, err
			}
			rows = append(rows, r)
			if bc == 0 {
				targets = append(targets, bulkTarget(r, fmt.Sprintf("revoke_all of %d sessions at --rate-limit %s, Clerk latency %s, default bulk concurrency", sz.bulkLatSessions, clerkForm(100), clerkLatency)))
			}
		}
	}
	return rows, targets, nil
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
	var revoked, tooMany int
	var firstRevoke, lastRevoke time.Time
	for _, call := range e.emu.Emulator.Calls() {
		if call.Status == 429 {
			tooMany++
		}
		if call.Op == emulator.OpRevokeSession && call.Status == 200 {
			revoked++
			if firstRevoke.IsZero() {
				firstRevoke = call.Time
			}
			lastRevoke = call.Time
		}
	}
	if revoked != sessions {
		return Row{}, fmt.Errorf("revoke_all: %d revoke calls succeeded, want %d", revoked, sessions)
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
	r.PhasePerS = float64(sessions-1) / lastRevoke.Sub(firstRevoke).Seconds()
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

func (e *env) backlog(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	t, err := e.newRun(ctx, 0, clerkLimit{})
	if err != nil {
		return nil, nil, err
	}
	defer e.dropTopology(t)
	n := sz.backlogJobs
	pubStart := time.Now()
	if err := e.publishBacklog(ctx, t, n); err != nil {
		return nil, nil, err
	}
	e.logf("backlog: %d jobs queued in %.1f s", n, time.Since(pubStart).Seconds())
	cpu0 := selfCPU()
	start := time.Now()
	w, err := e.startWorker(ctx, t, workerSpec{Concurrency: backlogConc, RateLimit: "0"})
	if err != nil {
		return nil, nil, err
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
		return nil, nil, fmt.Errorf("backlog not drained: %d results, %d jobs left: %w", res, left, err)
	}
	drained := time.Since(start)
	s := w.sample()
	peakRSS = max(peakRSS, s.HWM)
	cpu1 := selfCPU()
	if err := w.stop(); err != nil {
		return nil, nil, err
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
	return []Row{r}, []Target{{Scenario: "backlog",
		Goal:     fmt.Sprintf("peak RSS of the worker < 100 MiB with a %d-job backlog", n),
		Measured: fmt.Sprintf("%.1f MiB; drained in %.1f s", r.PeakRSSMiB, r.DurationS),
		Met:      r.PeakRSSMiB < 100}}, nil
}
