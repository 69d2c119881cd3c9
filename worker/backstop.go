package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// maxSweep bounds how many sequences one sweep reads.
const maxSweep = 100_000

// listenMaxDeliveries subscribes to the consumer's MAX_DELIVERIES
// advisories, for the backstop; stop ends the subscription. Run subscribes
// before its first pull: JetStream sends the advisory once, at the pull
// that finds a job past its last delivery (a worker's first, after a crash
// loop). The given-up stream keeps each advisory too, for the workers that
// did not hear it (keptAdvisories). A subscription that fails leaves
// those and the sweep (logged), with a nil channel.
func (w *Worker) listenMaxDeliveries() (advisories <-chan *nats.Msg, stop func()) {
	subject := w.cfg.Topology.MaxDeliveriesSubject()
	ch := make(chan *nats.Msg, 1024)
	sub, err := w.nc.ChanSubscribe(subject, ch)
	if err != nil {
		w.cfg.Logger.Error().Err(err).Str("subject", subject).Msg("cannot listen for max-deliveries advisories; relying on the given-up stream and the sweep")
		return nil, func() {}
	}
	return ch, func() { _ = sub.Unsubscribe() }
}

// backstop dead-letters jobs that JetStream stopped delivering without any
// worker settling them: a worker that crashed on every delivery, or ack
// timeouts. On a work-queue stream such a job stays in the stream, never
// delivered again and never removed, so nothing would ever report it.
//
// Three paths find candidates: the MAX_DELIVERIES advisory (immediate, but
// only heard by workers running at that moment); the same advisory kept in
// the given-up stream, read at start and every SweepInterval (by workers
// that did not hear it: none ran, or all were reconnecting); and a sweep
// then for messages at or below the consumer's ack floor, or its last
// delivery when no job is pending (in a work queue, everything acked is
// gone, so whatever remains there ran out of deliveries). No signal is
// exact at the instant it is seen: an ack
// floor may pass a message a moment before the acked message is removed, and
// a worker may still be finishing the delivery that went over. So a
// candidate is rescued only after a grace period (the ack wait and a second),
// if it is still in the stream and not being worked on here: a worker that
// is alive has settled it, and so removed it, by then. A rescue copies the
// job to the dead-letter stream, class max_deliveries, and deletes it from
// the jobs stream only after the copy is confirmed. Workers racing to rescue
// the same job are harmless: the dead letter's Nats-Msg-Id is derived from
// the sequence and deduplicated.
//
// ch brings the MAX_DELIVERIES advisories (listenMaxDeliveries); nil
// when they cannot be heard.
func (w *Worker) backstop(ctx context.Context, ch <-chan *nats.Msg) {
	topo := w.cfg.Topology
	grace := topo.AckWait + time.Second
	candidates := map[uint64]candidate{}
	note := func(seq uint64, c candidate) {
		if _, ok := candidates[seq]; !ok {
			c.since = time.Now()
			candidates[seq] = c
		}
	}
	// denied are the jobs recorded that the jobs stream would not let go
	// (deny_delete), with the stream's creation: said once each, and not
	// rescued again at every sweep that finds them (a stream read, two
	// look-ups and a refused delete each, a minute, a worker) while that
	// stream lasts.
	denied := map[uint64]time.Time{}
	// heard are the advisories heard here, by job and time, until the
	// given-up stream's copy is read: that copy is then the heard one's to
	// delete, not another candidate judged without what the worker knew
	// of the consumer when it came (see rescue).
	heard := map[heardAdvisory]time.Time{}
	kept := &keptAdvisories{w: w}
	// forget drops a candidate, and the advisory kept for it: its job is
	// dead-lettered, or not one to rescue.
	forget := func(seq uint64) {
		if c := candidates[seq]; c.advisory > 0 {
			kept.drop(ctx, c.advisory, c.advisoryIn)
		}
		delete(candidates, seq)
	}
	noteStored := func() {
		for _, a := range kept.read(ctx) {
			k := heardAdvisory{a.jobSeq, a.told.UnixNano()}
			_, wasHeard := heard[k]
			delete(heard, k)
			if c, ok := candidates[a.jobSeq]; ok {
				if c.advisory == 0 {
					c.advisory, c.advisoryIn = a.seq, a.in
					candidates[a.jobSeq] = c
				} else if c.unheard && !wasHeard && a.told.After(c.told) {
					// A newer give-up, kept: the job is judged by it (an
					// older one may wait for the consumer to show the job
					// given up, see rescue); this copy is read again,
					// its job gone, once the older one is done.
					c.told, c.deliveries = a.told, a.deliveries
					candidates[a.jobSeq] = c
				} // else another advisory of the job: read again once this one is done
				continue
			}
			if wasHeard { // and done with
				kept.drop(ctx, a.seq, a.in)
				continue
			}
			note(a.jobSeq, candidate{deliveries: a.deliveries, told: a.told, consumer: time.Unix(0, w.consumerCreated.Load()), advisory: a.seq, advisoryIn: a.in, unheard: true})
		}
		for k, at := range heard {
			if time.Since(at) > 2*w.cfg.SweepInterval+grace { // its copy is gone, or cannot be read
				delete(heard, k)
			}
		}
	}
	noteSweep := func() {
		defer noteStored()
		seqs, created, consumer := w.sweep(ctx)
		if created.IsZero() {
			return
		}
		for seq, c := range denied {
			if !c.Equal(created) { // created again: another job at seq
				delete(denied, seq)
			}
		}
		for _, seq := range seqs {
			if _, ok := denied[seq]; ok {
				continue
			}
			note(seq, candidate{deliveries: topo.MaxDeliver + jobs.BackstopMargin, stream: created, consumer: consumer})
		}
	}
	noteSweep()
	sweep := time.NewTicker(w.cfg.SweepInterval)
	defer sweep.Stop()
	check := time.NewTicker(min(time.Second, grace/2))
	defer check.Stop()
	var said time.Time // when rescues that failed were last logged
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-ch:
			adv, err := advisoryOf(m.Header, m.Data)
			if errors.Is(err, errRelayedAdvisory) {
				w.cfg.Logger.Warn().Str("subject", m.Subject).Msg("a message with headers on the max-deliveries advisory subject: not JetStream's, ignored")
				continue
			}
			if err != nil {
				w.cfg.Logger.Warn().Str("subject", m.Subject).Msg("unreadable max-deliveries advisory; the given-up stream and the sweep will catch the job")
				continue
			}
			// The consumer the worker knows now is the one that gave up
			// (see rescue).
			c := candidate{deliveries: int(adv.Deliveries), told: adv.Time, consumer: time.Unix(0, w.consumerCreated.Load())}
			if old, ok := candidates[adv.StreamSeq]; ok && old.unheard {
				// A kept advisory no worker heard held the job's place,
				// waiting for the consumer to show it given up, which
				// an older job pending keeps it from showing: the job is
				// judged by the advisory heard, and the kept one still
				// deleted with it.
				c.since, c.advisory, c.advisoryIn = time.Now(), old.advisory, old.advisoryIn
				candidates[adv.StreamSeq] = c
			} else {
				note(adv.StreamSeq, c)
			}
			if len(heard) < maxHeard {
				heard[heardAdvisory{adv.StreamSeq, adv.Time.UnixNano()}] = time.Now()
			}
		case <-sweep.C:
			noteSweep()
		case <-check.C:
			var failed error
			var failedSeq uint64
			// The consumer as it is now, read once a check, when a job a
			// sweep found is due (stillGivenUp).
			var cons *jetstream.ConsumerInfo
			var consErr error
			consumer := func() (*jetstream.ConsumerInfo, error) {
				if cons == nil && consErr == nil {
					cons, consErr = w.consumerInfo(ctx)
				}
				return cons, consErr
			}
			for seq, c := range candidates {
				if time.Since(c.since) < grace || time.Now().Before(c.next) || w.inflight.any(func(d *delivery) bool { return d.seq() == seq }) {
					continue
				}
				if c.told.IsZero() {
					if keep, ok := stillGivenUp(seq, c, consumer); !ok {
						if !keep {
							forget(seq)
						} else {
							// Looked at again a grace later, not at
							// every check: a consumer read each.
							c.next = time.Now().Add(grace)
							candidates[seq] = c
						}
						continue
					}
				}
				err := w.rescue(ctx, seq, c)
				if errors.Is(err, errNotGivenUpYet) {
					c.next = time.Now().Add(grace)
					candidates[seq] = c
					continue
				}
				if denial := (*jobDeleteDenied)(nil); errors.As(err, &denial) {
					// No retry removes it, and the job is recorded: a
					// failure to log every 30 s at Error level, for ever,
					// would say the job was not dead-lettered.
					if _, ok := denied[seq]; !ok {
						w.cfg.Logger.Warn().Uint64("stream_seq", seq).Str("stream", topo.JobsStream).
							Msg("a job past max deliveries is recorded (dead-lettered), but stays in the jobs stream: it denies deletes " +
								"(deny_delete, set while the workers run); workers will not start on it until it is created again")
					}
					denied[seq] = denial.created
					forget(seq)
					continue
				}
				if err != nil {
					// A fault that lasts (a full dead-letter stream) is
					// tried less and less often.
					c.failures++
					c.next = time.Now().Add(min(time.Duration(c.failures)*time.Second, 30*time.Second))
					candidates[seq] = c
					failed, failedSeq = err, seq
					continue
				}
				forget(seq)
			}
			// Said at once, then every rescueLogEvery while it lasts: one
			// line for all the jobs kept, not a line a job (thousands, when
			// a full dead-letter stream stops every rescue).
			if failed != nil && time.Since(said) >= rescueLogEvery {
				said = time.Now()
				kept := 0
				for _, c := range candidates {
					if c.failures > 0 {
						kept++
					}
				}
				w.cfg.Logger.Error().Err(failed).Uint64("stream_seq", failedSeq).Int("jobs", kept).
					Msg("could not dead-letter a job past max deliveries; trying again")
			}
		}
	}
}

