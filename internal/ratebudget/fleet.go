package ratebudget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
)

// Timings of the fleet protocol.
const (
	// heartbeatEvery is how often a member writes its heartbeat: its demand
	// for the others' fair shares, and a clock sample for itself.
	heartbeatEvery = 500 * time.Millisecond
	// memberTTL: a member whose last heartbeat is older is not counted (in
	// Stats.Members, nor in the fair shares).
	memberTTL = 2 * time.Second
	// fallbackLease: a member that cannot reach JetStream spends the
	// reserved trickle for at most this long after its last success; a new
	// member gets a trickle share only this long (plus leaseMargin) after
	// it joined, and members are counted for the trickle shares this long
	// (plus leaseMargin) after their last heartbeat. Together these keep
	// the trickles of all members within the reserve (docs/rate-limit.md).
	fallbackLease = 30 * time.Second
	leaseMargin   = 3 * time.Second
	// opTimeout bounds each JetStream operation; an operation that times
	// out or fails puts the budget in fallback until one succeeds.
	opTimeout = time.Second
	// echoKeep bounds how long an own write waits for its echo.
	echoKeep = 10 * time.Second
	// healEvery is how often at most a budget recreates its missing
	// bucket, as the worker heals its other streams.
	healEvery = 2 * time.Second
	// readTolerance is what a pause or TAT read from the shared state may
	// exceed its bound by: two replicas' estimates of the server's clock
	// differ by their bounds' widths, milliseconds.
	readTolerance = time.Second
	// maxMembers bounds the members a replica tracks per key (itself
	// included): far more replicas than one key's limit could feed, and
	// few enough that a writer flooding the bucket with member keys
	// cannot make every claim walk an unbounded map.
	maxMembers = 256
	// maxEarly bounds the entries the watcher keeps for an own write whose
	// answer has not come back (see observe).
	maxEarly = 64
)

// state is the shared schedule of one key, in the server's clock
// (Unix nanoseconds).
type state struct {
	// TAT is the next free slot (GCRA's theoretical arrival time); 0 for a
	// state that must start afresh.
	TAT int64 `json:"tat"`
	// PauseUntil: no slot before it (a 429's Retry-After).
	PauseUntil int64 `json:"pause_until,omitempty"`
	// Granted counts the slots claimed since the state was created.
	Granted uint64 `json:"granted"`
	// Limit and Interval are the configured ones of the replica that
	// wrote last: for status, and so that a replica configured with a
	// faster limit spaces its claims by the slower interval (see
	// intervalLocked).
	Limit    string `json:"limit"`
	Interval int64  `json:"interval_ns"`
}

// heartbeat is a member's entry.
type heartbeat struct {
	Rate float64 `json:"rate"` // calls per second granted recently
	Busy bool    `json:"busy"` // it has callers waiting, or a recent rate
	Mode Mode    `json:"mode"`
	// Limit and Interval are the member's configured ones: the others
	// space their claims by the slowest (intervalLocked), even while it
	// does not claim.
	Limit    string `json:"limit,omitempty"`
	Interval int64  `json:"interval_ns,omitempty"`
}

// echoed is an entry as the watcher brought it.
type echoed struct {
	created int64 // server time it was stored
	recv    time.Time
}

// member is what a replica knows of another (or of itself).
type member struct {
	seen int64 // server time of its last heartbeat
	heartbeat
}

