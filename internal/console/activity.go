package console

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// Activity is counted in slots of slotWidth over the last window.
const (
	slotWidth = 30 * time.Second
	slots     = 30 // 15 minutes
	window    = slots * slotWidth
)

// activity counts finished jobs per slot: successes from the results
// stream, dead letters from the dead-letter stream, both as they are
// stored (so a dead letter replayed since still counts where it failed),
// and jobs enqueued, from samples of the jobs stream's last sequence.
type activity struct {
	mu        sync.Mutex
	succeeded map[int64]map[jobs.Op]int
	dead      map[int64]map[jobs.Op]int
	// enqueued: the jobs stream's last sequence sampled over time; only
	// known since the console started.
	samples []seqSample
	// lastResult is the last success counted: a follow started again
	// reads the window again from its start.
	lastResult seqSample
}

type seqSample struct {
	at  time.Time
	seq uint64
}

func newActivity() *activity {
	return &activity{succeeded: map[int64]map[jobs.Op]int{}, dead: map[int64]map[jobs.Op]int{}}
}

func slotOf(t time.Time) int64 { return t.UnixNano() / int64(slotWidth) }

func (a *activity) add(m map[int64]map[jobs.Op]int, at time.Time, op jobs.Op) {
	if time.Since(at) > window {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := slotOf(at)
	if m[s] == nil {
		m[s] = map[jobs.Op]int{}
	}
	m[s][op]++
	maps.DeleteFunc(m, func(k int64, _ map[jobs.Op]int) bool { return k <= s-2*slots })
}

func (a *activity) succeed(at time.Time, op jobs.Op)      { a.add(a.succeeded, at, op) }
func (a *activity) deadLettered(at time.Time, op jobs.Op) { a.add(a.dead, at, op) }

// newResult reports whether the result stored at seq and at has not been
// counted yet, and notes it as counted. One at or below the last sequence
// counted, and no later, was; a results stream created again numbers its
// results from 1 again, at later times.
func (a *activity) newResult(seq uint64, at time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq <= a.lastResult.seq && !at.After(a.lastResult.at) {
		return false
	}
	a.lastResult = seqSample{at: at, seq: seq}
	return true
}

func (a *activity) sample(at time.Time, lastSeq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.samples = append(a.samples, seqSample{at, lastSeq})
	for len(a.samples) > 0 && at.Sub(a.samples[0].at) > window+slotWidth {
		a.samples = a.samples[1:]
	}
}

// activitySlot is one slot of the chart.
type activitySlot struct {
	Start     time.Time
	Succeeded int
	Dead      int
	// Enqueued is -1 when unknown (before the console started).
	Enqueued int
}

// activityView is the last window of activity.
type activityView struct {
	Slots     []activitySlot
	Succeeded map[jobs.Op]int
	Dead      map[jobs.Op]int
	Total     struct{ Succeeded, Dead int }
}

func (a *activity) view(now time.Time) activityView {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := activityView{Succeeded: map[jobs.Op]int{}, Dead: map[jobs.Op]int{}}
	last := slotOf(now)
	for s := last - slots + 1; s <= last; s++ {
		sl := activitySlot{Start: time.Unix(0, s*int64(slotWidth)), Enqueued: -1}
		for op, n := range a.succeeded[s] {
			sl.Succeeded += n
			v.Succeeded[op] += n
		}
		for op, n := range a.dead[s] {
			sl.Dead += n
			v.Dead[op] += n
		}
		v.Total.Succeeded += sl.Succeeded
		v.Total.Dead += sl.Dead
		sl.Enqueued = a.enqueuedIn(sl.Start, sl.Start.Add(slotWidth))
		v.Slots = append(v.Slots, sl)
	}
	return v
}

// enqueuedIn estimates the jobs stored in [from, to) from the samples
// around it (samples are in time order), -1 when none cover it.
func (a *activity) enqueuedIn(from, to time.Time) int {
	var lo, hi *seqSample
	for i := range a.samples {
		s := &a.samples[i]
		// lo: the last sample at or before from, else the first inside.
		if !s.at.After(from) || (lo == nil && s.at.Before(to)) {
			lo = s
		}
		// hi: the first sample at or after to, else the last one.
		if hi == nil || hi.at.Before(to) {
			hi = s
		}
	}
	if lo == nil || hi == nil || !hi.at.After(lo.at) || !hi.at.After(from) {
		return -1
	}
	if hi.seq < lo.seq {
		return 0
	}
	return int(hi.seq - lo.seq)
}

// followResults counts the successes stored over the last window, then as
// they come. It reads headers only: the subject says the op.
func followResults(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, a *activity) error {
	s, err := js.Stream(ctx, topo.ResultsStream)
	if err != nil {
		return fmt.Errorf("results stream %s: %w", topo.ResultsStream, err)
	}
	start := time.Now().Add(-window)
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topo.Subjects.ResultFilter()},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
		HeadersOnly:    true,
	})
	if err != nil {
		return fmt.Errorf("follow results stream %s: %w", topo.ResultsStream, err)
	}
	err = consume(ctx, cons, func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil || !a.newResult(meta.Sequence.Stream, meta.Timestamp) {
			return
		}
		op := jobs.OpUnknown
		if r, ok := topo.Subjects.ParseResult(msg.Subject()); ok {
			op = r.Op
		}
		a.succeed(meta.Timestamp, op)
	})
	if err != nil {
		return fmt.Errorf("follow results stream %s: %w", topo.ResultsStream, err)
	}
	return nil
}
