package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// prefetch is how many jobs the worker asks JetStream for beyond the ones
// it runs, so that the next job is already here when a slot frees: a
// quarter of the concurrency, 2 to 64. These are the only jobs delivered to
// the worker and not yet watched by its heartbeat; they wait at most until
// a slot frees. If every slot stays busy past the ack wait (jobs longer
// than that), JetStream gives them to another worker. When the worker
// pauses (the circuit opens, outcomes pile up) it holds them, watched by
// the heartbeat, and runs them first when it takes jobs again; when it
// stops, it hands them back at once, but for those that may have waited
// past their ack wait and would do harm run twice (a create or refresh:
// see mayBeElsewhere), left to come again after it.
func (w *Worker) prefetch() int { return min(max(w.cfg.Concurrency/4, 2), jobs.MaxPullBatch) }

// pullBatch is how many jobs a pull asks for at most: the prefetch, or the
// consumer's max_batch when smaller. JetStream refuses every pull request
// asking for more, and a server whose JetStream limits set
// max_request_batch gives it to every consumer, where no worker's start
// can take it away. The max_batch is the one the worker read last (every
// second: see observeConsumer), cons's before the first read: cons may be
// a handle read long ago, at start, and a max_batch changed since is then
// taken in at once, not after a pull refused (lowered) or for good (raised:
// the pull lasts the worker's life).
func (w *Worker) pullBatch(cons jetstream.Consumer) int {
	n := cons.CachedInfo().Config.MaxRequestBatch
	if read := w.consumerBatch.Load(); read > 0 {
		n = int(read - 1)
	}
	if n > 0 {
		return min(w.prefetch(), n)
	}
	return w.prefetch()
}

// fetchLoop hands jobs to the slots: one long-lived pull (jetstream's
// Messages, one inbox for the worker's life) from which a job is taken only
// for a free slot, so that delivered jobs stay bounded by the concurrency
// plus the prefetch. It takes nothing while the circuit is open or while too
// many outcomes wait to be recorded, recreates the consumer if it is
// deleted, and returns ErrConnectionClosed when the connection is closed for
// good; nil when ctx ends.
func (w *Worker) fetchLoop(ctx context.Context, cons jetstream.Consumer, queue chan<- *delivery) error {
	slots := make(chan struct{}, w.cfg.Concurrency)
	for range w.cfg.Concurrency {
		slots <- struct{}{}
	}
	release := func() { slots <- struct{}{} }
	// held are the prefetched jobs of the last pull that paused, kept
	// rather than handed back: a nak costs the job one of its deliveries,
	// so a circuit that opens and closes a few times would have spent the
	// deliveries of the jobs at the head of the queue, which would end as
	// max_deliveries without ever being run.
	var held []*delivery
	defer func() {
		// ctx has ended: the reads before the hand-back get a moment of
		// their own, so that a stopping worker is not held up for long.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		w.handBackHeld(hctx, held)
	}()
	// paused is how long the worker has paused holding them: a pause that
	// begins before they all ran holds the rest again (see runHeld), for
	// what is left of three ack waits, not three more, so that a circuit
	// that keeps opening cannot hold them for good. The waits for a slot
	// in between, the worker running jobs, are not counted: a short pause
	// then costs them nothing either.
	var paused time.Duration
	var failures int
	for ctx.Err() == nil {
		if w.nc.IsClosed() {
			return ErrConnectionClosed
		}
		var err error
		if held, paused, err = w.waitHolding(ctx, held, paused); err != nil {
			if errors.Is(err, ErrConnectionClosed) {
				return ErrConnectionClosed
			}
			return nil
		}
		held, cons = w.stillHeld(ctx, held, cons)
		if held, err = w.runHeld(ctx, held, slots, queue); err != nil {
			return nil
		}
		if len(held) > 0 {
			continue // paused again before they all ran
		}
		paused = 0
		held, err = w.take(ctx, cons, slots, release, queue)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			failures = 0
			continue // the circuit opened, or outcomes wait to be recorded
		case errors.Is(err, jetstream.ErrConnectionClosed) || w.nc.IsClosed():
			return ErrConnectionClosed
		}
		c, herr := w.recover(ctx, err)
		if herr == nil && errors.Is(err, errConsumerRenewed) { // not a failure
			cons = c
			if w.renewedSince(c.CachedInfo().Created) {
				// A read behind the watcher's (a lagging answer): not in
				// a tight loop.
				_ = clock.Sleep(ctx, 200*time.Millisecond)
			} else {
				// Taken in at once, not at the watcher's next read: the
				// jobs in flight are the old consumer's (see
				// delivery.replaced).
				w.observeConsumer(c.CachedInfo())
			}
			continue
		}
		failures++
		if herr == nil {
			cons = c
			w.fetchErr.Store(nil)
		} else {
			msg := fmt.Sprintf("cannot fetch jobs from consumer %s: %s", w.cfg.Topology.Consumer, herr)
			w.fetchErr.Store(&msg)
		}
		// Log the first failure and then every tenth: a fault that lasts
		// must not write a line a second.
		if failures == 1 || failures%10 == 0 {
			w.cfg.Logger.Warn().Err(err).Int("failures", failures).Msg("taking jobs failed; recovering")
		}
		_ = clock.Sleep(ctx, min(time.Duration(failures)*200*time.Millisecond, 5*time.Second))
	}
	return nil
}