// fleet is the JetStream side of a fleet budget. Its fields are guarded by
// the budget's mutex.
type fleet struct {
	b  *Budget
	kv jetstream.KeyValue
	// now reads this process's clock: time.Now, whose readings carry Go's
	// monotonic clock. Only differences of readings are used, so a step
	// of the wall clock moves nothing; tests step the wall reading.
	now    func() time.Time
	skew   func() time.Duration // see options.skew
	fp, id string
	lease  time.Duration // fallbackLease and leaseMargin, from the options
	margin time.Duration
	log    zerolog.Logger
	// recreate creates the bucket again (WithRecreate); nil: it cannot.
	recreate func(context.Context) error
	healing  bool      // a recreate runs
	healed   time.Time // local: when the last recreate started

	clock   clockSync
	echo    map[uint64]time.Time // own writes' revisions → when sent, until their echo arrives
	early   map[uint64]echoed    // entries the watcher brought before their write returned
	synced  bool
	state   state
	rev     uint64 // revision of state when exists
	floor   int64  // the latest TAT seen since the state last started afresh
	garbage bool   // a state out of bounds was logged
	// warnedLimit is the slower limit another replica is configured with that
	// was last logged ("" while none is in force): logged once per change.
	warnedLimit string
	// stricterAtOK: a member seen within the lease at the last success
	// was configured with a slower limit; the reserve, sized for this
	// replica's own limit, is then not there to trickle from.
	stricterAtOK bool
	known        bool // state, rev and exists reflect the bucket as last seen
	exists       bool
	members      map[string]member
	crowded      bool      // members ignored at maxMembers were logged
	crowdedAt    time.Time // local: when a member was last ignored at maxMembers

	failing     bool
	failures    int
	retryAt     time.Time // local: next JetStream attempt while failing
	lastOK      time.Time // local: last successful JetStream operation
	joined      time.Time // local: first successful heartbeat
	longMembers int       // members counted for the trickle share, at lastOK
	// watched (local) is when the latest own write the watcher brought
	// back was sent: the watcher had delivered every entry stored before.
	watched     time.Time
	trickleNext time.Time // local: earliest next trickle slot

	// stepped (local) is when the server's clock was last seen stepping
	// forward, or back by more than the horizon (stepBack): see
	// restartLocked.
	stepped      time.Time
	stepBack     bool
	pauseServer  int64     // end of the pause in force (server clock)
	pendingPause int64     // a pause still to write into the shared state
	unsynced     time.Time // local: end of a pause reported before the first clock sample
	rtt          time.Duration
	claims       uint64
	conflicts    uint64
}

// New returns the budget of one Clerk key shared through kv (a bucket made
// with BucketConfig) by every replica that names the same fingerprint
// (Fingerprint of the key) — scope "fleet". It does no I/O: it joins the
// fleet in the background, and Wait blocks until it has (a budget that
// never reaches JetStream never grants). Close it to leave the fleet.
func New(kv jetstream.KeyValue, fingerprint string, limit Limit, opts ...Option) (*Budget, error) {
	if kv == nil {
		return nil, errors.New("rate budget: no key-value bucket")
	}
	if err := CheckFingerprint(fingerprint); err != nil {
		return nil, err
	}
	if err := CheckFleetLimit(limit); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrInvalidLimit, limit, err)
	}
	o := buildOptions(opts)
	if o.reserve < 0 {
		o.reserve = fleetReserve(limit)
	}
	b := newBudget(newSchedule(limit, o.reserve), o)
	b.fleet = &fleet{
		b: b, kv: kv, now: o.now, skew: o.skew, fp: fingerprint, id: nuid.Next(), lease: o.lease, margin: o.leaseMargin, log: o.log, recreate: o.recreate,
		echo: map[uint64]time.Time{}, early: map[uint64]echoed{}, members: map[string]member{},
	}
	b.start()
	b.wg.Add(2)
	go b.fleet.heartbeatLoop()
	go b.fleet.watchLoop()
	return b, nil
}