// rescueLogEvery: how often the backstop says that rescues keep failing.
const rescueLogEvery = 30 * time.Second

// maxHeard bounds the advisories a backstop remembers hearing: past it, a
// stored copy is judged as one not heard.
const maxHeard = 10_000

// heardAdvisory names an advisory: its job's sequence, and when the server
// sent it (UnixNano).
type heardAdvisory struct {
	jobSeq uint64
	told   int64
}

// candidate is a job that may have run out of deliveries.
type candidate struct {
	since      time.Time
	deliveries int
	failures   int       // rescues that failed
	next       time.Time // no rescue before then
	// Which jobs stream the job is of: a stream deleted and created again
	// numbers its jobs from 1 again, so a sequence alone would name
	// another job there, perhaps waiting for its first delivery. stream is
	// the creation of the stream the sweep found the job in; told, for an
	// advisory, when the server sent it (the stream is then one created
	// before). Both are the server's times.
	stream, told time.Time
	// consumer is the creation of the consumer whose state the sweep
	// that found the job read; for an advisory, the worker's latest read
	// of it when the advisory came, or when its kept copy was read
	// (time.Unix(0, 0) if none).
	consumer time.Time
	// advisory is the sequence of the job's advisory in the given-up
	// stream created at advisoryIn, deleted when the job is dead-lettered
	// or judged not given up; 0 if none was read.
	advisory   uint64
	advisoryIn time.Time
	// unheard: noted from the given-up stream, its advisory not heard by
	// this worker (see rescue).
	unheard bool
}