// waitHolding is waitToTake for a worker that may hold prefetched jobs.
// Held through three ack waits of pausing, they are handed back (a delivery
// spent each), so that a replica whose circuit stays open (its key rotated
// out from under it) does not keep them from the others for good; a pause
// that short costs them nothing. paused is how long earlier pauses held
// them (see fetchLoop), counted in; it is returned with this pause added.
// The ack wait is read again every second: an operator may shorten it
// during the pause (see ackWait).
func (w *Worker) waitHolding(ctx context.Context, held []*delivery, paused time.Duration) ([]*delivery, time.Duration, error) {
	if len(held) > 0 {
		start := time.Now()
		spent := func() time.Duration { return paused + time.Since(start) }
		for left := 3*w.ackWait() - paused; left > 0; left = 3*w.ackWait() - spent() {
			hctx, cancel := context.WithTimeout(ctx, min(left, time.Second))
			err := w.waitToTake(hctx)
			cancel()
			if err == nil || ctx.Err() != nil || errors.Is(err, ErrConnectionClosed) {
				return held, spent(), err
			}
			if w.nc.IsClosed() { // waitToTake does not look once hctx ends
				return held, spent(), ErrConnectionClosed
			}
		}
		w.cfg.Logger.Warn().Int("jobs", len(held)).Dur("paused_for", spent()).
			Msg("paused for three ack waits: handing back the prefetched jobs it held, for another worker to run")
		w.handBackHeld(ctx, held)
		held = nil
	}
	return held, 0, w.waitToTake(ctx)
}

// waitToTake returns once the circuit is closed and outcomes have room to
// be recorded, ctx's error when ctx ends, or ErrConnectionClosed when the
// connection is closed for good meanwhile: the circuit or the parked
// outcomes may never clear without it (the probe alone reaches Clerk, and
// records cannot be stored), and a worker waiting forever would never exit
// for its supervisor to restart it. Nothing signals the closing but the
// connection's closed handler, which belongs to whoever made the
// connection, so it is looked at every second.
func (w *Worker) waitToTake(ctx context.Context) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := w.circuit.Wait(wctx)
		if err == nil {
			err = w.records.full.waitOff(wctx)
		}
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case w.nc.IsClosed():
			return ErrConnectionClosed
		}
	}
}