// claim claims slots from the shared state for the waiters that lack
// them, and writes any pending pause; it returns when to try again (zero:
// when signalled).
func (f *fleet) claim() time.Time {
	b := f.b
	for {
		b.mu.Lock()
		k := b.wantLocked(f.shareLocked())
		pausing := f.pendingPause > f.state.PauseUntil || (f.pendingPause != 0 && !f.known)
		if k == 0 && !pausing {
			b.mu.Unlock()
			return time.Time{}
		}
		// In fallback, the trickle first: JetStream may keep failing for a
		// while, each attempt taking up to opTimeout.
		now := f.now()
		tr, trickle := f.trickleLocked(now, k)
		b.addSlotsLocked(tr)
		if f.failing && now.Before(f.retryAt) {
			retry := earliest(f.retryAt, trickle)
			b.mu.Unlock()
			return retry
		}
		if !f.synced {
			b.mu.Unlock()
			return now.Add(10 * time.Millisecond) // the first heartbeat's echo syncs the clock
		}
		if !f.known {
			b.mu.Unlock()
			if !f.refresh() {
				return earliest(f.retryTime(), trickle)
			}
			continue
		}
		// The server's clock now, carried forward from the clock samples
		// on the monotonic clock (never from this machine's wall clock).
		lo, hi := f.clock.bounds(now)
		// Spaced by the slowest interval the fleet is configured with:
		// spacing by its own would let a replica given a faster limit
		// run the whole key at that limit.
		interval, fleetLimit, stricter := f.intervalLocked(now, memberTTL)
		f.warnStricterLocked(fleetLimit, interval, stricter)
		T := int64(interval)
		st := f.state
		fresh := st.TAT == 0
		restart := fresh || f.restartLocked(now)
		switch {
		case restart && f.stepBack:
			// The state's TAT lies the step ahead on the new clock: waited
			// out, it would stall the fleet for the step. No slot is held
			// past the horizon, on any clock, so one interval after it is
			// as safe as for a lost state, and the floor comes down with it.
			st.TAT = hi + int64(horizon) + T
			f.floor = st.TAT
		case restart:
			// A new (or lost) state, or one written on the server's clock
			// before it stepped forward: slots claimed before may still lie
			// up to the horizon ahead. Start one interval after them, and
			// write that first.
			st.TAT = max(st.TAT, hi+int64(horizon)+T)
		}
		st.PauseUntil = max(st.PauseUntil, f.pendingPause)
		lead := min(2*f.rtt+time.Millisecond, 50*time.Millisecond)
		start := max(st.TAT, hi+int64(lead), st.PauseUntil)
		// Only slots within the horizon: what a replica holds unused when
		// it dies is back for the others that soon.
		ahead := lo + int64(horizon) - start
		switch {
		case b.sched.limit.Unlimited() || ahead < 0:
			k = 0
		case int64(k) > ahead/T+1:
			k = int(ahead/T + 1)
		}
		if k == 0 && !pausing && !restart {
			b.mu.Unlock()
			return f.toLocal(start-int64(horizon), now, lo)
		}
		next := st
		next.TAT = max(st.TAT, st.PauseUntil)
		if k > 0 {
			next.TAT = start + int64(k)*T
			next.Granted += uint64(k)
		}
		// Its own limit, not the fleet's: a slower one recorded here would
		// outlive the replicas configured with it.
		next.Limit, next.Interval = b.sched.limit.String(), int64(b.sched.interval)
		if next.TAT > max(st.TAT, st.PauseUntil, hi+int64(horizon)+T) {
			// Cannot be, by the arithmetic above; checked all the same: a
			// TAT written too far ahead stalls every replica until then.
			b.mu.Unlock()
			return now.Add(time.Duration(T))
		}
		rev, exists, stepped := f.rev, f.exists, f.stepped
		b.mu.Unlock()

		nrev, err := f.write(next, rev, exists)
		b.mu.Lock()
		switch {
		case err == nil:
			if nrev >= f.rev { // equal: its echo came first, and was judged without the claim's context
				f.state, f.rev, f.exists = next, nrev, true
			}
			if fresh {
				f.floor = next.TAT // started afresh: what was seen before is gone
			}
			if restart && f.stepped == stepped {
				f.stepped, f.stepBack = time.Time{}, false // every later claim builds on this TAT
			}
			f.floor = max(f.floor, next.TAT)
			if f.pendingPause <= next.PauseUntil {
				f.pendingPause = 0
			}
			if k > 0 {
				f.claims++
				now := f.now()
				lo, _ := f.clock.bounds(now)
				slots := make([]time.Time, k)
				for i := range slots {
					slots[i] = f.toLocal(start+int64(i)*T, now, lo)
				}
				b.addSlotsLocked(slots)
			}
			b.mu.Unlock()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
			f.conflicts++
			if f.rev == rev { // the watcher has not brought the newer state yet
				f.known = false
			}
			b.mu.Unlock()
		default:
			b.mu.Unlock()
			if b.ctx.Err() != nil {
				return time.Time{}
			}
			return earliest(f.retryTime(), trickle)
		}
	}
}

// restartLocked reports whether the next claim must start the schedule
// afresh because the server's clock stepped (a new stream leader whose
// clock is ahead, or far behind: see claim for a step back). The shared TAT may still have been written on the
// old clock, and slots held anywhere were placed on it, up to the horizon
// ahead: read on the new clock, that TAT lies the step too early, among
// them. One claim past the horizon on the new clock is enough: later claims
// build on its TAT, and a replica still on the old clock reads it late,
// never early. Past clockKeep every replica has taken samples on the new
// clock (one a heartbeat) and the slots held on the old one have passed.
// A step back does not pass so: the TAT written on the old clock lies the
// step ahead until the new clock reaches it, up to the max pause, however
// long the fleet stayed idle since; starting afresh is as safe later.
func (f *fleet) restartLocked(now time.Time) bool {
	return !f.stepped.IsZero() && (f.stepBack || now.Sub(f.stepped) < clockKeep)
}

