package ratebudget

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrClosed is returned by Wait once the budget is closed.
var ErrClosed = errors.New("rate budget closed")

// DefaultMaxPause bounds the pause one 429 imposes (WithMaxPause).
const DefaultMaxPause = 5 * time.Minute

// Mode says where a budget's permits come from.
type Mode string

const (
	// ModeFleet: slots claimed from the key's shared schedule in JetStream.
	ModeFleet Mode = "fleet"
	// ModeFallback: JetStream is unreachable; the budget spends the slots it
	// had claimed, then its share of the reserved trickle (if any).
	ModeFallback Mode = "fallback"
	// ModeProcess: this process alone (NewLocal).
	ModeProcess Mode = "process"
)

// Budget hands out permission to call Clerk: Wait blocks until one call
// may go. Each call to Wait takes one slot of the schedule in turn (FIFO),
// so a burst of callers on one replica cannot starve a single caller.
// All methods are safe for concurrent use.
type Budget struct {
	sched    schedule
	maxPause time.Duration
	fleet    *fleet // nil in process scope

	mu       sync.Mutex
	slots    []time.Time // claimed and not yet handed to a waiter, ascending
	waiters  []*waiter   // FIFO, each without a slot
	sleeping int         // waiters holding a slot until its time comes
	gen      uint64      // bumped when held slots are withdrawn (a pause)
	revoked  chan struct{}
	pause    time.Time // local: no slot before it
	tat      time.Time // process scope: the local GCRA's next free slot
	rate     ewma      // calls granted per second, recently
	st       counters
	closed   bool

	wake   chan struct{} // the claimer has work
	done   chan struct{}
	ctx    context.Context // canceled by Close: ends network calls
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type counters struct {
	granted, waits, wasted, pauses uint64
	waitTime                       time.Duration
}

// waiter is one Wait without a slot yet; the claimer's dispatch sends it
// one.
type waiter struct{ slot chan held }

// held is a slot given to a waiter, with the generation that makes it
// void when a pause withdraws it.
type held struct {
	at      time.Time
	gen     uint64
	revoked <-chan struct{}
}

// Option configures a Budget.
type Option func(*options)

type options struct {
	maxPause    time.Duration
	lease       time.Duration // fallbackLease; tests shorten it
	leaseMargin time.Duration
	reserve     int              // fleet scope: calls per window kept for the trickle; -1: fleetReserve
	now         func() time.Time // fleet scope: reads the clock; tests step its wall reading
	// skew is added to the server's timestamps (fleet scope): tests step
	// the server's clock with it, as a new stream leader with another
	// clock does. nil: none.
	skew     func() time.Duration
	log      zerolog.Logger
	recreate func(context.Context) error
}

// WithMaxPause bounds the pause one Throttled call (one 429) can impose on
// every replica sharing the key (DefaultMaxPause when not given or <= 0).
func WithMaxPause(d time.Duration) Option {
	return func(o *options) { o.maxPause = d }
}

// WithLogger receives what a fleet budget finds wrong in the shared state
// (none by default). It never receives the secret key.
func WithLogger(l zerolog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithRecreate gives a fleet budget the way to create its bucket again,
// with the configuration it had at start, when JetStream says it is gone
// (deleted by hand): without it every operation fails for good, and the
// budget spends no more than its fallback. recreate must be idempotent
// (several replicas may call it at once); the budget calls it at most once
// every 2 s, in the background.
func WithRecreate(recreate func(context.Context) error) Option {
	return func(o *options) { o.recreate = recreate }
}

// NewLocal returns a budget for this process alone (scope "process"): the
// same schedule as a fleet budget, without JetStream, without a reserve.
func NewLocal(limit Limit, opts ...Option) (*Budget, error) {
	if err := limit.validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	b := newBudget(newSchedule(limit, 0), o)
	b.start()
	return b, nil
}

func buildOptions(opts []Option) options {
	o := options{maxPause: DefaultMaxPause, lease: fallbackLease, leaseMargin: leaseMargin, reserve: -1, now: time.Now, log: zerolog.Nop()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxPause <= 0 {
		o.maxPause = DefaultMaxPause
	}
	return o
}

func newBudget(s schedule, o options) *Budget {
	ctx, cancel := context.WithCancel(context.Background())
	return &Budget{
		sched: s, maxPause: o.maxPause,
		revoked: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		ctx:     ctx, cancel: cancel,
	}
}

func (b *Budget) start() {
	if b.sched.limit.Unlimited() && b.fleet == nil {
		return // nothing to claim: Wait only honours pauses
	}
	b.wg.Add(1)
	go b.claimLoop()
}

// Wait blocks until one call may go, or ctx ends (its error), or the
// budget is closed (ErrClosed).
func (b *Budget) Wait(ctx context.Context) error {
	start := time.Now()
	for {
		h, err := b.take(ctx)
		if err != nil {
			return err
		}
		if d := time.Until(h.at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-h.revoked:
				t.Stop()
				b.release()
				continue
			case <-ctx.Done():
				t.Stop()
				b.giveBack(h)
				return ctx.Err()
			case <-b.done:
				t.Stop()
				return ErrClosed
			}
		}
		if b.grant(h, start) {
			return nil
		}
	}
}

// take gives the caller a slot: the first queued one if nobody waits
// before it, else one the claimer dispatches in turn.
func (b *Budget) take(ctx context.Context) (held, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return held{}, ErrClosed
	}
	if b.sched.limit.Unlimited() {
		b.sleeping++
		h := held{at: b.pause, gen: b.gen, revoked: b.revoked}
		b.mu.Unlock()
		return h, nil
	}
	b.purgeLocked(time.Now())
	if len(b.waiters) == 0 && len(b.slots) > 0 {
		h := held{at: b.slots[0], gen: b.gen, revoked: b.revoked}
		b.slots = b.slots[1:]
		b.sleeping++
		b.mu.Unlock()
		return h, nil
	}
	w := &waiter{slot: make(chan held, 1)}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	b.signal()
	select {
	case h := <-w.slot:
		return h, nil
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.waiters, w); i >= 0 {
			b.waiters = slices.Delete(b.waiters, i, i+1)
			b.mu.Unlock()
		} else {
			b.mu.Unlock()
			b.giveBack(<-w.slot) // dispatched meanwhile: someone else may use it
		}
		return held{}, ctx.Err()
	case <-b.done:
		return held{}, ErrClosed
	}
}

