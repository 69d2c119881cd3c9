// Package dlq works the dead-letter queue of clerkjobs: it lists dead
// letters by their headers, shows one, replays them to the jobs stream, and
// purges them. It is the library behind `publish dlq`, and what tests use to
// inspect the queue.
//
// # Reading
//
// Entries streams the queue through an ordered consumer, filtered by start
// time (and a tenant's subjects) on the server and by op and headers here, so a queue of
// 100,000 dead letters is read without holding it in memory; WithoutPayload
// asks the server for headers only. List collects the same entries.
//
// # Replaying without losing or duplicating
//
// Replay republishes a dead letter's original payload to its original
// subject and deletes the dead letter only after JetStream acknowledged the
// republished job. Its Nats-Msg-Id is derived from the dead letter (see
// ReplayMsgID): the dead-letter stream's creation time, the dead-letter
// sequence and the replay count it will carry.
// A replay interrupted after the republish was acknowledged but before the
// delete leaves the dead letter unchanged, so a re-run sends the same
// message id again and the jobs stream drops it as a duplicate, provided the
// re-run happens within the jobs stream's deduplication window
// (jobs.Topology.DedupWindow, 2 minutes by default). Replay narrows that gap
// further: once an entry's republish has started it finishes that entry
// (republish and delete) even when its context is cancelled, so an
// interrupt stops between entries. If the delete itself fails, the report
// says so for that entry and Replay stops.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// Queue is the dead-letter stream of a topology. A topology whose Subjects
// name a tenant (a tenant's publisher's) opens a queue of that tenant's
// dead letters only: the others are not listed, read, replayed or purged.
type Queue struct {
	js     jetstream.JetStream
	topo   jobs.Topology
	stream jetstream.Stream
}

// Open finds the dead-letter stream of topo. It fails, wrapping
// jetstream.ErrStreamNotFound, when the stream does not exist yet (the
// worker creates it when it starts).
func Open(ctx context.Context, js jetstream.JetStream, topo jobs.Topology) (*Queue, error) {
	if err := topo.Validate(); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, topo.DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("open dead-letter stream %s: %w", topo.DeadLetterStream, err)
	}
	return &Queue{js: js, topo: topo, stream: s}, nil
}

// Topology is the topology the queue was opened with.
func (q *Queue) Topology() jobs.Topology { return q.topo }

// Entry is one dead letter.
type Entry struct {
	// Seq is the dead letter's sequence in the dead-letter stream: the
	// number operators use to name it.
	Seq uint64
	// Subject is the dead-letter subject
	// (<prefix>.dlq.<tenant>.<op>.<id key>.<generation>.<seq>; a letter
	// stored before records had a subject each: <prefix>.dlq.<op>).
	Subject string
	// Op is the job type, from the subject (OpUnknown for a job that came
	// on a subject no job type owns).
	Op jobs.Op
	// Time is when the dead letter was stored.
	Time time.Time
	// DeadLetter is what its headers say.
	DeadLetter jobs.DeadLetter
	// HeaderErr is set when headers are missing or malformed. Such an entry
	// is still listed, so nothing in the queue is hidden from operators.
	HeaderErr error
	// Header is the message's raw headers.
	Header nats.Header
	// Payload is the original job body (secrets of refresh jobs redacted by
	// the worker); nil when read WithoutPayload.
	Payload []byte
	// Size is the payload's length in bytes, also when it was not read.
	Size int
}

// Filter selects dead letters. Each non-empty field must match (AND); a
// field with several values matches any of them (OR). The zero Filter
// selects everything.
type Filter struct {
	Ops        []jobs.Op
	Classes    []jobs.ErrorClass
	ClerkCodes []string
	// Since (inclusive) and Until (exclusive) bound the time the dead
	// letter was stored; zero means unbounded.
	Since, Until time.Time
	JobIDs       []string
	// Seqs are dead-letter sequences; when set, only those are read (by
	// direct get, without scanning the stream).
	Seqs []uint64
}

// Match reports whether e passes f.
func (f Filter) Match(e Entry) bool {
	switch {
	case len(f.Ops) > 0 && !slices.Contains(f.Ops, e.Op):
		return false
	case len(f.Classes) > 0 && !slices.Contains(f.Classes, e.DeadLetter.Error.Class):
		return false
	case len(f.ClerkCodes) > 0 && !slices.Contains(f.ClerkCodes, e.DeadLetter.Error.ClerkCode):
		return false
	case !f.Since.IsZero() && e.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !e.Time.Before(f.Until):
		return false
	case len(f.JobIDs) > 0 && !slices.Contains(f.JobIDs, e.DeadLetter.JobID):
		return false
	case len(f.Seqs) > 0 && !slices.Contains(f.Seqs, e.Seq):
		return false
	}
	return true
}

// Option configures List, Entries, Replay and Purge; each says which
// options it reads.
type Option func(*options)