// write stores the state: an update of revision rev, or a create.
func (f *fleet) write(st state, rev uint64, exists bool) (uint64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(f.b.ctx, opTimeout)
	defer cancel()
	t0 := f.now()
	var nrev uint64
	if exists {
		nrev, err = f.kv.Update(ctx, stateKey(f.fp), data, rev)
	} else {
		nrev, err = f.kv.Create(ctx, stateKey(f.fp), data)
	}
	f.b.mu.Lock()
	defer f.b.mu.Unlock()
	f.outcomeLocked(t0, nrev, err)
	return nrev, err
}

// refresh reads the shared state; false if JetStream failed.
func (f *fleet) refresh() bool {
	ctx, cancel := context.WithTimeout(f.b.ctx, opTimeout)
	defer cancel()
	t0 := f.now()
	e, err := f.kv.Get(ctx, stateKey(f.fp))
	f.b.mu.Lock()
	defer f.b.mu.Unlock()
	switch {
	case err == nil:
		f.outcomeLocked(t0, 0, nil)
		f.exists, f.rev, f.known = true, e.Revision(), true
		var st state // unreadable: start afresh over it
		if json.Unmarshal(e.Value(), &st) != nil {
			st = state{}
		}
		f.adoptLocked(st)
		return true
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		f.outcomeLocked(t0, 0, nil)
		f.exists, f.rev, f.known, f.state, f.floor = false, 0, true, state{}, 0
		return true
	}
	f.outcomeLocked(t0, 0, err)
	return false
}

// outcomeLocked records how a JetStream operation sent at t0 went: a
// success (a conflict is one: JetStream answered) ends a fallback, a
// failure starts or prolongs one.
func (f *fleet) outcomeLocked(t0 time.Time, rev uint64, err error) {
	now := f.now()
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		if f.b.ctx.Err() != nil {
			return
		}
		f.failures++
		f.retryAt = now.Add(min(250*time.Millisecond<<min(f.failures-1, 3), 2*time.Second))
		if bucketMissing(err) {
			f.healLocked(now)
		}
		if !f.failing {
			f.failing = true
			f.known = false // whatever happened meanwhile, read it again
			f.b.signal()
		}
		return
	}
	d := now.Sub(t0)
	if f.rtt == 0 {
		f.rtt = d
	} else {
		f.rtt = (7*f.rtt + d) / 8
	}
	if rev != 0 {
		if e, ok := f.early[rev]; ok {
			delete(f.early, rev)
			f.sampleLocked(e, t0)
			f.watched = latest(f.watched, t0)
		} else {
			f.echo[rev] = t0
		}
		maps.DeleteFunc(f.echo, func(_ uint64, t time.Time) bool { return now.Sub(t) > echoKeep })
		maps.DeleteFunc(f.early, func(_ uint64, e echoed) bool { return now.Sub(e.recv) > echoKeep })
	}
	if f.failing {
		f.failing = false
		f.b.signal()
	}
	f.failures = 0
	f.lastOK = now
	f.longMembers = f.countLocked(now, f.lease+f.margin, false)
	_, _, f.stricterAtOK = f.intervalLocked(now, f.lease+f.margin)
}

// bucketMissing reports whether a JetStream operation failed because the
// bucket's stream does not exist (a key-value operation on a deleted
// bucket finds nobody to answer).
func bucketMissing(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound)
}

// healLocked recreates the missing bucket in the background, at most once
// every healEvery: the state starts afresh in it (a lost state), the
// heartbeats and the watcher follow.
func (f *fleet) healLocked(now time.Time) {
	if f.recreate == nil || f.healing || now.Sub(f.healed) < healEvery {
		return
	}
	f.healing, f.healed = true, now
	b := f.b
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		err := f.recreate(b.ctx)
		b.mu.Lock()
		f.healing = false
		if err == nil {
			f.retryAt, f.known = f.now(), false // try again at once, reading what is there
		} else if b.ctx.Err() == nil {
			f.log.Error().Str("rate_budget", f.fp).Err(err).Msg("the rate-budget bucket is missing and could not be created again; retrying")
		}
		b.mu.Unlock()
		b.signal()
	}()
}

