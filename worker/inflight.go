package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// inflight is the set of deliveries being worked on, kept alive by one
// heartbeat for all of them rather than a timer per job.
type inflight struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]delivery
}

type delivery struct {
	seq  uint64    // stream sequence
	last time.Time // last sign of life sent
}

func (f *inflight) add(m jetstream.Msg, seq uint64) {
	f.mu.Lock()
	if f.msgs == nil {
		f.msgs = make(map[jetstream.Msg]delivery)
	}
	f.msgs[m] = delivery{seq: seq, last: time.Now()}
	f.mu.Unlock()
}

// holds reports whether a delivery of the job at seq is in flight here.
func (f *inflight) holds(seq uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.msgs {
		if d.seq == seq {
			return true
		}
	}
	return false
}

func (f *inflight) remove(m jetstream.Msg) {
	f.mu.Lock()
	delete(f.msgs, m)
	f.mu.Unlock()
}

func (f *inflight) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs)
}

// due returns the deliveries not signalled within d, marking them signalled.
func (f *inflight) due(d time.Duration) []jetstream.Msg {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []jetstream.Msg
	for m, dl := range f.msgs {
		if now.Sub(dl.last) >= d {
			out = append(out, m)
			f.msgs[m] = delivery{seq: dl.seq, last: now}
		}
	}
	return out
}

// heartbeat tells JetStream that long-running jobs (retrying, waiting for a
// Retry-After, held by an open circuit) are alive, a third of AckWait after
// their last sign, so they are not redelivered to another worker meanwhile.
func (w *Worker) heartbeat(ctx context.Context) {
	every := w.cfg.Topology.AckWait / 3
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, m := range w.inflight.due(every) {
			if err := m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				w.cfg.Logger.Warn().Err(err).Str("subject", m.Subject()).Msg("could not extend the ack wait of a job in flight")
			}
		}
	}
}

// history remembers the failures of jobs that were naked, so the dead
// letter of their last delivery tells the whole story. It is per process
// and bounded: a job redelivered to another worker, or forgotten when the
// map is full, keeps only the failures of its later deliveries.
type history struct {
	mu    sync.Mutex
	max   int
	bySeq map[uint64][]jobs.Failure
}

func newHistory(max int) history { return history{max: max, bySeq: make(map[uint64][]jobs.Failure)} }

func (h *history) add(seq uint64, f []jobs.Failure) {
	if len(f) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.bySeq[seq]; !ok && len(h.bySeq) >= h.max {
		for k := range h.bySeq { // drop any one: the map is a cache
			delete(h.bySeq, k)
			break
		}
	}
	all := append(h.bySeq[seq], f...)
	if len(all) > jobs.MaxHistory {
		all = all[len(all)-jobs.MaxHistory:]
	}
	h.bySeq[seq] = all
}

func (h *history) take(seq uint64) []jobs.Failure {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.bySeq[seq]
	delete(h.bySeq, seq)
	return f
}