// stillGivenUp reports whether a job a sweep found (c) is still one the
// consumer gave up on, as consumer (read once a check) says now: the
// sweep's reason held when it read the consumer, not a grace later. A
// consumer deleted and created again since delivers the job afresh, and
// one reset (its API) to a sequence at or below the job delivers it again:
// by the end of the grace, the job may run on another worker, or wait a
// nak delay, and a rescue would dead-letter it as max_deliveries, never
// run. It is forgotten (keep false) when the consumer is another (the next
// sweep judges it by the new one), and kept for a later look when the
// consumer, the same, may deliver it now, or cannot be read.
func stillGivenUp(seq uint64, c candidate, consumer func() (*jetstream.ConsumerInfo, error)) (keep, ok bool) {
	ci, err := consumer()
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, false
	}
	if err != nil {
		return true, false
	}
	if !ci.Created.Equal(c.consumer) {
		return false, false
	}
	return true, givenUp(ci, seq)
}

// givenUp reports whether the consumer, as ci says, will not deliver the
// job at seq again, if it is still stored: it is at or below the ack floor,
// or, with no job pending, at or below the last delivery. A job JetStream
// gave up on leaves the consumer's pending list without moving its ack
// floor, which passes it only when a later job's ack finds nothing else
// pending. With nothing pending, every job the consumer delivered and the
// work queue still holds was given up on (or passed over by a filter): on a
// quiet system, and when every worker missed the advisory, nothing else
// would find it.
func givenUp(ci *jetstream.ConsumerInfo, seq uint64) bool {
	return seq <= ci.AckFloor.Stream || ci.NumAckPending == 0 && seq <= ci.Delivered.Stream
}

