package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// consumerWatchEvery is how often the worker reads its consumer's
// configuration while it runs. An operator can shorten the ack wait at any
// time (nats consumer edit) and the worker hears of it only by asking: a
// second is the shortest ack wait the configuration allows.
const consumerWatchEvery = time.Second

// ackWait is the ack wait JetStream applies to this worker's deliveries:
// the configured one, or the consumer's when it is shorter (changed while
// the worker runs; a worker's start sets it back). The heartbeat keeps jobs
// alive at its pace: at the configured pace, a job running longer than the
// consumer's ack wait was redelivered while it ran, and its redelivery,
// finding no record yet, called Clerk again.
func (w *Worker) ackWait() time.Duration {
	if d := time.Duration(w.consumerAckWait.Load()); d > 0 && d < w.cfg.Topology.AckWait {
		return d
	}
	return w.cfg.Topology.AckWait
}

// watchConsumer reads the consumer's configuration every
// consumerWatchEvery until ctx ends. A consumer it cannot read (deleted,
// no leader) is the fetch loop's to recover and report.
func (w *Worker) watchConsumer(ctx context.Context) {
	topo := w.cfg.Topology
	for range clock.Ticks(ctx, consumerWatchEvery) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := w.js.Consumer(cctx, topo.JobsStream, topo.Consumer)
		cancel()
		if err == nil {
			w.observeConsumer(c.CachedInfo())
		}
	}
}

// observeConsumer takes in what the consumer is now, saying what changed.
func (w *Worker) observeConsumer(info *jetstream.ConsumerInfo) {
	w.observeStall(info)
	if batch := int64(info.Config.MaxRequestBatch) + 1; w.consumerBatch.Swap(batch) != batch {
		select { // the pull under way may ask for more, or fewer, than it calls for: see take
		case w.batchChanged <- struct{}{}:
		default:
		}
	}
	if created := info.Created.UnixNano(); raise(&w.consumerCreated, created) {
		select { // the fetch loop's pull may be the old consumer's: see take
		case w.consumerRenewed <- struct{}{}:
		default:
		}
		if w.inflight.any(func(d *delivery) bool { return d.consumerCreated.UnixNano() < created }) {
			// Its jobs in flight are another consumer's deliveries now: see
			// delivery.replaced.
			w.cfg.Logger.Warn().Str("consumer", w.cfg.Topology.Consumer).
				Msg("the consumer was created again (deleted by hand?) while jobs were in flight here: they are not handed back when they stop (a nak would reach the new consumer's delivery of the same job, perhaps running elsewhere); they come again after the ack wait")
		}
	}
	aw := info.Config.AckWait
	if old := time.Duration(w.consumerAckWait.Swap(int64(aw))); old != aw && aw > 0 {
		if aw < w.cfg.Topology.AckWait {
			w.cfg.Logger.Warn().Str("consumer", w.cfg.Topology.Consumer).Dur("ack_wait", aw).Dur("configured", w.cfg.Topology.AckWait).
				Msg("the consumer's ack wait is shorter than configured (changed while the worker runs): jobs in flight are kept alive at its pace; a worker's start sets it back")
		}
		select { // the heartbeat may sleep past the new ack wait
		case w.ackWaitChanged <- struct{}{}:
		default:
		}
	}
}

// asking is how many jobs the pull under way asks for at most.
func (w *Worker) asking() int {
	if n := w.pulling.Load(); n > 0 {
		return int(n)
	}
	return w.prefetch()
}