// grant spends h if it is still valid: not withdrawn and not later than
// the grace (a later call could crowd the calls of the slots after it).
func (b *Budget) grant(h held, start time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sleeping--
	if len(b.waiters) > 0 {
		// The claimer holds back while this replica holds over half its
		// share; one slot less may be what lets it claim for the waiters.
		b.signal()
	}
	if h.gen != b.gen {
		return false
	}
	now := time.Now()
	if !b.sched.limit.Unlimited() && now.Sub(h.at) > b.sched.grace {
		b.st.wasted++
		b.signal()
		return false
	}
	b.st.granted++
	b.rate.add(now)
	if waited := now.Sub(start); waited > time.Millisecond {
		b.st.waits++
		b.st.waitTime += waited
	}
	return true
}

// release forgets a slot withdrawn while its waiter slept.
func (b *Budget) release() {
	b.mu.Lock()
	b.sleeping--
	b.mu.Unlock()
	b.signal()
}

// giveBack returns the slot of a waiter that gave up, for the next one.
func (b *Budget) giveBack(h held) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sleeping--
	if h.gen == b.gen && !b.sched.limit.Unlimited() {
		b.addSlotsLocked([]time.Time{h.at})
	}
}

// addSlotsLocked queues slots, claimed or given back, and hands them to
// waiters in turn.
func (b *Budget) addSlotsLocked(at []time.Time) {
	if len(at) == 0 || b.closed {
		return
	}
	for _, t := range at {
		if t.Before(b.pause) {
			b.st.wasted++ // claimed before a pause arrived
			continue
		}
		i, _ := slices.BinarySearchFunc(b.slots, t, time.Time.Compare)
		b.slots = slices.Insert(b.slots, i, t)
	}
	b.dispatchLocked()
}