// consumerInfo reads the jobs consumer's state from the server.
func (w *Worker) consumerInfo(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	cons, err := w.js.Consumer(ctx, w.cfg.Topology.JobsStream, w.cfg.Topology.Consumer)
	if err != nil {
		return nil, err
	}
	return cons.CachedInfo(), nil
}

// ofStream reports whether c is a job of the jobs stream created at
// created: otherwise the stream it was noted in is gone, and its job with it.
func (c candidate) ofStream(created time.Time) bool {
	if !c.stream.IsZero() {
		return c.stream.Equal(created)
	}
	return c.told.IsZero() || !created.After(c.told)
}

// advisory is what the backstop reads of a MAX_DELIVERIES advisory.
type advisory struct {
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Time       time.Time `json:"timestamp"`
}

// errRelayedAdvisory: a message with headers on the advisory subject.
var errRelayedAdvisory = errors.New("a message with headers: not JetStream's advisory")

// advisoryOf reads a MAX_DELIVERIES advisory, heard or kept. JetStream
// sends its advisories without headers. A stored message relayed to the
// subject has some: an operator's direct get of a dead letter (its body a
// job's, any JSON) with this subject as the reply, which NATS permissions
// never check. Taken, it would dead-letter a job another worker runs.
func advisoryOf(h nats.Header, data []byte) (advisory, error) {
	if len(h) > 0 {
		return advisory{}, errRelayedAdvisory
	}
	var adv advisory
	if err := json.Unmarshal(data, &adv); err != nil {
		return advisory{}, err
	}
	if adv.StreamSeq == 0 {
		return advisory{}, errors.New("no stream_seq")
	}
	return adv, nil
}

// storedAdvisory is a MAX_DELIVERIES advisory the given-up stream keeps, at
// seq.
type storedAdvisory struct {
	seq, jobSeq uint64
	deliveries  int
	told        time.Time
	in          time.Time // the given-up stream's creation
}

// keptAdvisories reads and deletes the advisories the given-up stream
// keeps; the backstop's goroutine owns it.
type keptAdvisories struct {
	w      *Worker
	stream jetstream.Stream // nil until read
	// taken: another stream captures the advisories (said once, at the
	// first sweep that finds it so, and again when it changes).
	taken bool
}

// read returns the advisories the given-up stream keeps (up to maxSweep):
// those not yet deleted by the worker that rescued their job. What is not
// JetStream's advisory there (a message with headers, relayed to the
// subject; a body that is not an advisory) is deleted, and said. A stream
// missing (deleted, or never made: a worker before it) is created again,
// unless another stream captures the advisories (jobs.ErrAdvisoriesTaken),
// once its deletion has ended: one created while it is still under way may
// store nothing (see recreate), every advisory lost unseen. A stream last
// found taken was not deleted: nothing to wait for.
func (k *keptAdvisories) read(ctx context.Context) []storedAdvisory {
	w, topo := k.w, k.w.cfg.Topology
	name := topo.GivenUpStream()
	stream, err := w.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !k.taken {
			if err := clock.Sleep(ctx, deletionSettle); err != nil {
				return nil
			}
		}
		err = topo.EnsureGivenUpStream(ctx, w.js)
		switch taken := errors.Is(err, jobs.ErrAdvisoriesTaken); {
		case taken && !k.taken:
			w.cfg.Logger.Warn().Err(err).Msg("cannot keep max-deliveries advisories")
		case err == nil:
			w.cfg.Logger.Info().Str("stream", name).Msg("given-up stream missing: created")
		}
		k.taken = errors.Is(err, jobs.ErrAdvisoriesTaken)
		if err == nil {
			stream, err = w.js.Stream(ctx, name)
		}
	}
	if err != nil {
		if !errors.Is(err, jobs.ErrAdvisoriesTaken) {
			w.cfg.Logger.Warn().Err(err).Str("stream", name).Msg("sweep: read the given-up stream")
		}
		return nil
	}
	k.stream, k.taken = stream, false
	state := stream.CachedInfo().State
	var out []storedAdvisory
	junk := 0
	for seq, n := state.FirstSeq, uint64(0); state.Msgs > 0 && n < maxSweep && ctx.Err() == nil; n++ {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(topo.MaxDeliveriesSubject()))
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgNotFound) {
				w.cfg.Logger.Warn().Err(err).Uint64("from_seq", seq).Str("stream", name).Msg("sweep: read the given-up stream")
			}
			break
		}
		seq = m.Sequence + 1
		adv, err := advisoryOf(m.Header, m.Data)
		if err != nil {
			junk++
			k.drop(ctx, m.Sequence, stream.CachedInfo().Created)
			continue
		}
		out = append(out, storedAdvisory{seq: m.Sequence, jobSeq: adv.StreamSeq, deliveries: int(adv.Deliveries), told: adv.Time, in: stream.CachedInfo().Created})
	}
	if junk > 0 {
		w.cfg.Logger.Warn().Int("messages", junk).Str("stream", name).
			Msg("messages in the given-up stream that are not JetStream's max-deliveries advisories (published or relayed to its subject): deleted")
	}
	return out
}

