package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
)

// prefetch is how many jobs the worker asks JetStream for beyond the ones
// it runs, so that the next job is already here when a slot frees: a
// quarter of the concurrency, 2 to 64. These are the only jobs delivered to
// the worker and not yet watched by its heartbeat; they wait at most until
// a slot frees. If every slot stays busy past the ack wait (jobs longer
// than that), JetStream gives them to another worker; when the worker
// stops taking jobs, it hands them back at once (handBack).
func (w *Worker) prefetch() int { return min(max(w.cfg.Concurrency/4, 2), 64) }

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
	var failures int
	for ctx.Err() == nil {
		if w.nc.IsClosed() {
			return ErrConnectionClosed
		}
		if err := w.waitToTake(ctx); err != nil {
			if errors.Is(err, ErrConnectionClosed) {
				return ErrConnectionClosed
			}
			return nil
		}
		err := w.take(ctx, cons, slots, release, queue)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			failures = 0
			continue // the circuit opened, or outcomes wait to be recorded
		case errors.Is(err, jetstream.ErrConnectionClosed) || w.nc.IsClosed():
			return ErrConnectionClosed
		}
		failures++
		if c, herr := w.recover(ctx, err); herr == nil {
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
// many outcomes wait to be recorded, or the pull fails.
func (w *Worker) take(ctx context.Context, cons jetstream.Consumer, slots chan struct{}, release func(), queue chan<- *delivery) error {
	// The pull asks for more once a quarter of the prefetch is taken (one
	// job at a time below a prefetch of 8): a pull request for every job
	// costs the worker and the server a message each, while the three
	// quarters left keep the next job here when a slot frees.
	b := w.prefetch()
	refill := max(b/4, 1)
	it, err := cons.Messages(jetstream.PullMaxMessages(b), jetstream.PullThresholdMessages(b-refill+1),
		jetstream.PullExpiry(w.cfg.FetchMaxWait))
	if err != nil {
		return err
	}
	seen := w.records.created.Load() // the jobs stream these deliveries are of: see delivery.void
	defer w.handBack(it, seen)
	// Whatever stopped the last pull is over once this one brings a job or
	// outlasts a few pull requests (each answered or heartbeated by the
	// server): with no job waiting, nothing else would say so.
	live := time.AfterFunc(3*w.cfg.FetchMaxWait, func() { w.fetchErr.Store(nil) })
	defer live.Stop()
	// pause ends when the circuit opens or outcomes pile up: stop taking
	// jobs, and stop waiting for one.
	pause, cancel := context.WithCancel(ctx)
	defer cancel()
	created := cons.CachedInfo().Created
	opened, full := w.circuit.open.On(), w.records.full.On()
	go func() {
		select {
		case <-opened:
		case <-full:
		case <-pause.Done():
		}
		cancel()
	}()
	for {
		select {
		case <-slots:
		case <-pause.Done():
			return nil
		}
		msg, err := it.Next(jetstream.NextContext(pause))
		if err != nil {
			release()
			if pause.Err() != nil {
				return nil
			}
			return err
		}
		meta, err := msg.Metadata()
		if err != nil { // not a JetStream message: cannot happen on a pull consumer
			release()
			w.cfg.Logger.Error().Err(err).Msg("message without JetStream metadata; leaving it to redelivery")
			continue
		}
		if w.fetchErr.Load() != nil {
			w.fetchErr.Store(nil)
		}
		if w.inflight.holdsMsg(msgIdentity{meta.Sequence.Stream, meta.Timestamp.UnixNano()}) {
			// Another delivery of the job runs here still (its consumer
			// deleted and created again, or its ack wait passed unseen):
			// run beside it, the job would call Clerk twice. Handed back,
			// it finds that one's record when it comes again.
			_ = msg.NakWithDelay(w.ackWait())
			release()
			w.cfg.Logger.Warn().Uint64("stream_seq", meta.Sequence.Stream).
				Msg("a job delivered again while its earlier delivery runs here; handed back until that one is settled")
			continue
		}
		d := &delivery{msg: msg, meta: meta, releaseFn: release, received: time.Now(), consumerCreated: created,
			jobsStream: &w.records.created, jobsStreamSeen: seen}
		w.inflight.add(d)
		queue <- d
	}
}

// handBack ends a pull and hands back the prefetched jobs no slot took, so
// that another worker (or this one, once it takes jobs again) gets them at
// once rather than after the ack wait: at shutdown, when the circuit opens,
// when outcomes pile up. A job on the wire as the pull ends, or one whose
// nak is lost, still comes back after the ack wait. A job of a jobs stream
// deleted since the pull began (seen: the stream it knew then) is not
// naked: the nak would reach the new stream's job at its sequence, perhaps
// running on another worker, and hand it out again (see delivery.void).
func (w *Worker) handBack(it jetstream.MessagesContext, seen int64) {
	it.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return
		}
		if meta, err := msg.Metadata(); err == nil && outlived(w.records.created.Load(), seen, meta.Timestamp) {
			continue
		}
		_ = msg.Nak()
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
	c, err = w.ensure(ctx)
	if err != nil {
		return nil, fmt.Errorf("recreate it: %w", err)
	}
	w.cfg.Logger.Warn().Str("consumer", topo.Consumer).Str("stream", topo.JobsStream).
		Msg("the consumer was gone (deleted?); created it again")
	return c, nil
}
