package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Row is one measured configuration.
type Row struct {
	Scenario    string  `json:"scenario"`
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency,omitempty"`
	Processes   int     `json:"processes,omitempty"`
	RateLimit   float64 `json:"rate_limit_per_process,omitempty"` // worker's --rate-limit (0: none)
	Jobs        int     `json:"jobs"`
	DurationS   float64 `json:"duration_s"`
	// JobsPerS is the measured rate (calls/s for raw HTTP, sessions/s for
	// bulk revoke, successful calls/s for rate adherence).
	JobsPerS float64 `json:"jobs_per_s"`
	P50MS    float64 `json:"p50_ms,omitempty"`
	P99MS    float64 `json:"p99_ms,omitempty"`
	// WorkerCPUUS is the worker processes' CPU per job (µs); BenchCPUUS
	// that of the bench process (NATS server, emulator, publisher, raw
	// clients) per job.
	WorkerCPUUS float64 `json:"worker_cpu_us_per_job,omitempty"`
	BenchCPUUS  float64 `json:"bench_cpu_us_per_job,omitempty"`
	PeakRSSMiB  float64 `json:"peak_rss_mib,omitempty"`
	// Ideal is the rate the configuration allows (latency-bound: the
	// smaller of concurrency/latency and the rate limit; rate adherence:
	// R); Ratio is JobsPerS over Ideal, or over the smaller raw limit in
	// the overhead scenario.
	Ideal     float64 `json:"ideal_per_s,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"`
	Status429 int     `json:"status_429,omitempty"`
	// MinPerS and MaxPerS are the slowest and fastest of repeated runs
	// (the row is the median one).
	MinPerS float64 `json:"min_per_s,omitempty"`
	MaxPerS float64 `json:"max_per_s,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// Target is one of the targets and whether a run met it.
type Target struct {
	Scenario string `json:"scenario"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// sizes are how big each scenario is; quick mode makes them tiny.
type sizes struct {
	overheadConc    []int
	overheadJobs    int
	overheadDur     time.Duration
	overheadRepeats int
	latencyConc     []int
	latency         time.Duration
	latencyLimit    float64
	latencyDur      time.Duration
	rateR           int
	rateDur         time.Duration
	clerkWindow     bool
	clerkDur        time.Duration
	bulkSessions    int
	bulkLimit       float64
	bulkLatSess     int
	backlogJobs     int
	backlogConc     int
	backlogTimeout  time.Duration
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{
			overheadConc: []int{1, 16}, overheadJobs: 200, overheadDur: 2 * time.Second,
			latencyConc: []int{1, 8}, latency: 100 * time.Millisecond, latencyLimit: 1000, latencyDur: time.Second,
			rateR: 100, rateDur: 2 * time.Second,
			bulkSessions: 200, bulkLimit: 1000, bulkLatSess: 0,
			backlogJobs: 2000, backlogConc: 256, backlogTimeout: time.Minute,
		}
	}
	return sizes{
		overheadConc: []int{1, 16, 256}, overheadJobs: 200_000, overheadDur: 6 * time.Second, overheadRepeats: 3,
		latencyConc: []int{1, 8, 32, 64, 128, 256}, latency: 100 * time.Millisecond, latencyLimit: 1000, latencyDur: 8 * time.Second,
		rateR: 100, rateDur: 20 * time.Second, clerkWindow: true, clerkDur: 40 * time.Second,
		bulkSessions: 10_000, bulkLimit: 1000, bulkLatSess: 1000,
		backlogJobs: 100_000, backlogConc: 256, backlogTimeout: 15 * time.Minute,
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func perJobUS(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1000 / float64(n)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func runID(t jobs.Topology) string { return t.Subjects.Prefix }

// ---- 1. overhead ----

func (e *env) overhead(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	var rows []Row
	var targets []Target
	for _, c := range sz.overheadConc {
		warm := min(sz.overheadJobs/10, 2000)
		// The three flows take turns, repeats times, and each reports its
		// median run: other load on the machine hits all three alike.
		var jsRuns, htRuns, wRuns []Row
		for rep := range max(sz.overheadRepeats, 1) {
			js, err := e.runRawJetStream(ctx, c, sz.overheadJobs, warm, sz.overheadDur)
			if err != nil {
				return rows, targets, fmt.Errorf("raw JetStream, concurrency %d: %w", c, err)
			}
			ht, err := e.runRawHTTP(ctx, c, sz.overheadJobs, warm, sz.overheadDur)
			if err != nil {
				return rows, targets, fmt.Errorf("raw HTTP, concurrency %d: %w", c, err)
			}
			w, err := e.runWorkerLoad(ctx, "overhead", c, 0, 0, sz.overheadJobs, warm, sz.overheadDur)
			if err != nil {
				return rows, targets, fmt.Errorf("worker, concurrency %d: %w", c, err)
			}
			jsRuns, htRuns, wRuns = append(jsRuns, js), append(htRuns, ht), append(wRuns, w)
			e.logf("overhead c=%d run %d: raw JetStream %.0f/s, raw HTTP %.0f/s, worker %.0f/s", c, rep+1, js.JobsPerS, ht.JobsPerS, w.JobsPerS)
		}
		js, ht, w := median(jsRuns), median(htRuns), median(wRuns)
		ref := min(js.JobsPerS, ht.JobsPerS)
		w.Ratio = w.JobsPerS / ref
		w.Ideal = ref
		rows = append(rows, js, ht, w)
		targets = append(targets, Target{Scenario: "overhead",
			Goal:     fmt.Sprintf("concurrency %d: worker ≥ 50%% of the smaller raw limit", c),
			Measured: fmt.Sprintf("%.0f jobs/s = %.0f%% of %.0f/s", w.JobsPerS, 100*w.Ratio, ref),
			Met:      w.Ratio >= 0.5})
		e.logf("overhead c=%d (median of %d): raw JetStream %.0f/s, raw HTTP %.0f/s, worker %.0f/s (%.0f%%)", c, len(wRuns), js.JobsPerS, ht.JobsPerS, w.JobsPerS, 100*w.Ratio)
	}
	return rows, targets, nil
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
	t, err := e.topology(ctx)
	if err != nil {
		return Row{}, err
	}
	defer e.dropTopology(t)
	rc, err := e.startRawConsumer(ctx, t, c)
	if err != nil {
		return Row{}, err
	}
	done, stopWatch, err := e.watchResults(ctx, t.ResultsStream, total+2*c)
	if err != nil {
		rc.stop()
		return Row{}, err
	}
	_ = resetPeak(selfPID())
	cpu0 := selfCPU()
	st, err := e.closedLoop(ctx, 2*c, total, warm, dur, func(i int) *nats.Msg { return e.jobMsg(t, runID(t), i) }, done)
	cpu1 := selfCPU()
	self, _ := readProc(selfPID())
	stopWatch()
	rc.stop()
	if err != nil {
		return Row{}, err
	}
	p50, p99 := latencies(st.Lat)
	return Row{Scenario: "overhead", Name: "raw JetStream", Concurrency: c, Jobs: st.Completed, DurationS: st.Span.Seconds(),
		JobsPerS: st.rate(), P50MS: ms(p50), P99MS: ms(p99), BenchCPUUS: perJobUS(cpu1-cpu0, st.Completed),
		PeakRSSMiB: mib(self.HWM), Note: "publish → consume → publish result (PubAck) → ack; no HTTP; prefetching consumer"}, nil
}

func (e *env) runRawHTTP(ctx context.Context, c, total, warm int, dur time.Duration) (Row, error) {
	e.resetEmulator(0, 0, 0)
	_ = resetPeak(selfPID())
	cpu0 := selfCPU()
	st, err := e.rawHTTP(ctx, c, total, warm, dur)
	cpu1 := selfCPU()
	self, _ := readProc(selfPID())
	if err != nil {
		return Row{}, err
	}
	p50, p99 := latencies(st.Lat)
	return Row{Scenario: "overhead", Name: "raw HTTP", Concurrency: c, Jobs: st.Completed, DurationS: st.Span.Seconds(),
		JobsPerS: st.rate(), P50MS: ms(p50), P99MS: ms(p99), BenchCPUUS: perJobUS(cpu1-cpu0, st.Completed),
		PeakRSSMiB: mib(self.HWM), Note: "emulator RevokeSession, plain net/http client, keep-alive"}, nil
}

// runWorkerLoad drives one worker with a closed loop of revoke jobs (2 ×
// concurrency outstanding) and measures it.
func (e *env) runWorkerLoad(ctx context.Context, scenario string, c int, rateLimit float64, latency time.Duration, total, warm int, dur time.Duration) (Row, error) {
	t, err := e.topology(ctx)
	if err != nil {
		return Row{}, err
	}
	defer e.dropTopology(t)
	e.resetEmulator(latency, 0, 0)
	ws, err := e.startWorkers(ctx, t, 1, workerSpec{Concurrency: c, RateLimit: rateLimit})
	if err != nil {
		return Row{}, err
	}
	done, stopWatch, err := e.watchResults(ctx, t.ResultsStream, total+2*c)
	if err != nil {
		stopAll(ws)
		return Row{}, err
	}
	for _, w := range ws {
		w.resetPeak()
	}
	_ = resetPeak(selfPID())
	w0, cpu0 := sampleAll(ws), selfCPU()
	st, err := e.closedLoop(ctx, 2*c, total, warm, dur, func(i int) *nats.Msg { return e.jobMsg(t, runID(t), i) }, done)
	w1, cpu1 := sampleAll(ws), selfCPU()
	stopWatch()
	if serr := stopAll(ws); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return Row{}, err
	}
	p50, p99 := latencies(st.Lat)
	r := Row{Scenario: scenario, Name: "worker", Concurrency: c, Processes: 1, RateLimit: rateLimit, Jobs: st.Completed,
		DurationS: st.Span.Seconds(), JobsPerS: st.rate(), P50MS: ms(p50), P99MS: ms(p99), PeakRSSMiB: mib(w1.HWM)}
	if e.opts.Worker == "process" {
		r.WorkerCPUUS = perJobUS(w1.CPU-w0.CPU, st.Completed)
		r.BenchCPUUS = perJobUS(cpu1-cpu0, st.Completed)
	} else {
		r.BenchCPUUS = perJobUS(cpu1-cpu0, st.Completed)
		r.Note = "in-process worker: CPU and RSS are the whole bench process"
	}
	return r, nil
}

// ---- 2. latency-bound ----

func (e *env) latencyBound(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	var rows []Row
	var targets []Target
	for _, c := range sz.latencyConc {
		ideal := math.Min(float64(c)/sz.latency.Seconds(), sz.latencyLimit)
		total := int(ideal*sz.latencyDur.Seconds()) + 2*c
		warm := max(total/10, 2*c)
		total += warm
		r, err := e.runWorkerLoad(ctx, "latency", c, sz.latencyLimit, sz.latency, total, warm, sz.latencyDur*3)
		if err != nil {
			return rows, targets, fmt.Errorf("latency-bound, concurrency %d: %w", c, err)
		}
		r.Ideal = ideal
		r.Ratio = r.JobsPerS / ideal
		r.Note = fmt.Sprintf("emulator latency %s, worker --rate-limit %g", sz.latency, sz.latencyLimit)
		rows = append(rows, r)
		targets = append(targets, Target{Scenario: "latency",
			Goal:     fmt.Sprintf("concurrency %d: ≥ 95%% of min(concurrency / %s, limit) = %.0f/s", c, sz.latency, ideal),
			Measured: fmt.Sprintf("%.1f jobs/s = %.1f%%", r.JobsPerS, 100*r.Ratio),
			Met:      r.Ratio >= 0.95})
		e.logf("latency-bound c=%d: %.1f jobs/s of %.0f ideal (%.1f%%)", c, r.JobsPerS, ideal, 100*r.Ratio)
	}
	return rows, targets, nil
}

// ---- 3. rate-limit adherence ----

type rateCase struct {
	name    string
	procs   int
	perProc float64
}

func (e *env) rateAdherence(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	var rows []Row
	var targets []Target
	R := float64(sz.rateR)
	type form struct {
		label  string
		n      int
		window time.Duration
		dur    time.Duration
	}
	forms := []form{{fmt.Sprintf("%d per 1 s", sz.rateR), sz.rateR, time.Second, sz.rateDur}}
	if sz.clerkWindow {
		forms = append(forms, form{fmt.Sprintf("%d per 10 s", 10*sz.rateR), 10 * sz.rateR, 10 * time.Second, sz.clerkDur})
	}
	cases := []rateCase{
		{"1 process at R", 1, R},
		{"1 process at 0.98 R", 1, 0.98 * R},
	}
	if !e.opts.Quick {
		cases = append(cases,
			rateCase{"3 processes at R/3", 3, R / 3},
			rateCase{"3 processes at 0.98 R/3", 3, 0.98 * R / 3},
			rateCase{"3 processes at R each", 3, R},
		)
	}
	for _, f := range forms {
		for _, c := range cases {
			if f.window > time.Second && c.perProc == R && c.procs == 3 {
				continue // shown once, with the 1 s window
			}
			r, err := e.rateRun(ctx, f.n, f.window, f.dur, c)
			if err != nil {
				return rows, targets, fmt.Errorf("rate adherence %s, %s: %w", f.label, c.name, err)
			}
			r.Name = c.name
			r.Note = "emulator enforces " + f.label + " (fixed windows)"
			r.Ratio = r.JobsPerS / R
			r.Ideal = R
			rows = append(rows, r)
			e.logf("rate %s, %s: %.2f/s (%.1f%% of R), %d × 429", f.label, c.name, r.JobsPerS, 100*r.Ratio, r.Status429)
			if c.procs == 1 {
				targets = append(targets, Target{Scenario: "ratelimit",
					Goal:     fmt.Sprintf("%s, emulator %s: ≥ 97%% of R with zero 429s", c.name, f.label),
					Measured: fmt.Sprintf("%.1f%% of R, %d × 429", 100*r.Ratio, r.Status429),
					Met:      r.Ratio >= 0.97 && r.Status429 == 0})
			}
		}
	}
	return rows, targets, nil
}

// rateRun starts the workers, then queues more jobs than they can run in
// the measured time, and reads the emulator's call log: the rate is the
// successful calls in [first call + 1 s, + dur) over dur.
func (e *env) rateRun(ctx context.Context, n int, window, dur time.Duration, c rateCase) (Row, error) {
	t, err := e.topology(ctx)
	if err != nil {
		return Row{}, err
	}
	defer e.dropTopology(t)
	e.resetEmulator(0, n, window)
	ws, err := e.startWorkers(ctx, t, c.procs, workerSpec{Concurrency: 16, RateLimit: c.perProc})
	if err != nil {
		return Row{}, err
	}
	const warm = time.Second
	R := float64(n) / window.Seconds()
	jobsN := int(R*(dur+warm).Seconds()*1.3) + 100
	if err := e.publishBacklog(ctx, jobsN, func(i int) *nats.Msg { return e.jobMsg(t, runID(t), i) }); err != nil {
		stopAll(ws)
		return Row{}, err
	}
	// Wait for the first call, then for the measured window to pass.
	var first time.Time
	deadline := time.Now().Add(30 * time.Second)
	for first.IsZero() && time.Now().Before(deadline) {
		if calls := e.emu.Emulator.Calls(); len(calls) > 0 {
			first = calls[0].Time
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if first.IsZero() {
		stopAll(ws)
		return Row{}, fmt.Errorf("no Clerk call within 30s")
	}
	from, to := first.Add(warm), first.Add(warm+dur)
	sleepCtx(ctx, time.Until(to)+200*time.Millisecond)
	calls := e.emu.Emulator.Calls()
	if err := stopAll(ws); err != nil {
		return Row{}, err
	}
	ok, tooMany, total := 0, 0, 0
	for _, call := range calls {
		if call.Time.Before(from) || !call.Time.Before(to) {
			if call.Status == 429 {
				tooMany++ // every 429 counts, measured window or not
			}
			continue
		}
		total++
		switch call.Status {
		case 200:
			ok++
		case 429:
			tooMany++
		}
	}
	return Row{Scenario: "ratelimit", Concurrency: 16, Processes: c.procs, RateLimit: c.perProc, Jobs: ok,
		DurationS: dur.Seconds(), JobsPerS: float64(ok) / dur.Seconds(), Status429: tooMany}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ---- 4. bulk revoke ----

func (e *env) bulk(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	var rows []Row
	var targets []Target
	r, err := e.bulkRun(ctx, sz.bulkSessions, sz.bulkLimit, 0, 0)
	if err != nil {
		return rows, targets, err
	}
	rows = append(rows, r)
	targets = append(targets, Target{Scenario: "bulk",
		Goal:     fmt.Sprintf("revoke_all of %d sessions at --rate-limit %g: sessions/s ≥ 95%% of the limit (the bench's own bar: the issue sets none)", sz.bulkSessions, sz.bulkLimit),
		Measured: fmt.Sprintf("%.0f sessions/s = %.1f%% of the limit", r.JobsPerS, 100*r.Ratio),
		Met:      r.Ratio >= 0.95})
	if sz.bulkLatSess > 0 {
		for _, bc := range []int{8, 16} {
			r, err := e.bulkRun(ctx, sz.bulkLatSess, 100, 100*time.Millisecond, bc)
			if err != nil {
				return rows, targets, err
			}
			rows = append(rows, r)
		}
	}
	return rows, targets, nil
}

func (e *env) bulkRun(ctx context.Context, sessions int, limit float64, latency time.Duration, bulkConc int) (Row, error) {
	user := e.emu.Emulator.CreateUser()
	e.emu.Emulator.CreateSessions(user, sessions)
	t, err := e.topology(ctx)
	if err != nil {
		return Row{}, err
	}
	defer e.dropTopology(t)
	e.resetEmulator(latency, 0, 0)
	ws, err := e.startWorkers(ctx, t, 1, workerSpec{Concurrency: 16, RateLimit: limit, BulkConcurrency: bulkConc})
	if err != nil {
		return Row{}, err
	}
	done, stopWatch, err := e.watchResults(ctx, t.ResultsStream, 1)
	if err != nil {
		stopAll(ws)
		return Row{}, err
	}
	w0, cpu0 := sampleAll(ws), selfCPU()
	m := nats.NewMsg(t.Subjects.Job(jobs.OpRevokeAll))
	m.Data = fmt.Appendf(nil, `{"job_id":"bulk-%s","user_id":%q}`, runID(t), user)
	m.Header.Set(jetstream.MsgIDHeader, "bulk-"+runID(t))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = e.js.PublishMsg(pctx, m)
	cancel()
	if err != nil {
		stopWatch()
		stopAll(ws)
		return Row{}, err
	}
	timeout := time.Duration(float64(sessions)/limit*3*float64(time.Second)) + time.Minute
	var c completion
	select {
	case c = <-done:
	case <-time.After(timeout):
		err = fmt.Errorf("revoke_all of %d sessions did not finish within %s", sessions, timeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	w1, cpu1 := sampleAll(ws), selfCPU()
	stopWatch()
	if serr := stopAll(ws); serr != nil && err == nil {
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
		if call.Op != emulator.OpRevokeSession || call.Status != 200 {
			continue
		}
		if !strings.HasPrefix(call.SessionID, "sess_") {
			continue
		}
		revoked++
		if firstRevoke.IsZero() {
			firstRevoke = call.Time
		}
		lastRevoke = call.Time
	}
	if revoked != sessions {
		return Row{}, fmt.Errorf("revoke_all: %d revoke calls succeeded, want %d", revoked, sessions)
	}
	bc := bulkConc
	if bc == 0 {
		bc = 8
	}
	r := Row{Scenario: "bulk", Name: fmt.Sprintf("revoke_all, bulk concurrency %d", bc), Concurrency: bc, Processes: 1, RateLimit: limit,
		Jobs: sessions, DurationS: c.latency.Seconds(), JobsPerS: float64(sessions) / c.latency.Seconds(),
		PeakRSSMiB: mib(w1.HWM), Status429: tooMany}
	r.Ideal = limit
	if latency > 0 {
		r.Ideal = math.Min(limit, float64(bc)/latency.Seconds())
	}
	r.Ratio = r.JobsPerS / limit
	if e.opts.Worker == "process" {
		r.WorkerCPUUS = perJobUS(w1.CPU-w0.CPU, sessions)
	}
	r.BenchCPUUS = perJobUS(cpu1-cpu0, sessions)
	revokePhase := lastRevoke.Sub(firstRevoke).Seconds()
	r.Note = fmt.Sprintf("emulator latency %s; job published → result stored %.2f s; revoke phase %.0f revokes/s", latency, c.latency.Seconds(), float64(sessions-1)/revokePhase)
	e.logf("bulk %d sessions, limit %g, latency %s, bulk concurrency %d: %.0f sessions/s (%.1f%% of limit)", sessions, limit, latency, bc, r.JobsPerS, 100*r.Ratio)
	return r, nil
}

// ---- 5. backlog ----

func (e *env) backlog(ctx context.Context, sz sizes) ([]Row, []Target, error) {
	t, err := e.topology(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer e.dropTopology(t)
	e.resetEmulator(0, 0, 0)
	n := sz.backlogJobs
	pubStart := time.Now()
	if err := e.publishBacklog(ctx, n, func(i int) *nats.Msg { return e.jobMsg(t, runID(t), i) }); err != nil {
		return nil, nil, err
	}
	e.logf("backlog: %d jobs queued in %.1f s", n, time.Since(pubStart).Seconds())
	cpu0 := selfCPU()
	start := time.Now()
	ws, err := e.startWorkers(ctx, t, 1, workerSpec{Concurrency: sz.backlogConc, RateLimit: 0})
	if err != nil {
		return nil, nil, err
	}
	deadline := start.Add(sz.backlogTimeout)
	var drained time.Duration
	var peakRSS int64
	for {
		s := sampleAll(ws)
		peakRSS = max(peakRSS, s.HWM, s.RSS)
		res, err1 := e.streamMsgs(ctx, t.ResultsStream)
		left, err2 := e.streamMsgs(ctx, t.JobsStream)
		if err1 == nil && err2 == nil && res >= uint64(n) && left == 0 {
			drained = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			stopAll(ws)
			return nil, nil, fmt.Errorf("backlog not drained within %s: %d results, %d jobs left", sz.backlogTimeout, res, left)
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	s := sampleAll(ws)
	peakRSS = max(peakRSS, s.HWM)
	cpu1 := selfCPU()
	if err := stopAll(ws); err != nil {
		return nil, nil, err
	}
	r := Row{Scenario: "backlog", Name: "worker", Concurrency: sz.backlogConc, Processes: 1, Jobs: n, DurationS: drained.Seconds(),
		JobsPerS: float64(n) / drained.Seconds(), PeakRSSMiB: mib(peakRSS),
		Note: fmt.Sprintf("%d jobs queued before the worker started; drain = worker start → last result stored and job acked; --rate-limit 0", n)}
	if e.opts.Worker == "process" {
		r.WorkerCPUUS = perJobUS(s.CPU, n)
	} else {
		r.Note += "; in-process: RSS is the whole bench process (NATS server and emulator included)"
	}
	r.BenchCPUUS = perJobUS(cpu1-cpu0, n)
	e.logf("backlog: %d jobs drained in %.1f s (%.0f/s), peak RSS %.1f MiB", n, r.DurationS, r.JobsPerS, r.PeakRSSMiB)
	return []Row{r}, []Target{{Scenario: "backlog",
		Goal:     fmt.Sprintf("peak RSS of the worker < 100 MiB with a %d-job backlog", n),
		Measured: fmt.Sprintf("%.1f MiB; drained in %.1f s", r.PeakRSSMiB, r.DurationS),
		Met:      r.PeakRSSMiB < 100}}, nil
}