// drop deletes the advisory at seq from the given-up stream created at
// in: its job is dead-lettered, or not one to rescue. One left (an error,
// logged) is read again at a later sweep, and its job found gone. In a
// given-up stream created again since, seq is another advisory: left. The
// stream's creation is read afresh: the one the last sweep cached may be
// an older stream's (created again since, by an operator or another
// worker), and a delete names the stream only by its name.
func (k *keptAdvisories) drop(ctx context.Context, seq uint64, in time.Time) {
	if k.stream == nil {
		return
	}
	info, err := k.stream.Info(ctx)
	if err == nil && !info.Created.Equal(in) {
		return
	}
	if err == nil {
		err = k.stream.DeleteMsg(ctx, seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		k.w.cfg.Logger.Warn().Err(err).Uint64("seq", seq).Str("stream", k.w.cfg.Topology.GivenUpStream()).
			Msg("could not delete an advisory whose job is done with; a later sweep will")
	}
}

// sweep lists the jobs still stored that the consumer gave up on (givenUp),
// with the creations of the stream and of the consumer it read.
// Its read of the stream's info is also the status's (noteJobsStream),
// made first so that a consumer it cannot read does not leave the status
// with an old one. The stream's first sequence read before the ack floor
// only widens the range: what is gone in between is skipped.
func (w *Worker) sweep(ctx context.Context) (seqs []uint64, created, consumer time.Time) {
	topo := w.cfg.Topology
	stream, err := w.js.Stream(ctx, topo.JobsStream)
	w.noteJobsStream(stream, err)
	if err != nil {
		w.cfg.Logger.Warn().Err(err).Msg("sweep: stream info")
		return nil, time.Time{}, time.Time{}
	}
	ci, err := w.consumerInfo(ctx)
	if err != nil {
		w.cfg.Logger.Warn().Err(err).Msg("sweep: consumer info")
		return nil, time.Time{}, time.Time{}
	}
	floor := ci.AckFloor.Stream
	if ci.NumAckPending == 0 {
		floor = max(floor, ci.Delivered.Stream) // givenUp
	}
	first := stream.CachedInfo().State.FirstSeq
	if first == 0 || floor < first {
		return nil, time.Time{}, time.Time{}
	}
	// One read per job still stored, each the next from a sequence: the
	// acked jobs between them (gone from the work queue) cost nothing.
	var out []uint64
	last := min(floor, first+maxSweep)
	for seq := first; seq <= last && ctx.Err() == nil; {
		m, err := w.records.getOnLeader(ctx, topo.JobsStream, msgGet{Seq: seq, NextFor: ">", NoHeaders: true})
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgNotFound) {
				w.cfg.Logger.Warn().Err(err).Uint64("from_seq", seq).Msg("sweep: read the jobs stream")
			}
			break
		}
		if m.Seq <= last {
			out = append(out, m.Seq)
		}
		seq = m.Seq + 1
	}
	return out, stream.CachedInfo().Created, ci.Created
}