type options struct {
	noPayload bool
	dryRun    bool
	rate      float64
	progress  func(EntryReport)
	timeout   time.Duration
	expect    func(Entry) error
}

// WithoutPayload reads headers only (Entries, List): Entry.Payload is nil.
func WithoutPayload() Option { return func(o *options) { o.noPayload = true } }

// WithDryRun makes Replay check every entry and report what it would do,
// changing nothing.
func WithDryRun() Option { return func(o *options) { o.dryRun = true } }

// WithRate limits Replay to perSecond republished jobs per second (0: no
// limit), so that a large replay does not flood Clerk's rate limits.
func WithRate(perSecond float64) Option { return func(o *options) { o.rate = perSecond } }

// ParseRate reads a replay rate as people write it, "20", "20/s", "600/m"
// or "3600/h", as jobs per second for WithRate; "" is 0, no limit. A rate
// that is not a finite number, or slower than one job an hour, is refused:
// NaN or Inf would mean no limit, the opposite of what was asked, and a
// rate of 1e-300 a replay that never ends.
func ParseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%q: want a positive number per second, like 20 or 20/s, 600/m", s)
	}
	switch unit {
	case "", "s":
	case "m":
		n /= 60
	case "h":
		n /= 3600
	default:
		return 0, fmt.Errorf("%q: the unit after / must be s, m or h", s)
	}
	if n < 1.0/3600 {
		return 0, fmt.Errorf("%q: slower than one job an hour; give at least 1/h", s)
	}
	return n, nil
}

// WithProgress has Replay and Purge call fn after each entry, from the
// calling goroutine.
func WithProgress(fn func(EntryReport)) Option { return func(o *options) { o.progress = fn } }

// WithExpect makes Replay and Purge act on a dead letter only when expect,
// given it as read just before, returns nil; one it refuses is skipped,
// with the error as the reason, and stays in the queue. Sequences name
// letters only within one stream: a dead-letter stream deleted and created
// again numbers its letters from 1, so a caller acting on letters chosen
// earlier (a page an operator saw) checks each is still the one chosen.
// With it, Purge reads each letter before deleting it.
func WithExpect(expect func(Entry) error) Option { return func(o *options) { o.expect = expect } }

// WithTimeout bounds each request of Replay and Purge (publish, get,
// delete); 10 seconds by default.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

func collect(opts []Option) options {
	o := options{timeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// ErrNotFound is returned by Get for a sequence that is not in the queue
// (never was, or was replayed or purged).
var ErrNotFound = errors.New("no such dead letter")

// Get reads one dead letter with its payload.
func (q *Queue) Get(ctx context.Context, seq uint64) (Entry, error) {
	raw, err := q.stream.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound), err == nil && !q.owns(raw.Subject) && q.scoped():
		// A sequence is the whole stream's: in a tenant's queue another
		// tenant's letter reads as none, word for word. Its subject (their
		// name, their job id) is theirs, and an answer of its own would
		// tell which sequences hold other tenants' letters, and when they
		// fail.
		if q.scoped() {
			return Entry{}, fmt.Errorf("dead letter %d: %w in the queue of tenant %s (replayed or purged already, never there, or another tenant's)", seq, ErrNotFound, q.topo.Subjects.Tenant)
		}
		return Entry{}, fmt.Errorf("dead letter %d: %w (replayed or purged already, or never there)", seq, ErrNotFound)
	case err != nil:
		return Entry{}, fmt.Errorf("read dead letter %d from %s: %w", seq, q.topo.DeadLetterStream, err)
	case !q.owns(raw.Subject):
		return Entry{}, fmt.Errorf("dead letter %d: %w (not under %s)", seq, ErrNotFound, q.topo.Subjects.DeadLetterScope())
	}
	return q.entry(raw.Sequence, raw.Subject, raw.Time, raw.Header, raw.Data, len(raw.Data)), nil
}

func (q *Queue) owns(subject string) bool {
	return jobs.MatchSubject(q.topo.Subjects.DeadLetterScope(), subject)
}

// scoped reports whether the queue holds one tenant's dead letters only.
func (q *Queue) scoped() bool { return q.topo.Subjects.Tenant != "" }

func (q *Queue) entry(seq uint64, subject string, at time.Time, h nats.Header, data []byte, size int) Entry {
	e := Entry{Seq: seq, Subject: subject, Time: at, Header: h, Payload: data, Size: size}
	e.DeadLetter, e.HeaderErr = jobs.ParseDeadLetter(h)
	e.Op = q.topo.Subjects.OpOfDeadLetter(subject)
	if e.Op == jobs.OpUnknown && e.DeadLetter.Op.Valid() {
		e.Op = e.DeadLetter.Op
	}
	return e
}