func (f *fleet) retryTime() time.Time {
	f.b.mu.Lock()
	defer f.b.mu.Unlock()
	return f.retryAt
}

// trickleLocked gives a member in fallback its share of the reserve: one
// slot at a time, (span+interval)/share apart (the same lateness tolerance
// as the shared schedule's), while its lease holds and if it has been a
// member long enough (see fallbackLease). It returns the slot, if any, and
// when the next could come.
func (f *fleet) trickleLocked(now time.Time, want int) ([]time.Time, time.Time) {
	b := f.b
	if !f.failing || want == 0 || b.sched.reserve == 0 || f.joined.IsZero() || f.stricterAtOK || f.blindLocked() ||
		// Members ignored at maxMembers are missing from longMembers: a
		// share of the reserve computed without them could overspend it.
		(!f.crowdedAt.IsZero() && now.Sub(f.crowdedAt) < f.lease+f.margin) ||
		now.Sub(f.joined) < f.lease+f.margin || now.Sub(f.lastOK) > f.lease {
		return nil, time.Time{}
	}
	share := b.sched.reserve / max(f.longMembers, 1)
	if share == 0 {
		return nil, time.Time{}
	}
	every := ceilDiv(b.sched.span+b.sched.interval, share)
	at := latest(f.trickleNext, now, b.pause)
	if at.Sub(now) > horizon {
		return nil, at.Add(-horizon)
	}
	f.trickleNext = at.Add(every)
	return []time.Time{at}, f.trickleNext.Add(-horizon)
}

// blindLocked reports whether the watcher was behind at the last success
// by more than the lease's margin: members that joined meanwhile are
// missing from longMembers, and could trickle beside this one. Within the
// margin, such a member cannot trickle before this one's lease runs out
// (docs/rate-limit.md).
func (f *fleet) blindLocked() bool { return f.watched.Before(f.lastOK.Add(-f.margin)) }

// shareLocked is how many slots this member may hold at once: the
// horizon's slots divided among the busy members, so that busy members
// claim in turn and get about even shares, while a member alone at work
// may hold them all (work-conserving).
func (f *fleet) shareLocked() int {
	return max(1, f.b.sched.perHorizon()/f.countLocked(f.now(), memberTTL, true))
}

// countLocked counts the members whose heartbeat is younger than ttl,
// this one included; only the busy others if busyOnly.
func (f *fleet) countLocked(now time.Time, ttl time.Duration, busyOnly bool) int {
	n := 1
	f.othersLocked(now, func(m member) {
		if (m.Busy || !busyOnly) && f.freshLocked(m, now, ttl) {
			n++
		}
	})
	return n
}

// othersLocked calls fn for every other member, and forgets those whose
// heartbeat is older than any count looks back (the lease and its
// margin): an expired heartbeat (the bucket's TTL) sends the watcher no
// delete, so a killed replica would otherwise stay in the map for good,
// walked on every claim. Nothing is forgotten before the first clock
// sample, without which no heartbeat's age is known.
func (f *fleet) othersLocked(now time.Time, fn func(member)) {
	for id, m := range f.members {
		switch {
		case id == f.id:
		case f.synced && !f.freshLocked(m, now, f.lease+f.margin):
			delete(f.members, id)
		default:
			fn(m)
		}
	}
}

// intervalLocked is the interval this replica spaces its claims by: its
// own, or a longer one another replica is configured with, as its
// heartbeat (younger than ttl) or its last write of the state says. A
// fleet whose replicas were given different limits for the same key then
// runs at the strictest one, not at the fastest. An interval beyond the
// max pause is no sane limit's (a foreign writer, garbage) and is ignored,
// as a pause beyond it is: it cannot stall the fleet. It also returns the
// limit the interval is from, and whether that is another's.
func (f *fleet) intervalLocked(now time.Time, ttl time.Duration) (time.Duration, string, bool) {
	T, limit, stricter := f.b.sched.interval, "", false
	if f.b.sched.limit.Unlimited() {
		return T, limit, false
	}
	consider := func(interval int64, l string) {
		if d := time.Duration(interval); d > T && d <= f.b.maxPause {
			T, limit, stricter = d, l, true
		}
	}
	consider(f.state.Interval, f.state.Limit)
	f.othersLocked(now, func(m member) {
		if f.freshLocked(m, now, ttl) {
			consider(m.Interval, m.Limit)
		}
	})
	return T, limit, stricter
}