// observeStall says, in the log and on /readyz, when the consumer delivers
// some jobs or none for a reason of its own: paused (nats consumer pause),
// or given a filter (nats consumer edit) so that the jobs on other
// subjects stay in the stream. The worker then waits, ready and silent,
// for jobs that never come; it leaves the operator's change in place (a
// worker's start sets the filter back) and says why jobs wait.
func (w *Worker) observeStall(info *jetstream.ConsumerInfo) {
	topo := w.cfg.Topology
	filters := info.Config.FilterSubjects
	if info.Config.FilterSubject != "" {
		filters = append([]string{info.Config.FilterSubject}, filters...)
	}
	var now *stall
	batch, expires := info.Config.MaxRequestBatch, info.Config.MaxRequestExpires
	switch {
	case batch > 0 && batch < w.asking():
		// The server answers every pull request of the worker with a
		// refusal, which the pull takes for missed heartbeats; the next
		// pull asks for fewer (pullBatch).
		now = &stall{refused: true, why: fmt.Sprintf("consumer %s refuses the workers' pull requests: its max_batch is %d, and this worker's pull asks for up to %d jobs "+
			"(set while the workers run): no job is delivered until its next pull, which asks for %d", topo.Consumer, batch, w.asking(), batch)}
	case expires > 0 && expires < w.cfg.FetchMaxWait:
		now = &stall{refused: true, why: fmt.Sprintf("consumer %s refuses the workers' pull requests: its max_expires is %s, and a worker's requests last %s "+
			"(set while the workers run): no job is delivered until it is removed or a worker starts, which removes it", topo.Consumer, expires, w.cfg.FetchMaxWait)}
	case info.Paused:
		now = &stall{paused: true, why: fmt.Sprintf("consumer %s is paused for %s more (nats consumer resume %s %s): no job is delivered meanwhile",
			topo.Consumer, info.PauseRemaining.Round(time.Second), topo.JobsStream, topo.Consumer)}
	case len(filters) > 0:
		now = &stall{why: fmt.Sprintf("consumer %s delivers only jobs on %s (a filter set while the workers run): jobs on other subjects wait "+
			"in %s until the filter is removed or a worker starts, which removes it", topo.Consumer, text.Line(strings.Join(filters, ", "), 200), topo.JobsStream)}
	}
	// A filter hidden by a pause or a refusal passes jobs over all the
	// same: said when the consumer delivers every job again, though the
	// filter went first. (The fetch loop observes too: compared and
	// swapped, so that neither loses the other's filter.)
	var old *stall
	for {
		old = w.consumerStall.Load()
		if now != nil {
			now.filtered = len(filters) > 0 || old != nil && old.filtered
		}
		if w.consumerStall.CompareAndSwap(old, now) {
			break
		}
	}
	switch {
	case now == nil && old != nil && old.filtered:
		// JetStream's consumer moved past the jobs its filter left out:
		// it never delivers them. They stay in the stream until the ack
		// floor passes them, and the backstop dead-letters them.
		w.cfg.Logger.Warn().Str("consumer", topo.Consumer).
			Msg("the consumer delivers every job again, but not the jobs its filter passed over: once later jobs are acked, they are " +
				"dead-lettered as max_deliveries (never run; replay them: publish dlq replay)")
	case now == nil && old != nil:
		w.cfg.Logger.Info().Str("consumer", topo.Consumer).Msg("the consumer delivers every job again")
	case now != nil && (old == nil || old.paused != now.paused || (!now.paused && old.why != now.why)):
		// A pause's remaining time changes every second: said once.
		w.cfg.Logger.Warn().Str("consumer", topo.Consumer).Str("reason", now.why).Msg("jobs wait: the consumer does not deliver them")
	}
}

// stall is why the consumer delivers some jobs or none.
type stall struct {
	paused  bool // paused
	refused bool // its limits refuse the workers' pull requests; neither: filtered
	// filtered: a filter was set at some point of the stall, whatever
	// else held it (see observeStall).
	filtered bool
	why      string
}

// watchTopology compares JetStream with the configuration every
// SweepInterval while the worker runs, and warns of each difference once
// (and once more when it goes). The worker sets the streams, the bucket and
// the consumer at its start only, and the record path's guarantees rest on
// their settings: a change between starts (nats stream edit) can drop
// records (a short max_age, discard old under a limit) or let a job have
// two (max_msgs_per_subject above 1), unseen until the next start. What is
// missing is the record path's to recreate; the consumer's ack wait, pause
// and filter are watched every second (watchConsumer).
func (w *Worker) watchTopology(ctx context.Context) {
	seen := map[string]bool{}
	for range clock.Ticks(ctx, w.cfg.SweepInterval) {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		drifts, err := w.cfg.Topology.Check(cctx, w.js)
		cancel()
		if err != nil && !errors.As(err, new(*jobs.DriftError)) {
			continue // JetStream unreachable: the record path says so
		}
		now := map[string]bool{}
		for _, d := range drifts {
			if d.Missing {
				continue
			}
			now[d.Difference()] = true
			switch {
			case seen[d.Difference()]:
			case !d.Updatable:
				// A worker's start cannot set this back: it refuses to run
				// (DriftError). Said as such, with what to do, before the
				// fleet's next restart finds it.
				w.cfg.Logger.Error().Str("drift", d.Difference()).Str("fix", d.Fix).
					Msg("JetStream differs from the configuration (changed while the workers run) in a way JetStream cannot change back: " +
						"workers started now refuse to run until it is fixed")
			default:
				w.cfg.Logger.Warn().Str("drift", d.Difference()).
					Msg("JetStream differs from the configuration (changed while the workers run): records may be dropped or doubled; a worker's start sets it back")
			}
		}
		for d := range seen {
			if !now[d] {
				w.cfg.Logger.Info().Str("drift", d).Msg("JetStream matches the configuration again")
			}
		}
		seen = now
	}
}

// raise sets v to n if n is greater, and reports whether it did. The
// consumer's creation is read by the watcher and by the fetch loop at
// once: a read answered before the consumer was created again, taken in
// last, must not set it back (the old consumer's jobs in flight would no
// longer be known as replaced).
func raise(v *atomic.Int64, n int64) bool {
	for {
		old := v.Load()
		if n <= old {
			return false
		}
		if v.CompareAndSwap(old, n) {
			return true
		}
	}
}
