package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
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
	if info == nil {
		return
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