// warnStricterLocked logs, once per change, that another replica is
// configured with a slower limit than this one, which the fleet then runs
// at: the operator meant one limit for the key. Only the limit as parsed
// is logged: the field is another writer's.
func (f *fleet) warnStricterLocked(fleetLimit string, interval time.Duration, stricter bool) {
	if !stricter {
		f.warnedLimit = ""
		return
	}
	name := "unreadable"
	if l, err := ParseLimit(fleetLimit); err == nil {
		name = l.String()
	}
	if name == f.warnedLimit {
		return
	}
	f.warnedLimit = name
	f.log.Warn().Str("rate_budget", f.fp).Str("limit", f.b.sched.limit.String()).Str("fleet_limit", name).
		Dur("fleet_interval", interval).
		Msg("another replica sharing this Clerk key is configured with a stricter rate limit: the fleet runs at the stricter one until every replica is configured alike")
}

func (f *fleet) freshLocked(m member, now time.Time, ttl time.Duration) bool {
	lo, _ := f.clock.bounds(now)
	return m.seen >= lo-int64(ttl)
}

// toLocal is the local instant at which the server's clock has surely
// reached server time s, given lo, the lower bound of the server's clock
// at the local instant now: a slot late rather than early.
func (f *fleet) toLocal(s int64, now time.Time, lo int64) time.Time {
	return now.Add(time.Duration(s - lo))
}

// throttled applies a pause here at once and writes it into the shared
// state for the others.
func (f *fleet) throttled(d time.Duration) {
	b := f.b
	b.mu.Lock()
	defer b.mu.Unlock()
	now := f.now()
	if !f.synced {
		// No server time yet: pause here, and write it once there is.
		f.unsynced = latest(f.unsynced, now.Add(d))
		b.pauseLocked(f.unsynced)
		return
	}
	_, hi := f.clock.bounds(now)
	until := hi + int64(d)
	f.applyPauseLocked(until)
	f.pendingPause = max(f.pendingPause, until)
	b.signal()
}

// adoptLocked takes in st, the shared state as read from the bucket
// (unjudged until the first clock sample). What a member following the
// protocol writes lies within bounds: a pause at most the max pause past
// the server's now, a TAT at most the horizon, the max pause and an
// interval past it (every write moves it no further: claims, pauses,
// fresh starts). A state beyond them would stall every replica until
// then, and deleting it would not help (a pause here only moves forward):
// it is garbage, logged once, and the schedule starts afresh over it. A TAT
// that went back, below one seen since the state last started afresh, may
// lie below slots others hold: the schedule starts afresh too, past the
// horizon, where no slot is held.
func (f *fleet) adoptLocked(st state) {
	if prev := f.state.TAT; prev != 0 {
		// A claim waiting for the TAT it last saw sleeps until then: when
		// the TAT comes down (started afresh after a step back, or to be
		// started afresh here), it would wait out the difference.
		defer func() {
			if f.state.TAT < prev {
				f.b.signal()
			}
		}()
	}
	f.state = st
	if !f.synced {
		return
	}
	_, hi := f.clock.bounds(f.now())
	slack := int64(f.b.maxPause + readTolerance)
	if st.PauseUntil > hi+slack || st.TAT > hi+slack+int64(horizon+f.b.sched.interval) {
		if !f.garbage {
			f.garbage = true
			ev := f.log.Error().Str("rate_budget", f.fp)
			if st.PauseUntil > hi+slack {
				ev = ev.Dur("pause_ahead", time.Duration(st.PauseUntil-hi))
			}
			if st.TAT > hi {
				ev = ev.Dur("tat_ahead", time.Duration(st.TAT-hi))
			}
			ev.Msg("the shared rate-budget state lies further ahead than any replica writes (a replica with a broken clock or a foreign writer?): starting afresh over it")
		}
		f.state = state{Granted: st.Granted}
		return
	}
	if st.TAT != 0 && st.TAT < f.floor {
		f.state.TAT = 0
		return
	}
	f.floor = max(f.floor, st.TAT)
	f.applyPauseLocked(st.PauseUntil)
}

