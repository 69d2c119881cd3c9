package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// ---- 3. rate-limit adherence ----

// Clerk's limit for a production instance's key, in both window forms:
// Clerk does not document which one it uses.
var (
	clerkFixed   = clerkLimit{n: 1000, window: 10 * time.Second}
	clerkSliding = clerkLimit{n: 1000, window: 10 * time.Second, mode: emulator.SlidingWindow}
)

// rateRow is one row of the rate-limit scenario: replicas with the same
// configuration sharing one Clerk key, against the emulator enforcing
// limit on that key.
type rateRow struct {
	replicas int
	limit    clerkLimit
	// rateLimit is every replica's --rate-limit: what an operator writes
	// once for the whole fleet.
	rateLimit string
	// load "uneven": one revoke_all keeps the first replica busy while the
	// others get single jobs worth a fifth of the limit; "even": a backlog
	// of single jobs keeps every replica busy.
	load string
	// kill SIGKILLs the last replica halfway through the measured time.
	kill bool
}

// rateRows are the scenario's rows, in the order they run: every replica
// is configured with Clerk's own limit, "1000/10s", and they share it.
var rateRows = []rateRow{
	{replicas: 1, limit: clerkFixed, rateLimit: "1000/10s", load: "even"},
	{replicas: 1, limit: clerkSliding, rateLimit: "1000/10s", load: "even"},
	{replicas: 3, limit: clerkFixed, rateLimit: "1000/10s", load: "even", kill: true},
	{replicas: 3, limit: clerkSliding, rateLimit: "1000/10s", load: "uneven", kill: true},
	{replicas: 5, limit: clerkFixed, rateLimit: "1000/10s", load: "uneven", kill: true},
	{replicas: 5, limit: clerkSliding, rateLimit: "1000/10s", load: "even", kill: true},
}

func (r rateRow) name() string {
	s := fmt.Sprintf("%d replicas, %s load", r.replicas, r.load)
	if r.replicas == 1 {
		s = "1 replica, " + r.load + " load"
	}
	if r.kill {
		s += ", 1 killed"
	}
	return s
}

func (e *env) rateAdherence(ctx context.Context, sz sizes, rep *Report) error {
	for _, rr := range rateRows {
		r, err := e.rateRun(ctx, rr, sz.rateDur)
		if err != nil {
			return fmt.Errorf("rate adherence %s, %s: %w", rr.limit, r.Name, err)
		}
		rep.Rows = append(rep.Rows, r)
		e.logf("rate %s, %s: %.2f/s (%.1f%% of the limit), %d × 429, worst window %d", rr.limit, r.Name, r.JobsPerS, 100*r.Ratio, r.Status429, r.WorstWindow)
		rep.Targets = append(rep.Targets, Target{Scenario: "ratelimit",
			Goal:     fmt.Sprintf("%s, emulator %s: ≥ 97%% of the limit, zero 429s, no window above %d", r.Name, rr.limit, rr.limit.n),
			Measured: fmt.Sprintf("%.1f%% of the limit, %d × 429, worst window %d", 100*r.Ratio, r.Status429, r.WorstWindow),
			Met:      r.Ratio >= 0.97 && r.Status429 == 0 && r.WorstWindow <= rr.limit.n})
	}
	return nil
}