// take pulls jobs for free slots until ctx ends, the circuit opens, too
// many outcomes wait to be recorded, or the pull fails. When the worker
// pauses (the circuit, the outcomes), it returns the jobs prefetched and
// not taken, held: see fetchLoop.
func (w *Worker) take(ctx context.Context, cons jetstream.Consumer, slots chan struct{}, release func(), queue chan<- *delivery) (held []*delivery, err error) {
	// The pull asks for more once a quarter of the prefetch is taken (one
	// job at a time below a prefetch of 8): a pull request for every job
	// costs the worker and the server a message each, while the three
	// quarters left keep the next job here when a slot frees.
	b := w.pullBatch(cons)
	w.pulling.Store(int64(b))
	refill := max(b/4, 1)
	created := cons.CachedInfo().Created
	if w.renewedSince(created) {
		return nil, errConsumerRenewed
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(b), jetstream.PullThresholdMessages(b-refill+1),
		jetstream.PullExpiry(w.cfg.FetchMaxWait))
	if err != nil {
		return nil, err
	}
	seen := w.records.created.Load() // the jobs stream these deliveries are of: see delivery.void
	admit := func(msg jetstream.Msg) *delivery { return w.admit(msg, created, seen, release) }
	paused, renewed := false, false
	defer func() {
		// The consumer created again during the pull: a nak would reach
		// the new consumer's delivery of the job (see delivery.replaced).
		// Left alone, they come again after the ack wait, so the pull is
		// stopped, not drained.
		handingBack := !paused || ctx.Err() != nil
		if handingBack && (renewed || w.renewedSince(created)) {
			it.Stop()
			return
		}
		left := w.endPull(it, seen)
		if handingBack {
			if w.renewedSince(created) { // read while the pull drained
				return
			}
			for _, m := range left {
				if w.mayBeElsewhere(m) {
					continue
				}
				_ = m.Nak()
			}
			return
		}
		for _, m := range left {
			if d := admit(m); d != nil {
				// Held, it is kept alive from now on; a copy that may
				// already run elsewhere is still never handed back.
				d.elsewhere = w.mayBeElsewhere(m)
				held = append(held, d)
			}
		}
	}()
	// Whatever stopped the last pull is over once this one brings a job or
	// outlasts a few pull requests (each answered or heartbeated by the
	// server): with no job waiting, nothing else would say so.
	live := time.AfterFunc(3*w.cfg.FetchMaxWait, func() { w.fetchErr.Store(nil) })
	defer live.Stop()
	// pause ends when the circuit opens or outcomes pile up: stop taking
	// jobs, and stop waiting for one. It ends too when the worker reads a
	// later creation of the consumer (deleted and created again under the
	// same name): a pull with no request waiting at the server (a busy
	// worker's, its prefetch full) is not told of the deletion, and its
	// next request, addressed by name, is served by the new consumer. Its
	// jobs would run stamped with the old creation, so that their naks
	// would be withheld (see delivery.replaced) and held jobs dropped, for
	// as long as the pull lasts. It ends too when the consumer's max_batch
	// calls for another size of pull (see pullBatch): its prefetched jobs
	// are held, as in a pause (no delivery spent), and run first.
	pause, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	opened, full := w.circuit.open.On(), w.records.full.On()
	go func() {
		for {
			select {
			case <-opened:
			case <-full:
			case <-pause.Done():
			case <-w.batchChanged:
				if w.pullBatch(cons) == b {
					continue
				}
			case <-w.consumerRenewed:
				if !w.renewedSince(created) {
					continue // a creation this pull already knows
				}
				cancel(errConsumerRenewed)
				return
			}
			cancel(nil)
			return
		}
	}()
	stopped := func() error {
		if err := context.Cause(pause); errors.Is(err, errConsumerRenewed) {
			renewed = true
			return err
		}
		paused = true
		return nil
	}
	var lastDelivered uint64 // the consumer sequence of the pull's last job
	for {
		select {
		case <-slots:
		case <-pause.Done():
			return nil, stopped()
		}
		msg, err := it.Next(jetstream.NextContext(pause))
		if err != nil {
			release()
			if pause.Err() != nil {
				return nil, stopped()
			}
			return nil, err
		}
		// The pull ends here, leaving the job unsettled (it comes again
		// after the ack wait), when the job may be a new consumer's that
		// would be stamped with the old one's creation:
		//   - its consumer sequence does not rise: one consumer's
		//     deliveries, redeliveries too, have rising sequences, and a
		//     new one's start again at 1, whatever the clocks say, before
		//     the watcher reads the new creation (a new consumer whose
		//     sequences have passed the pull's is left to the watcher);
		//   - it was taken as the watcher's renewal was read.
		meta, merr := msg.Metadata()
		if merr == nil && meta.Sequence.Consumer <= lastDelivered || errors.Is(context.Cause(pause), errConsumerRenewed) {
			renewed = true
			release()
			return nil, errConsumerRenewed
		}
		if merr == nil {
			lastDelivered = meta.Sequence.Consumer
		}
		if d := admit(msg); d != nil {
			queue <- d
		} else {
			release()
		}
	}
}