// applyPauseLocked holds every call until server time until (a pause
// already over, read from an old state, changes nothing). Before the
// first clock sample it waits for one (see sampleLocked).
func (f *fleet) applyPauseLocked(until int64) {
	if until <= f.pauseServer || !f.synced {
		return
	}
	f.pauseServer = until
	now := f.now()
	lo, _ := f.clock.bounds(now)
	if local := f.toLocal(until, now, lo); local.After(now) {
		f.b.pauseLocked(local)
	}
}

// heartbeatLoop writes this member's heartbeat every heartbeatEvery.
func (f *fleet) heartbeatLoop() {
	defer f.b.wg.Done()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		f.beat()
		select {
		case <-t.C:
		case <-f.b.done:
			return
		}
	}
}

func (f *fleet) beat() {
	b := f.b
	b.mu.Lock()
	now := f.now()
	hb := heartbeat{Rate: b.rate.value(now), Mode: f.modeLocked(), Limit: b.sched.limit.String(), Interval: int64(b.sched.interval)}
	hb.Busy = len(b.waiters) > 0 || hb.Rate >= 1
	b.mu.Unlock()
	data, _ := json.Marshal(hb)
	ctx, cancel := context.WithTimeout(b.ctx, opTimeout)
	defer cancel()
	rev, err := f.kv.Put(ctx, memberKey(f.fp, f.id), data)
	b.mu.Lock()
	f.outcomeLocked(now, rev, err)
	if err == nil && f.joined.IsZero() {
		f.joined = now
	}
	stale := err == nil && f.clock.age(f.now()) > clockStale
	b.mu.Unlock()
	if stale {
		f.sampleByGet(ctx, rev, now)
	}
}

// clockStale: when the watcher has brought no clock sample for this long
// (it is down, or this budget just started), a heartbeat takes one itself.
const clockStale = 2 * heartbeatEvery

// sampleByGet reads back the heartbeat of revision rev, sent at local time
// sent, for its server timestamp: a clock sample that does not need the
// watcher (one more round trip, only when the watcher brought none).
func (f *fleet) sampleByGet(ctx context.Context, rev uint64, sent time.Time) {
	e, err := f.kv.Get(ctx, memberKey(f.fp, f.id))
	recv := f.now()
	if err != nil || e.Revision() != rev {
		return
	}
	f.b.mu.Lock()
	defer f.b.mu.Unlock()
	delete(f.echo, rev)
	f.sampleLocked(echoed{created: f.stamp(e), recv: recv}, sent)
}

// stamp is when the server stored e, on its clock (Unix nanoseconds).
func (f *fleet) stamp(e jetstream.KeyValueEntry) int64 {
	t := e.Created().UnixNano()
	if f.skew != nil {
		t += int64(f.skew())
	}
	return t
}

func (f *fleet) modeLocked() Mode {
	if f.failing {
		return ModeFallback
	}
	return ModeFleet
}