// rateRun starts the replicas and gives them more work than the limit
// lets them do, then reads the emulator's call log: the rate is the
// successful calls in [first call + 1 s, + dur) over dur. Worker
// processes only, in every worker mode: one may be SIGKILLed. They are all
// SIGKILLed at the end, as a graceful stop would let a revoke_all drain
// for long after what is measured.
func (e *env) rateRun(ctx context.Context, rr rateRow, dur time.Duration) (Row, error) {
	const warm = time.Second
	r := Row{Scenario: "ratelimit", Name: rr.name(), Concurrency: 16, Replicas: rr.replicas, RateLimit: rr.rateLimit,
		ClerkLimit: rr.limit.String(), DurationS: dur.Seconds(), Ideal: rr.limit.perSecond(), Load: rr.load}
	if rr.kill {
		r.Killed = 1
	}
	t, err := e.newRun(ctx, 0, rr.limit)
	if err != nil {
		return r, err
	}
	defer e.dropTopology(t)
	var ws []*runningWorker
	defer func() {
		for _, w := range ws {
			_ = w.kill()
		}
	}()
	start := func(i int) error {
		w, err := e.startProcess(ctx, t, workerSpec{Concurrency: r.Concurrency, RateLimit: rr.rateLimit}, i)
		if err == nil {
			ws = append(ws, w)
		}
		return err
	}
	// More work than the limit allows in the run, as much again for every
	// replica (each may think it has the whole limit), so that no replica
	// with work ever waits for more.
	work := int(rr.limit.perSecond()*(warm+dur).Seconds()*1.3)*rr.replicas + 100
	if rr.load == "uneven" {
		// The revoke_all is queued before any replica runs and the first
		// one started alone, so it is the first replica's, and the one
		// killed is another.
		user := e.emu.Emulator.CreateUser()
		e.emu.Emulator.CreateSessions(user, work)
		if err := e.publishRevokeAll(ctx, t, user); err != nil {
			return r, err
		}
		if err := start(0); err != nil {
			return r, err
		}
		if _, err := e.firstCall(ctx); err != nil {
			return r, err
		}
		work = int(rr.limit.perSecond() * (warm + dur).Seconds() / 5)
	}
	for i := len(ws); i < rr.replicas; i++ {
		if err := start(i); err != nil {
			return r, err
		}
	}
	if err := e.publishBacklog(ctx, t, work); err != nil {
		return r, err
	}
	first, err := e.firstCall(ctx) // for an uneven run, the call waited for above
	if err != nil {
		return r, err
	}
	from, to := first.Add(warm), first.Add(warm+dur)
	wait := func(until time.Time) error {
		select {
		case <-time.After(time.Until(until)):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The replicas' CPU over the measured time (until each is killed):
	// what the fleet spends per call, its idle replicas included.
	if err := wait(from); err != nil {
		return r, err
	}
	var cpu time.Duration
	for _, w := range ws {
		cpu -= w.sample().CPU
	}
	kill := func(w *runningWorker) error {
		cpu += w.sample().CPU
		return w.kill()
	}
	if rr.kill {
		if err := wait(from.Add(dur / 2)); err != nil {
			return r, err
		}
		last := ws[len(ws)-1]
		ws = ws[:len(ws)-1]
		if err := kill(last); err != nil {
			return r, err
		}
	}
	if err := wait(to.Add(200 * time.Millisecond)); err != nil {
		return r, err
	}
	calls := e.emu.Emulator.Calls()
	for _, w := range ws {
		if err := kill(w); err != nil {
			return r, err
		}
	}
	ws = nil
	for _, c := range calls {
		if c.Status == 429 {
			r.Status429++ // every one, measured time or not
		}
		if c.Status == 200 && !c.Time.Before(from) && c.Time.Before(to) {
			r.Jobs++
		}
	}
	r.WorkerCPUUS = perJobUS(cpu, r.Jobs)
	r.JobsPerS = float64(r.Jobs) / dur.Seconds()
	r.Ratio = ratio(r.JobsPerS, r.Ideal)
	r.WorstWindow = emulator.WorstWindow(calls, rr.limit.window)
	return r, nil
}

// firstCall waits (at most 30 s) for the emulator's first call of a run
// and returns when it arrived.
func (e *env) firstCall(ctx context.Context) (first time.Time, err error) {
	err = poll(ctx, 10*time.Millisecond, 30*time.Second, func() bool {
		if calls := e.emu.Emulator.Calls(); len(calls) > 0 {
			first = calls[0].Time
		}
		return !first.IsZero()
	})
	if err != nil {
		return first, fmt.Errorf("waiting for the first Clerk call: %w", err)
	}
	return first, nil
}