// mayBeElsewhere reports whether a prefetched job, never taken from the
// pull, may have waited there past its ack wait (stored half an ack wait
// ago or more; no heartbeat keeps a prefetched job): JetStream may have
// given it to another worker, which may be running it. A nak names only
// the consumer and the job, so the server would apply it to that delivery
// and hand the job out once more, to a worker that finds no record yet.
// Not handed back, it comes again after the ack wait if it is unsettled.
// Only a create or refresh is kept so (unrepeatable): any other job run
// twice repeats a harmless call, and holding back every job of a backlog
// (all stored long ago) would delay a stopping worker's prefetch by a
// whole ack wait.
func (w *Worker) mayBeElsewhere(m jetstream.Msg) bool {
	if !unrepeatable(w.cfg.Topology.Subjects.OpOf(m.Subject())) {
		return false
	}
	meta, err := m.Metadata()
	return err == nil && time.Since(meta.Timestamp) >= w.ackWait()/2
}

// errConsumerRenewed: a pull ended because its consumer was created again
// (a later creation read, or a consumer sequence that did not rise); see
// take.
var errConsumerRenewed = errors.New("the consumer was created again: pulling from it anew")

// renewedSince reports whether the worker has read a creation of the
// consumer later than created.
func (w *Worker) renewedSince(created time.Time) bool {
	return w.consumerCreated.Load() > created.UnixNano()
}

// admit makes a delivery of a job taken from the consumer created at
// created, while the worker knew the jobs stream created at seen, and
// holds it (the heartbeat watches it from now on); nil when the job is not
// to run here now.
func (w *Worker) admit(msg jetstream.Msg, created time.Time, seen int64, release func()) *delivery {
	meta, err := msg.Metadata()
	if err != nil { // not a JetStream message: cannot happen on a pull consumer
		w.cfg.Logger.Error().Err(err).Msg("message without JetStream metadata; leaving it to redelivery")
		return nil
	}
	if w.fetchErr.Load() != nil {
		w.fetchErr.Store(nil)
	}
	if w.inflight.holdsMsg(msgIdentity{meta.Sequence.Stream, meta.Timestamp.UnixNano()}) {
		// Another delivery of the job runs here still (its consumer
		// deleted and created again, or its ack wait passed unseen): run
		// beside it, the job would call Clerk twice. Handed back, it finds
		// that one's record when it comes again.
		_ = msg.NakWithDelay(w.ackWait())
		w.cfg.Logger.Warn().Uint64("stream_seq", meta.Sequence.Stream).
			Msg("a job delivered again while its earlier delivery runs here; handed back until that one is settled")
		return nil
	}
	d := &delivery{msg: msg, meta: meta, releaseFn: release, received: time.Now(), consumerCreated: created,
		jobsStream: &w.records.created, jobsStreamSeen: seen, consumer: &w.consumerCreated}
	w.inflight.add(d)
	return d
}

// runHeld hands the held jobs to slots as they free, before the worker
// takes new ones: they were the head of the queue. A job of a jobs stream
// deleted since it was taken, or of a consumer created again since, is
// dropped unsettled (see delivery.void, delivery.replaced). The worker may
// pause again while it waits for a slot (the circuit opens, outcomes pile
// up): handed to a slot then, a job would run against the open circuit or
// the full record queue, the delivery its holding was to spare spent. So
// it returns the jobs still held once a pause begins, for the fetch loop to
// hold them on (waitHolding), and when ctx ends, with ctx's error.
func (w *Worker) runHeld(ctx context.Context, held []*delivery, slots chan struct{}, queue chan<- *delivery) ([]*delivery, error) {
	opened, full := w.circuit.open.On(), w.records.full.On()
	for i, d := range held {
		select {
		case <-slots:
		case <-opened:
			return held[i:], nil
		case <-full:
			return held[i:], nil
		case <-ctx.Done():
			return held[i:], ctx.Err()
		}
		// A pause may have begun as the slot freed (a select picks either
		// when both are ready): looked at again before the job goes.
		if w.circuit.open.IsOn() || w.records.full.IsOn() {
			slots <- struct{}{}
			return held[i:], nil
		}
		// Looked at once a slot is free: the wait may be a Clerk call
		// long, and the stream or the consumer deleted meanwhile (the
		// new consumer delivers the job anew, perhaps elsewhere).
		if d.void() || d.replaced() {
			w.inflight.remove(d)
			slots <- struct{}{}
			continue
		}
		queue <- d
	}
	return nil, nil
}

