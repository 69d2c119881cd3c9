package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// delivery is one delivery of a job message to this worker, from the fetch
// loop until it is settled (acked or naked). It gives its slot back once,
// and keeps progress signals from crossing its settlement.
type delivery struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata

	releaseOnce sync.Once
	releaseFn   func()

	received time.Time // when this process took the delivery
	// consumerCreated is when the consumer that delivered it was created.
	consumerCreated time.Time
	// jobsStream is the worker's records.created, and jobsStreamSeen its
	// value when the delivery was taken: see void.
	jobsStream     *atomic.Int64
	jobsStreamSeen int64
	// consumer is the worker's consumerCreated: see replaced.
	consumer *atomic.Int64
	// elsewhere: held by a pause after it may have waited past its ack
	// wait in the prefetch buffer (Worker.mayBeElsewhere), so it is not
	// handed back (see handBackHeld). Read and written by the fetch loop.
	elsewhere bool
	// body and header are the job's message as the jobs stream holds it,
	// read by process when the consumer delivered its headers alone (see
	// Worker.readBody); nil otherwise. Only process's goroutine uses them.
	body   []byte
	header nats.Header

	mu      sync.Mutex
	settled bool
	last    time.Time // last sign of life sent (heartbeat)
}

// mayHaveRival reports whether another delivery of the job may have run
// beside this one. JetStream redelivers a job only after an ack wait
// without a sign of life, so a job taken and stored within less than limit
// (half the ack wait) has none — unless it waited, in the stream or in this
// process's prefetch buffer (where no heartbeat keeps it), longer than
// that: its age counts from when the stream stored it, and from when this
// process took it, whichever is longer (the clocks of the server and this
// process may differ).
func (d *delivery) mayHaveRival(limit time.Duration) bool {
	return time.Since(d.received) >= limit || time.Since(d.meta.Timestamp) >= limit
}

// mayBeAgain reports whether the job may have been delivered before,
// although this is its first delivery: it was stored before its consumer
// was created (a consumer deleted and created again delivers anew what the
// old one had delivered, and a worker may have run and recorded it). The
// two times are stamped by the servers leading the stream and the
// consumer, whose clocks may differ: a job stored up to a second after the
// consumer's creation counts as before it. A busy worker's pull ends at
// the new consumer's first delivery, whose consumer sequence starts again
// (see take); one whose sequences have already passed the pull's (the old
// consumer young) is caught when the worker reads the new creation, within
// consumerWatchEvery: a job recorded with its ack lost, delivered in that
// second, can run again.
func (d *delivery) mayBeAgain() bool {
	return d.meta.Timestamp.Before(d.consumerCreated.Add(time.Second))
}

// errVoidDelivery: see delivery.void.
var errVoidDelivery = errors.New("not sent: the jobs stream was created again since this job was delivered, and its sequence may name another job now")

// void reports whether the delivery's message belongs to a jobs stream
// deleted since it was taken: the worker has read a newer stream's creation
// since, and the message was stored before it. An ack, a nak or a progress
// signal names only the consumer and the stream sequence, so the server
// applies it to the new stream's message at that sequence: an ack settles
// another job unrun, a nak hands it to a second worker while it runs. A
// delivery taken after the worker read the stream is never void, so a
// stream leader's clock behind the creator's cannot void a new job.
func (d *delivery) void() bool {
	return d.jobsStream != nil && outlived(d.jobsStream.Load(), d.jobsStreamSeen, d.meta.Timestamp)
}

// outlived reports whether a message stored at stored, taken while the
// worker knew the jobs stream created at seen, belongs to a stream deleted
// since: the stream the worker knows now was created at created, after it.
func outlived(created, seen int64, stored time.Time) bool {
	return created != seen && stored.UnixNano() < created
}

// errReplacedConsumer: see delivery.replaced.
var errReplacedConsumer = errors.New("not sent: the consumer was created again since this job was delivered, and a nak would reach the new consumer's delivery of it")

// replaced reports whether the consumer that delivered it has been deleted
// and created again (same name) since: the worker has read a later
// creation. A nak names only the consumer and the sequences, so the server
// would apply it to the new consumer's delivery of the same job, perhaps
// running on another worker, and hand the job out a second time. Not
// handed back, the job comes again after the ack wait.
func (d *delivery) replaced() bool {
	return d.consumer != nil && d.consumer.Load() > d.consumerCreated.UnixNano()
}

// release gives the delivery's slot back to the fetch loop (once).
func (d *delivery) release() { d.releaseOnce.Do(d.releaseFn) }

// inProgress extends the ack wait unless the delivery is settled. A progress
// signal that reached the server after a nak would restart the ack wait and
// cancel the nak's delay, so the two never cross.
func (d *delivery) inProgress() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled || d.void() {
		return nil
	}
	return d.msg.InProgress()
}

// ack settles the delivery.
func (d *delivery) ack() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settled = true
	if d.void() {
		return errVoidDelivery
	}
	return d.msg.Ack()
}

// nak settles the delivery; JetStream redelivers it after delay.
func (d *delivery) nak(delay time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settled = true
	if d.void() {
		return errVoidDelivery
	}
	if d.replaced() {
		return errReplacedConsumer
	}
	return d.msg.NakWithDelay(delay)
}

func (d *delivery) seq() uint64 { return d.meta.Sequence.Stream }