// List returns the entries f selects, oldest first. It holds them all in
// memory: for a large queue prefer Entries, or WithoutPayload.
func (q *Queue) List(ctx context.Context, f Filter, opts ...Option) ([]Entry, error) {
	var out []Entry
	for e, err := range q.Entries(ctx, f, opts...) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Seqs returns the sequences of entries, the argument Replay and Purge
// take.
func Seqs(entries []Entry) []uint64 {
	s := make([]uint64, len(entries))
	for i, e := range entries {
		s[i] = e.Seq
	}
	return s
}

// Entries yields the entries f selects, oldest first, as the stream held
// them when the call started: dead letters stored later are not included.
// It stops at the first error, which it yields with a zero Entry.
func (q *Queue) Entries(ctx context.Context, f Filter, opts ...Option) iter.Seq2[Entry, error] {
	o := collect(opts)
	if len(f.Seqs) > 0 {
		return q.bySeq(ctx, f, o)
	}
	return func(yield func(Entry, error) bool) {
		if err := q.scan(ctx, f, o, yield); err != nil {
			yield(Entry{}, err)
		}
	}
}

// bySeq reads the listed sequences directly.
func (q *Queue) bySeq(ctx context.Context, f Filter, o options) iter.Seq2[Entry, error] {
	seqs := slices.Compact(slices.Sorted(slices.Values(f.Seqs)))
	return func(yield func(Entry, error) bool) {
		for _, seq := range seqs {
			e, err := q.Get(ctx, seq)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				yield(Entry{}, err)
				return
			}
			if o.noPayload {
				e.Payload = nil
			}
			if f.Match(e) && !yield(e, nil) {
				return
			}
		}
	}
}

// idleCheck is how long scan waits for the next message before asking the
// server whether any are left: messages can be deleted (replayed, purged)
// between the moment the consumer counted them and their delivery.
const idleCheck = 2 * time.Second

func (q *Queue) scan(ctx context.Context, f Filter, o options, yield func(Entry, error) bool) error {
	info, err := q.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		HeadersOnly:       o.noPayload,
		InactiveThreshold: 30 * time.Second,
	}
	// Ops are matched here, not by subject on the server: a letter on a
	// subject that names no op (written some other way) takes its op from
	// its Dlq-Op header, and is listed under it; a filter by subject
	// missed it under every op, unknown too.
	if q.scoped() {
		cfg.FilterSubjects = []string{q.topo.Subjects.DeadLetterScope()}
	}
	if !f.Since.IsZero() {
		since := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := q.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return nil
	}
	for {
		next, cancel := context.WithTimeout(ctx, idleCheck)
		msg, err := it.Next(jetstream.NextContext(next))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				ci, ierr := cons.Info(ctx)
				if ierr != nil {
					return fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, ierr)
				}
				if ci.NumPending == 0 || ci.Delivered.Stream >= last {
					return nil
				}
				continue
			}
			return fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, err)
		}
		if meta.Sequence.Stream > last {
			return nil
		}
		size := len(msg.Data())
		data := msg.Data()
		if o.noPayload {
			data = nil
			if n, err := strconv.Atoi(msg.Headers().Get(nats.MsgSize)); err == nil {
				size = n
			}
		}
		e := q.entry(meta.Sequence.Stream, msg.Subject(), meta.Timestamp, msg.Headers(), data, size)
		if f.Match(e) && !yield(e, nil) {
			return nil
		}
		if meta.NumPending == 0 || meta.Sequence.Stream == last {
			return nil
		}
	}
}

// Stats summarizes the queue.
type Stats struct {
	// Entries and Bytes are the stream's totals.
	Entries uint64
	Bytes   uint64
	// ByOp and ByClass count entries per op and per error class;
	// ByOpClass crosses them. An entry without a class counts under "".
	ByOp      map[jobs.Op]uint64
	ByClass   map[jobs.ErrorClass]uint64
	ByOpClass map[jobs.Op]map[jobs.ErrorClass]uint64
	// Oldest and Newest are the times of the first and last entry.
	Oldest, Newest time.Time
}

// Stats counts the queue's entries by op and class, reading headers only.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	st := Stats{
		ByOp:      map[jobs.Op]uint64{},
		ByClass:   map[jobs.ErrorClass]uint64{},
		ByOpClass: map[jobs.Op]map[jobs.ErrorClass]uint64{},
	}
	info, err := q.stream.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, err)
	}
	if !q.scoped() { // else counted below: the stream holds other tenants' too
		st.Entries, st.Bytes = info.State.Msgs, info.State.Bytes
	}
	for e, err := range q.Entries(ctx, Filter{}, WithoutPayload()) {
		if err != nil {
			return st, err
		}
		if q.scoped() {
			st.Entries++
			st.Bytes += uint64(e.Size)
		}
		c := e.DeadLetter.Error.Class
		st.ByOp[e.Op]++
		st.ByClass[c]++
		if st.ByOpClass[e.Op] == nil {
			st.ByOpClass[e.Op] = map[jobs.ErrorClass]uint64{}
		}
		st.ByOpClass[e.Op][c]++
		if st.Oldest.IsZero() {
			st.Oldest = e.Time
		}
		st.Newest = e.Time
	}
	return st, nil
}