// stillHeld returns the held jobs that are still this worker's to run,
// dropping the others unsettled, and the consumer to take jobs from: cons,
// or the one that replaced it. The worker reads the jobs stream and the
// consumer again only when a pull fails, which comes after the held jobs
// run, so it reads them now. A job of a stream deleted during the pause
// (an operator discarding a backlog) went with it; one of a consumer
// deleted (and perhaps created again by another worker) is the new
// consumer's to deliver, perhaps already running elsewhere: run here too,
// it would call Clerk twice (a create, on its first delivery, looks for no
// record). Unread (no leader, say), the jobs run as they would have.
func (w *Worker) stillHeld(ctx context.Context, held []*delivery, cons jetstream.Consumer) ([]*delivery, jetstream.Consumer) {
	if len(held) == 0 {
		return nil, cons
	}
	var kept []*delivery
	keep := func(d *delivery) { kept = append(kept, d) }
	c := w.splitHeld(ctx, held, true, keep, "are dropped, never run here (those still in the stream are delivered anew)")
	if c != nil {
		// Jobs taken from now on are of this consumer (see replaced),
		// and the next pause's held jobs are compared with it.
		cons = c
	}
	return kept, cons
}

// splitHeld reads the jobs stream and the consumer again (readHeld),
// passes the held jobs still of the consumer as it is now to keep, in
// their order, and returns that consumer (nil when it cannot be read). The
// others are no longer held, and said to be dropped once every job is
// kept or dropped: "the jobs it held " and fate. A consumer that cannot
// be read keeps them all with keepUnread, and drops them all otherwise.
func (w *Worker) splitHeld(ctx context.Context, held []*delivery, keepUnread bool, keep func(*delivery), fate string) jetstream.Consumer {
	why, c := w.readHeld(ctx)
	if why == "" && c == nil && !keepUnread {
		why = "the consumer could not be read"
	}
	dropped := 0
	for _, d := range held {
		if why == "" && (c == nil || d.consumerCreated.Equal(c.CachedInfo().Created)) {
			keep(d)
			continue
		}
		dropped++
		w.inflight.remove(d)
	}
	if dropped > 0 {
		if why == "" {
			why = "the consumer was deleted and created again while the worker paused"
		}
		topo := w.cfg.Topology
		w.cfg.Logger.Warn().Int("jobs", dropped).Str("stream", topo.JobsStream).Str("consumer", topo.Consumer).
			Msg(why + ": the jobs it held " + fate)
	}
	return c
}

// readHeld reads the jobs stream and the consumer again for a worker that
// holds prefetched jobs: why none of them is its own any more (the stream
// or the consumer is gone), else the consumer as it is now, nil when it
// cannot be read.
func (w *Worker) readHeld(ctx context.Context) (why string, current jetstream.Consumer) {
	topo := w.cfg.Topology
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := w.records.readGeneration(cctx) // a stream created again voids them: see delivery.void
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return "the jobs stream was deleted while the worker paused", nil
	}
	c, err := w.js.Consumer(cctx, topo.JobsStream, topo.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return "the consumer was deleted while the worker paused", nil
	}
	if err != nil {
		return "", nil
	}
	return "", c
}

// handBackHeld hands the held jobs back when the worker stops taking jobs
// for good (or paused too long), so that another worker runs them at once
// rather than after the ack wait. Only those of the consumer as it is now:
// a nak names the consumer and the sequences alone, so one for a job of a
// consumer deleted and created again (same name) during the pause reaches
// the new consumer's delivery of that job, perhaps running on another
// worker, and hands it out a second time. Those, and all of them when the
// consumer cannot be read, are dropped unsettled: they come again after
// the ack wait, from whichever consumer there is then. So is a job that
// may have waited past its ack wait in the prefetch buffer before the
// pause held it (delivery.elsewhere), whose nak would reach another
// worker's delivery of it in the same way.
func (w *Worker) handBackHeld(ctx context.Context, held []*delivery) {
	if len(held) == 0 {
		return
	}
	handBack := func(d *delivery) {
		if !d.elsewhere { // see mayBeElsewhere: it comes again after the ack wait
			_ = d.nak(0)
		}
		w.inflight.remove(d)
	}
	w.splitHeld(ctx, held, false, handBack,
		"are not handed back (a nak could reach another delivery of them); those still in the stream come again after the ack wait")
}