// rescue dead-letters the job at seq if it is still in the jobs stream,
// unless it has its record already (a worker stored it and died before the
// ack): then it is only removed. A job of a jobs stream deleted since it
// was noted went with it: the job at its sequence now is another, of the
// new stream, which may not have been delivered yet.
func (w *Worker) rescue(ctx context.Context, seq uint64, c candidate) error {
	topo := w.cfg.Topology
	deliveries := c.deliveries
	stream, err := w.js.Stream(ctx, topo.JobsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // deleted: the job went with it, as if settled
	}
	if err != nil {
		return err
	}
	if !c.ofStream(stream.CachedInfo().Created) {
		return nil
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // settled, or rescued by another worker
	}
	if err != nil {
		return fmt.Errorf("get job seq %d: %w", seq, err)
	}
	if !c.told.IsZero() {
		// Named by an advisory: a job the consumer has not delivered yet
		// is another job (of a stream created again, which ofStream
		// misses when the server that sent the advisory has a clock
		// ahead of the one that created the stream), or one a consumer
		// created again will deliver afresh: left to run. Asked of the
		// consumer, not judged by the job's time beside the advisory's:
		// the stream's leader stamps one, the consumer's the other, and
		// with its clock ahead a job given up on soon after it was stored
		// (each delivery handed back at once) looked stored after, and
		// was left in the stream, never delivered again nor dead-lettered.
		cons, err := w.js.Consumer(ctx, topo.JobsStream, topo.Consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil // the next consumer delivers the job afresh
		}
		if err != nil {
			return fmt.Errorf("consumer info for job seq %d: %w", seq, err)
		}
		if cons.CachedInfo().Delivered.Stream < seq {
			return nil
		}
		// A consumer created again since the job was noted (the worker
		// knew an older one then) delivers it afresh, and may have done
		// so already: the job may run on another worker, or wait a nak
		// delay. Left to run.
		if k := c.consumer; k.UnixNano() > 0 && cons.CachedInfo().Created.After(k) {
			return nil
		}
		// An advisory no worker here heard, read from the given-up
		// stream: the consumer may have been created again between
		// JetStream giving up and that read, which the worker cannot
		// know. One created after the advisory, by the servers' clocks,
		// delivers the job afresh: rescued only once that consumer too
		// shows it given up, and looked at again until then (a clock
		// skew that places the creation after the advisory only delays
		// the rescue; one that places it before, the consumer made
		// again within the skew, dead-letters the job it delivers).
		if ci := cons.CachedInfo(); c.unheard && ci.Created.After(c.told) && !givenUp(ci, seq) {
			return errNotGivenUpYet
		}
	}
	j := w.newJob(raw.Subject, seq, raw.Time, deliveries)
	// No delivery span exists for a job JetStream gave up on: the dead
	// letter gets a span of its own, a child of the job's trace (for a
	// tenant's job, linked to it).
	jctx := tracing.Extract(ctx, raw.Header)
	spanCtx, span := w.tracer.Start(jctx, "dead_letter max_deliveries", untrusted(jctx, j.Tenant)...)
	defer span.End()
	j.ctx = spanCtx
	_ = w.decode(ctx, j, raw.Header, raw.Data) // an invalid job is dead-lettered all the same
	j.ReplyTo = ""                             // nobody waits for a job JetStream gave up on
	k, err := w.records.find(ctx, j, raw.Subject, raw.Data)
	if err != nil {
		return err
	}
	if k == 0 {
		now := time.Now().UTC()
		hist := w.history.take(j)
		hist = append(hist, jobs.Failure{At: now, Error: fmt.Sprintf("JetStream stopped delivering after %d deliveries without a worker settling the job (worker crashes or ack timeouts)", deliveries)})
		info := jobs.ErrorInfo{Class: jobs.ClassMaxDeliveries, Message: hist[len(hist)-1].Error}
		replays := jobs.ReplayCount(raw.Header)
		o := w.deadLetterOutcome(j, raw.Subject, raw.Data, info, hist, len(hist)-1, deliveries, replays)
		if already, err := w.records.store(ctx, o); err != nil {
			return err
		} else if already == 0 {
			w.metrics.deadLetters.WithLabelValues(string(j.Op), string(jobs.ClassMaxDeliveries)).Inc()
			w.logJob(w.cfg.Logger.Warn(), j).Int("deliveries", deliveries).Str("class", string(jobs.ClassMaxDeliveries)).
				Msg("job dead-lettered: ran out of deliveries")
		}
	}
	// Recorded (by this rescue or before): a revoke_all's progress goes,
	// as after any dead letter (dropProgress).
	w.dropProgress(j)
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		if info := stream.CachedInfo(); info.Config.DenyDelete {
			return &jobDeleteDenied{created: info.Created}
		}
		return fmt.Errorf("delete job seq %d after dead-lettering it: %w", seq, err)
	}
	return nil
}

// errNotGivenUpYet: a candidate's job may be delivered again; it is looked
// at again a grace later.
var errNotGivenUpYet = errors.New("the consumer may deliver the job again")

// jobDeleteDenied: the job is recorded, and the jobs stream created at
// created denies deletes (deny_delete, which cannot be undone), so no retry
// removes it.
type jobDeleteDenied struct{ created time.Time }

func (*jobDeleteDenied) Error() string { return "the jobs stream denies deletes" }