func (b *Budget) dispatchLocked() {
	for len(b.waiters) > 0 && len(b.slots) > 0 {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		w.slot <- held{at: b.slots[0], gen: b.gen, revoked: b.revoked}
		b.slots = b.slots[1:]
		b.sleeping++
	}
}

// purgeLocked drops queued slots too late to use.
func (b *Budget) purgeLocked(now time.Time) { b.dropBeforeLocked(now.Add(-b.sched.grace)) }

// dropBeforeLocked drops the queued slots before t, as wasted.
func (b *Budget) dropBeforeLocked(t time.Time) {
	n := 0
	for n < len(b.slots) && b.slots[n].Before(t) {
		n++
	}
	b.slots = b.slots[n:]
	b.st.wasted += uint64(n)
}

// pauseLocked holds every call until the local time until: queued slots
// before it are dropped, and slots waiters already hold are withdrawn.
func (b *Budget) pauseLocked(until time.Time) {
	if !until.After(b.pause) {
		return
	}
	b.pause = until
	b.st.pauses++
	b.dropBeforeLocked(until)
	b.gen++
	close(b.revoked)
	b.revoked = make(chan struct{})
	b.signal()
}

// Throttled reports a 429: every call of every replica sharing the key
// waits retryAfter (1 s when Clerk sent none), at most the max pause, and
// the schedule resumes after it without a burst.
func (b *Budget) Throttled(retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	retryAfter = min(retryAfter, b.maxPause)
	if b.fleet != nil {
		b.fleet.throttled(retryAfter)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pauseLocked(time.Now().Add(retryAfter))
}

// signal wakes the claimer (a wake already pending will do).
func (b *Budget) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// claimLoop claims slots whenever waiters lack them, from the local
// schedule or the fleet's.
func (b *Budget) claimLoop() {
	defer b.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-b.wake:
		case <-t.C:
		case <-b.done:
			return
		}
		next := b.claim()
		t.Stop()
		if !next.IsZero() {
			t.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// claim claims until no waiter lacks a slot; it returns when to try again
// if it could not (zero: when signalled).
func (b *Budget) claim() time.Time {
	for {
		if b.fleet != nil {
			return b.fleet.claim()
		}
		b.mu.Lock()
		k := b.wantLocked(b.sched.perHorizon())
		if k == 0 {
			b.mu.Unlock()
			return time.Time{}
		}
		at, retry := b.claimLocalLocked(k)
		b.addSlotsLocked(at)
		b.mu.Unlock()
		if len(at) == 0 {
			return retry
		}
	}
}

// wantLocked is how many slots to claim now: enough for the waiters no
// queued slot serves, plus what the recent rate will want before a claim
// could answer, within share (the slots this replica may hold at once).
// Holding at most share and refilling only below half of it batches the
// claims: one round trip serves many calls.
func (b *Budget) wantLocked(share int) int {
	now := time.Now()
	b.purgeLocked(now)
	if b.sched.limit.Unlimited() {
		return 0
	}
	unserved := len(b.waiters) - len(b.slots)
	if unserved <= 0 {
		return 0
	}
	heldNow := len(b.slots) + b.sleeping
	if heldNow > share/2 {
		return 0
	}
	r := b.rate.value(now)
	ahead := int(math.Ceil(r * prefetch.Seconds()))
	// The slots of a claim are an interval apart, while callers slower
	// than the budget (the rate below what the share allows) come 1/r
	// apart: the i-th slot beyond the waiters is reached about
	// i×(1/r − interval) late, and one later than the grace is wasted,
	// taken from the fleet's schedule for nothing. Only what the rate
	// reaches within half the grace (the rest is the callers' own
	// lateness). Callers held back by the budget wait for their slots, and
	// take them on time.
	if r > 0 && r < 0.9*float64(share)/horizon.Seconds() {
		if gap := time.Duration(float64(time.Second)/r) - b.sched.interval; gap > 0 {
			ahead = min(ahead, int(b.sched.grace/2/gap))
		}
	}
	return max(1, min(unserved+ahead, share-heldNow, maxBatch))
}

const (
	// prefetch is how much of the recent rate a claim adds beyond the
	// waiters, so that a steady stream of calls needs few claims.
	prefetch = 250 * time.Millisecond
	// maxBatch bounds one claim, for limits so high that the horizon holds
	// more slots than any replica could use.
	maxBatch = 256
)

// claimLocalLocked takes k slots of the local GCRA, within the horizon.
func (b *Budget) claimLocalLocked(k int) (at []time.Time, retry time.Time) {
	now := time.Now()
	start := latest(b.tat, now, b.pause)
	ahead := now.Add(horizon).Sub(start)
	if ahead < 0 {
		return nil, start.Add(-horizon)
	}
	k = min(k, int(ahead/b.sched.interval)+1) // slots within the horizon
	at = make([]time.Time, k)
	for i := range at {
		at[i] = start.Add(time.Duration(i) * b.sched.interval)
	}
	b.tat = start.Add(time.Duration(k) * b.sched.interval)
	return at, time.Time{}
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// Close stops the budget: Wait returns ErrClosed, and a fleet budget
// leaves the fleet (its heartbeat is deleted, so the others count one
// member less at once). Close waits at most about a second for JetStream.
func (b *Budget) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.done)
	b.cancel()
	b.wg.Wait()
	if b.fleet != nil {
		b.fleet.leave()
	}
}

// Stats is what a budget has done, for metrics and status.
type Stats struct {
	Limit Limit
	// FleetLimit is the limit the fleet runs at, as this replica sees it
	// (zero in process scope): Limit, or a stricter one another replica
	// sharing the key is configured with, which every replica then spaces
	// its claims by. One that differs from Limit means replicas are
	// configured differently (a warning is logged).
	FleetLimit Limit
	Mode       Mode
	// Rate is the calls per second the schedule lets the whole fleet make
	// (the process alone in process scope): the limit less the safety
	// margin and the fallback reserve.
	Rate float64
	// Granted counts the calls Wait let through; Waits those that waited
	// (more than 1 ms) and WaitTime how long in all.
	Granted  uint64
	Waits    uint64
	WaitTime time.Duration
	// Wasted counts claimed slots that went unused: too late to use, or
	// withdrawn by a pause.
	Wasted uint64
	// Claims counts the updates of the shared state that claimed slots (one
	// JetStream round trip each), Conflicts those refused because another
	// replica updated first.
	Claims    uint64
	Conflicts uint64
	// Pauses counts the pauses applied (a 429 here or on another replica);
	// PausedUntil is the end of the current one, zero when none.
	Pauses      uint64
	PausedUntil time.Time
	// Members is the number of replicas sharing the key's budget (1 in
	// process scope).
	Members int
	// ClockUncertainty bounds the error of this replica's estimate of the
	// JetStream server's clock, which the shared schedule runs on.
	ClockUncertainty time.Duration
}

// PausedUntil is when the pause a 429 set ends; zero when there is none.
// It is Stats().PausedUntil without the rest of the stats.
func (b *Budget) PausedUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pausedLocked()
}

// pausedLocked is PausedUntil with b.mu held.
func (b *Budget) pausedLocked() time.Time {
	if b.pause.After(time.Now()) {
		return b.pause
	}
	return time.Time{}
}

// Stats returns a snapshot.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Stats{
		Limit: b.sched.limit, Mode: ModeProcess, Rate: b.sched.rate(),
		Granted: b.st.granted, Waits: b.st.waits, WaitTime: b.st.waitTime, Wasted: b.st.wasted,
		Pauses: b.st.pauses, Members: 1, PausedUntil: b.pausedLocked(),
	}
	if b.fleet != nil {
		b.fleet.statsLocked(&s)
	}
	return s
}

// ewma is an exponentially decaying rate, in events per second.
type ewma struct {
	v  float64
	at time.Time
}

const rateTau = time.Second

func (e *ewma) value(now time.Time) float64 {
	if e.at.IsZero() {
		return 0
	}
	return e.v * math.Exp(-now.Sub(e.at).Seconds()/rateTau.Seconds())
}

func (e *ewma) add(now time.Time) {
	e.v = e.value(now) + 1/rateTau.Seconds()
	e.at = now
}