// data is the job's body: the delivery's, or the one read from the
// stream when it came without (see Worker.readBody).
func (d *delivery) data() []byte {
	if d.body != nil {
		return d.body
	}
	return d.msg.Data()
}

// headers are the job's headers, as data.
func (d *delivery) headers() nats.Header {
	if d.body != nil {
		return d.header
	}
	return d.msg.Headers()
}

// inflight is the set of deliveries this worker holds, kept alive by one
// heartbeat for all of them rather than a timer per job.
type inflight struct {
	mu sync.Mutex
	ds map[*delivery]struct{}
	// byMsg counts the deliveries held by stored message: holdsMsg is
	// asked for every job taken, and a walk of ds would cost each job time
	// in proportion to the concurrency, under the lock the heartbeat takes.
	byMsg map[msgIdentity]int
}

func (d *delivery) stored() msgIdentity {
	return msgIdentity{d.meta.Sequence.Stream, d.meta.Timestamp.UnixNano()}
}

func (f *inflight) add(d *delivery) {
	f.mu.Lock()
	d.mu.Lock()
	d.last = time.Now()
	d.mu.Unlock()
	if _, ok := f.ds[d]; !ok {
		if f.byMsg == nil {
			f.byMsg = map[msgIdentity]int{}
		}
		f.byMsg[d.stored()]++
	}
	f.ds[d] = struct{}{}
	f.mu.Unlock()
}

// any reports whether a delivery held here satisfies pred.
func (f *inflight) any(pred func(*delivery) bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for d := range f.ds {
		if pred(d) {
			return true
		}
	}
	return false
}

// holdsMsg reports whether a delivery of the stored message id is held
// here. The sequence alone is another job's once the jobs stream is created
// again (its sequences start at 1 again): a new job taken for an old one in
// flight would be handed back, and the old one's ack, which names the
// consumer and the sequence alone, would then ack it unrun.
func (f *inflight) holdsMsg(id msgIdentity) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byMsg[id] > 0
}

func (f *inflight) remove(d *delivery) {
	f.mu.Lock()
	if _, ok := f.ds[d]; ok {
		delete(f.ds, d)
		if id := d.stored(); f.byMsg[id] > 1 {
			f.byMsg[id]--
		} else {
			delete(f.byMsg, id)
		}
	}
	f.mu.Unlock()
}

func (f *inflight) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ds)
}

// byOp counts the deliveries held, in all and by the op their subject
// names.
func (f *inflight) byOp(subj jobs.Subjects) (int, map[jobs.Op]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ds) == 0 {
		return 0, nil
	}
	ops := map[jobs.Op]int{}
	for d := range f.ds {
		_, op := subj.ParseJob(d.msg.Subject())
		ops[op]++
	}
	return len(f.ds), ops
}

// due returns the deliveries not signalled within every, marking them
// signalled.
func (f *inflight) due(every time.Duration) []*delivery {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*delivery
	for d := range f.ds {
		d.mu.Lock()
		if now.Sub(d.last) >= every {
			d.last = now
			out = append(out, d)
		}
		d.mu.Unlock()
	}
	return out
}

// heartbeat tells JetStream that long-running jobs (retrying, waiting for a
// Retry-After, held by an open circuit, waiting for their record to be
// stored) are alive, a third of the ack wait after their last sign, so they
// are not redelivered to another worker meanwhile. The ack wait is the
// consumer's when an operator shortened it while the worker runs (ackWait):
// the heartbeat wakes at once when it changes.
func (w *Worker) heartbeat(ctx context.Context) {
	for {
		every := w.ackWait() / 3
		t := time.NewTimer(every / 2)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-w.ackWaitChanged:
			t.Stop()
			every = w.ackWait() / 3
		}
		for _, d := range w.inflight.due(every) {
			if err := d.inProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				w.cfg.Logger.Warn().Err(err).Uint64("stream_seq", d.seq()).Msg("could not extend the ack wait of a job in flight")
			}
		}
	}
}

// history remembers the failures of jobs that were naked, so the dead
// letter of their last delivery tells the whole story. It is per process
// and bounded (historyJobs): a job redelivered to another worker, or forgotten when the
// map is full, keeps only the failures of its later deliveries.
//
// A job is known by its stored message, its sequence and the time
// JetStream stored it: a sequence alone is another job's once the jobs
// stream is created again, and that job's dead letter would tell the old
// one's failures (another publisher's errors) as its own.
type history struct {
	mu    sync.Mutex
	byKey map[msgIdentity][]jobs.Failure
}

// historyJobs bounds the jobs a history remembers.
const historyJobs = 10000

// msgIdentity names one message of the jobs stream, whatever its stream's
// generation.
type msgIdentity struct {
	seq uint64
	at  int64 // UnixNano of when it was stored
}

func (h *history) add(j *job, f []jobs.Failure) {
	if len(f) == 0 {
		return
	}
	k := j.stored()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.byKey[k]; !ok && len(h.byKey) >= historyJobs {
		for k := range h.byKey { // drop any one: the map is a cache
			delete(h.byKey, k)
			break
		}
	}
	all := append(h.byKey[k], f...)
	if len(all) > jobs.MaxHistory {
		all = all[len(all)-jobs.MaxHistory:]
	}
	h.byKey[k] = all
}

func (h *history) take(j *job) []jobs.Failure {
	k := j.stored()
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.byKey[k]
	delete(h.byKey, k)
	return f
}