// endPull ends a pull and returns the prefetched jobs no slot took, for the
// caller to hold or hand back. Handed back at once, another worker (or this
// one, once it takes jobs again) gets them rather than after the ack wait.
// It reads until the pull's drain is done (the server the worker is
// connected to has answered the pull's end), so that a job that reaches the
// worker before that answer, on the wire as the pull ends (a loaded machine,
// a slow link), is among them: left in the ended pull's buffer, it would be
// in no one's hands until the ack wait. It waits for the answer while the
// connection is up, for pullEndWait at most; the jobs that arrive after it
// (the connection hung, or lost), and one whose nak is lost, come back after
// the ack wait, as does one that may have waited past its ack wait (see
// mayBeElsewhere), which the caller does not hand back. A job of a jobs
// stream deleted since the pull began (seen: the stream it knew then) is
// left out, never to be settled: a nak would reach the new stream's job at
// its sequence, perhaps running on another worker, and hand it out again
// (see delivery.void).
func (w *Worker) endPull(it jetstream.MessagesContext, seen int64) []jetstream.Msg {
	it.Drain()
	wait, cancel := w.drainWait()
	defer cancel()
	var left []jetstream.Msg
	for {
		msg, err := nextLeft(it, wait)
		if err != nil {
			return left
		}
		if meta, err := msg.Metadata(); err == nil && outlived(w.records.created.Load(), seen, meta.Timestamp) {
			continue
		}
		left = append(left, msg)
	}
}

// pullEndWait bounds how long endPull waits for the server's answer to a
// pull's end: a round trip, far longer only when the connection hangs
// (nats.go's flush, which the drain waits for, gives up after 10 s), when
// a stopping worker is not to be held up for long.
const pullEndWait = 5 * time.Second

// drainWait lasts while endPull waits for the server's answer: pullEndWait,
// or until the connection is lost (the answer then comes after the
// reconnection, or never, and the jobs sent before it are lost with the
// connection).
func (w *Worker) drainWait() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), pullEndWait)
	lost := w.nc.StatusChanged(nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	if !w.nc.IsConnected() { // looked at once listening: no change unseen
		cancel()
	}
	go func() {
		select {
		case <-lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); w.nc.RemoveStatusListener(lost) }
}

// nextLeft returns an ended pull's next job: waiting for one while wait
// lasts, then only one already in its buffer. A missed heartbeat while it
// waits is the same slow way back, not the pull's end.
func nextLeft(it jetstream.MessagesContext, wait context.Context) (jetstream.Msg, error) {
	for {
		if wait.Err() != nil {
			// Not NextContext(wait): Next picks at random between a job in
			// the buffer and a context that has ended.
			msg, err := it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
			if errors.Is(err, jetstream.ErrNoHeartbeat) { // one reported before: at most the error buffer's 10
				continue
			}
			return msg, err
		}
		msg, err := it.Next(jetstream.NextContext(wait))
		if errors.Is(err, jetstream.ErrNoHeartbeat) || err != nil && wait.Err() != nil {
			continue
		}
		return msg, err
	}
}

// recover works out why taking jobs failed and repairs what the worker
// owns: a consumer (or stream) that was deleted is created again. It
// returns the consumer to take jobs from, or why it cannot.
func (w *Worker) recover(ctx context.Context, cause error) (jetstream.Consumer, error) {
	topo := w.cfg.Topology
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := w.js.Consumer(cctx, topo.JobsStream, topo.Consumer)
	if err == nil {
		// A passing fault (a leader change, missed heartbeats), or the
		// stream and its consumer created again by someone else: the jobs
		// to come may be of a new generation.
		if _, err := w.records.readGeneration(cctx); err != nil {
			return nil, err
		}
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) &&
		!errors.Is(cause, jetstream.ErrConsumerDeleted) && !errors.Is(err, nats.ErrNoResponders) {
		return nil, err
	}
	c, err = w.recreate(ctx)
	if err != nil {
		return nil, fmt.Errorf("recreate it: %w", err)
	}
	w.cfg.Logger.Warn().Str("consumer", topo.Consumer).Str("stream", topo.JobsStream).
		Msg("the consumer was gone (deleted?); created it again")
	return c, nil
}