// watchLoop follows the key's entries: the state (others' claims, pauses)
// and the members' heartbeats (own ones are clock samples).
func (f *fleet) watchLoop() {
	defer f.b.wg.Done()
	backoff := 100 * time.Millisecond
	for f.b.ctx.Err() == nil {
		w, err := f.kv.Watch(f.b.ctx, watchFilter(f.fp))
		if err != nil && bucketMissing(err) {
			f.b.mu.Lock()
			f.healLocked(f.now())
			f.b.mu.Unlock()
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			stop := context.AfterFunc(f.b.ctx, func() { _ = w.Stop() })
			for e := range w.Updates() {
				if e != nil {
					f.observe(e, f.now())
				}
			}
			stop()
		}
		select {
		case <-time.After(backoff):
		case <-f.b.done:
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// observe takes in one entry the watcher delivered at recv.
func (f *fleet) observe(e jetstream.KeyValueEntry, recv time.Time) {
	b := f.b
	b.mu.Lock()
	defer b.mu.Unlock()
	created := f.stamp(e)
	key := e.Key()
	if sent, own := f.echo[e.Revision()]; own {
		delete(f.echo, e.Revision())
		f.sampleLocked(echoed{created: created, recv: recv}, sent)
		f.watched = latest(f.watched, sent)
	} else if key == stateKey(f.fp) || key == memberKey(f.fp, f.id) {
		// Possibly an own write whose answer has not been handled yet. The
		// others' claims land here too, and only an own successful write
		// forgets old ones: while every own write fails they would pile up.
		// An own write's answer comes within opTimeout, long before maxEarly
		// newer entries push its echo out.
		if len(f.early) >= maxEarly {
			delete(f.early, slices.Min(slices.Collect(maps.Keys(f.early)))) // the oldest
		}
		f.early[e.Revision()] = echoed{created: created, recv: recv}
	}
	put := e.Operation() == jetstream.KeyValuePut
	switch {
	case key == stateKey(f.fp):
		if e.Revision() <= f.rev && f.exists {
			return
		}
		if !put {
			f.exists, f.rev, f.state, f.known, f.floor = false, 0, state{}, true, 0
			return
		}
		var st state
		if json.Unmarshal(e.Value(), &st) != nil {
			return
		}
		f.rev, f.exists, f.known = e.Revision(), true, true
		f.adoptLocked(st)
	case strings.HasPrefix(key, memberPrefix(f.fp)):
		id := strings.TrimPrefix(key, memberPrefix(f.fp))
		var hb heartbeat
		if !put || json.Unmarshal(e.Value(), &hb) != nil {
			delete(f.members, id)
			return
		}
		if _, ok := f.members[id]; !ok && len(f.members) >= maxMembers {
			f.othersLocked(f.now(), func(member) {}) // room left by the dead?
			if len(f.members) >= maxMembers {
				f.crowdedLocked()
				return
			}
		}
		f.members[id] = member{seen: created, heartbeat: hb}
	}
}

// crowdedLocked ignores a new member at maxMembers: the fair shares
// count fewer members than there are (less fair, never unsafe), and no
// reserve is trickled while it lasts (see trickleLocked). Logged once.
func (f *fleet) crowdedLocked() {
	f.crowdedAt = f.now()
	if f.crowded {
		return
	}
	f.crowded = true
	f.log.Warn().Str("rate_budget", f.fp).Int("max_members", maxMembers).
		Msg("more members share this rate budget than a replica tracks (foreign entries in the bucket?): the others are ignored")
}

// sampleLocked takes a clock sample from an own write sent at local time
// sent: stored after it was sent and before its echo arrived, so the
// offset (server - local) lies between these bounds.
func (f *fleet) sampleLocked(e echoed, sent time.Time) {
	// A step back within the horizon is waited out: a restart would cost
	// the fleet as long.
	switch step := f.clock.add(e.created, sent, e.recv); {
	case step > 0:
		f.stepped, f.stepBack = e.recv, false
		f.log.Warn().Str("rate_budget", f.fp).Dur("step", step).
			Msg("the JetStream server's clock stepped forward (a new stream leader with another clock?): the shared schedule starts afresh past the slots held")
	case step < -horizon:
		f.stepped, f.stepBack = e.recv, true
		f.log.Warn().Str("rate_budget", f.fp).Dur("step", step).
			Msg("the JetStream server's clock stepped back (a new stream leader with another clock?): the shared schedule starts afresh past the slots held rather than wait the step out")
	}
	if !f.synced {
		f.synced = true
		// The state and pauses learnt before the server's time was known.
		f.adoptLocked(f.state)
		if now := f.now(); f.unsynced.After(now) {
			_, hi := f.clock.bounds(now)
			f.pendingPause = max(f.pendingPause, hi+int64(f.unsynced.Sub(now)))
		}
		f.b.signal()
	}
}

// leave deletes this member's heartbeat, so the others stop counting it.
func (f *fleet) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_ = f.kv.Delete(ctx, memberKey(f.fp, f.id))
}

func (f *fleet) statsLocked(s *Stats) {
	now := f.now()
	s.Mode = f.modeLocked()
	s.FleetLimit = f.b.sched.limit
	if _, l, stricter := f.intervalLocked(now, memberTTL); stricter {
		s.FleetLimit, _ = ParseLimit(l)
	}
	s.Claims, s.Conflicts = f.claims, f.conflicts
	s.Members = f.countLocked(now, memberTTL, false)
	if lo, hi := f.clock.bounds(now); f.synced {
		s.ClockUncertainty = time.Duration(hi-lo) / 2
	}
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
