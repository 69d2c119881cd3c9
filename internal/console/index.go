package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// row is one dead letter as the index keeps it: what the list shows and
// the filters of `publish dlq list` test, nothing more.
type row struct {
	Seq     uint64
	At      int64 // when the dead letter was stored, Unix nanoseconds
	Op      jobs.Op
	Class   jobs.ErrorClass
	Code    string
	JobID   string
	Message string // the error, cut to maxMessage
	Status  int32  // Clerk's HTTP status
	Replays int32
	Size    int32
	// HeaderErr: headers missing or malformed; Redacted: secrets were
	// redacted, so it cannot be replayed.
	HeaderErr, Redacted bool
	gone                bool
}

// maxMessage bounds the error text kept per entry: the entry page reads
// the whole message.
const maxMessage = 160

// listMessage is a letter's error (its Dlq-Error) as the list keeps it:
// cut, or only its length when jobs.ShowHeader judges it may hold a
// secret, as the entry page shows it (headerText); a cut could split a
// secret so that it no longer looks like one.
func listMessage(m string) string {
	if _, secret := jobs.ShowHeader(jobs.HeaderError, m); secret {
		return jobs.HiddenHeader(m)
	}
	return cut(redact.All(m), maxMessage)
}

// entry is the part of a dlq.Entry that dlq.Filter.Match reads, so the
// console selects exactly what `publish dlq list` would.
func (r *row) entry() dlq.Entry {
	return dlq.Entry{
		Seq: r.Seq, Op: r.Op, Time: time.Unix(0, r.At),
		DeadLetter: jobs.DeadLetter{JobID: r.JobID, Error: jobs.ErrorInfo{Class: r.Class, ClerkCode: r.Code}},
	}
}

// Time is when the dead letter was stored.
func (r *row) Time() time.Time { return time.Unix(0, r.At) }

// index holds every dead letter's row, in stream order.
type index struct {
	mu   sync.RWMutex
	rows []row // sorted by seq; removed rows stay (gone) until compacted
	live int
	dead int // rows gone but not compacted yet
	// byOpClass counts the live rows.
	byOpClass map[jobs.Op]map[jobs.ErrorClass]int
	lastSeq   uint64 // the highest sequence received
	// created is when the stream the rows came from was created: a stream
	// deleted and created again under the same name starts its sequences
	// over, so rows of the old one would name the new one's letters.
	created time.Time
	ready   bool  // the first read has caught up with the stream
	err     error // why the index cannot follow the stream, if it cannot
	intern  map[string]string
	// onNew is told about every dead letter received (activity counts
	// them); it runs under mu.
	onNew func(at time.Time, op jobs.Op)
}

func newIndex(onNew func(time.Time, jobs.Op)) *index {
	return &index{byOpClass: map[jobs.Op]map[jobs.ErrorClass]int{}, intern: map[string]string{}, onNew: onNew}
}

// maxCode bounds an interned Clerk code, op or class: real ones are a few
// words, and a hostile header must not make the index keep megabytes.
const maxCode = 64

// keptJobID is how the index keeps a job id: valid ones are at most
// jobs.MaxJobIDLen bytes, so a longer one (an invalid job recorded with
// whatever its header said) is cut. Plans compare ids cut the same way.
func keptJobID(id string) string { return cut(id, jobs.MaxJobIDLen) }

// seen is what identifies a dead letter beyond its sequence: when it was
// stored and its job id. A plan keeps it for every letter it selects, so
// that a sequence reused by a recreated stream is never acted on.
type seen struct {
	At    int64
	JobID string
}

func (r *row) seen() seen { return seen{At: r.At, JobID: r.JobID} }

// seenOf is the identity of a dead letter read from the stream, cut like
// the index's rows.
func seenOf(e dlq.Entry) seen {
	return seen{At: e.Time.UnixNano(), JobID: keptJobID(e.DeadLetter.JobID)}
}

// bind returns the identity of each of seqs the index holds; sequences it
// does not hold are left out.
func (x *index) bind(seqs []uint64) map[uint64]seen {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[uint64]seen, len(seqs))
	for _, seq := range seqs {
		if i := x.find(seq); i >= 0 && !x.rows[i].gone {
			out[seq] = x.rows[i].seen()
		}
	}
	return out
}

// keep returns s in a copy that does not hold on to the message it was
// read from, shared with equal values already kept (codes, ops, classes
// repeat by the thousand).
func (x *index) keep(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := x.intern[s]; ok {
		return v
	}
	v := strings.Clone(cut(s, maxCode))
	if len(x.intern) < 10000 {
		x.intern[v] = v
	}
	return v
}

// add indexes one dead letter. Sequences arrive in stream order; one
// already indexed (an ordered consumer that restarted) is ignored.
func (x *index) add(e dlq.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e.Seq <= x.lastSeq {
		return
	}
	x.lastSeq = e.Seq
	d := e.DeadLetter
	r := row{
		Seq: e.Seq, At: e.Time.UnixNano(), Op: jobs.Op(x.keep(string(e.Op))), Class: jobs.ErrorClass(x.keep(string(d.Error.Class))),
		Code: x.keep(d.Error.ClerkCode), JobID: strings.Clone(keptJobID(d.JobID)), Message: strings.Clone(listMessage(d.Error.Message)),
		Status: int32(d.Error.HTTPStatus), Replays: int32(d.Replays), Size: int32(e.Size),
		HeaderErr: e.HeaderErr != nil, Redacted: !d.Replayable(),
	}
	x.rows = append(x.rows, r)
	x.live++
	x.count(r, 1)
	if x.onNew != nil {
		x.onNew(e.Time, e.Op)
	}
}

func (x *index) count(r row, n int) {
	m := x.byOpClass[r.Op]
	if m == nil {
		m = map[jobs.ErrorClass]int{}
		x.byOpClass[r.Op] = m
	}
	m[r.Class] += n
	if m[r.Class] == 0 {
		delete(m, r.Class)
	}
	if len(m) == 0 {
		delete(x.byOpClass, r.Op)
	}
}

// find returns the position of seq in rows, or -1.
func (x *index) find(seq uint64) int {
	i, ok := slices.BinarySearchFunc(x.rows, seq, func(r row, s uint64) int { return cmp.Compare(r.Seq, s) })
	if !ok {
		return -1
	}
	return i
}

// remove drops dead letters that were replayed, purged or deleted.
func (x *index) remove(seqs ...uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, seq := range seqs {
		x.removeLocked(seq)
	}
	x.compact()
}

func (x *index) removeLocked(seq uint64) {
	i := x.find(seq)
	if i < 0 || x.rows[i].gone {
		return
	}
	x.rows[i].gone = true
	x.live--
	x.dead++
	x.count(x.rows[i], -1)
}

// compact drops removed rows once they are most of the slice.
func (x *index) compact() {
	if x.dead < 1024 || x.dead < x.live {
		return
	}
	kept := make([]row, 0, x.live+x.live/4)
	for _, r := range x.rows {
		if !r.gone {
			kept = append(kept, r)
		}
	}
	x.rows, x.dead = kept, 0
}

// row returns the indexed row of seq.
func (x *index) row(seq uint64) (row, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i := x.find(seq)
	if i < 0 || x.rows[i].gone {
		return row{}, false
	}
	return x.rows[i], true
}

// indexStats is what the overview shows of the queue.
type indexStats struct {
	Entries   int
	ByOp      map[jobs.Op]int
	ByClass   map[jobs.ErrorClass]int
	ByOpClass map[jobs.Op]map[jobs.ErrorClass]int
	Oldest    time.Time
	Newest    time.Time
	Ready     bool
	Err       error
}

func (x *index) stats() indexStats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s := indexStats{Entries: x.live, ByOp: map[jobs.Op]int{}, ByClass: map[jobs.ErrorClass]int{}, ByOpClass: map[jobs.Op]map[jobs.ErrorClass]int{}, Ready: x.ready, Err: x.err}
	for op, m := range x.byOpClass {
		s.ByOpClass[op] = maps.Clone(m)
		for c, n := range m {
			s.ByOp[op] += n
			s.ByClass[c] += n
		}
	}
	for i := range x.rows {
		if !x.rows[i].gone {
			s.Oldest = x.rows[i].Time()
			break
		}
	}
	for i := len(x.rows) - 1; i >= 0; i-- {
		if !x.rows[i].gone {
			s.Newest = x.rows[i].Time()
			break
		}
	}
	return s
}

// matcher tests rows against a filter as dlq.Filter.Match does, with the
// job ids and Clerk codes in sets: Match looks each row's up in a slice,
// rows × values comparisons per page.
type matcher struct {
	f          dlq.Filter
	ids, codes map[string]bool // nil: not filtered on
}

func newMatcher(f dlq.Filter) matcher {
	m := matcher{f: f}
	set := func(vals []string) map[string]bool {
		out := make(map[string]bool, len(vals))
		for _, v := range vals {
			out[v] = true
		}
		return out
	}
	if len(f.JobIDs) > 0 {
		m.ids, m.f.JobIDs = set(f.JobIDs), nil
	}
	if len(f.ClerkCodes) > 0 {
		m.codes, m.f.ClerkCodes = set(f.ClerkCodes), nil
	}
	return m
}

func (m *matcher) match(r *row) bool {
	if (m.ids != nil && !m.ids[r.JobID]) || (m.codes != nil && !m.codes[r.Code]) {
		return false
	}
	return m.f.Match(r.entry())
}

// page is one page of the list, newest first.
type page struct {
	Rows []row
	// Matching counts every entry the filter selects.
	Matching int
	// Newer and Older are the cursors of the neighbouring pages (0: none).
	Newer, Older uint64
}

// page returns up to n entries f selects, newest first: those just older
// than before (0: the newest), or, when after is set, those just newer
// than after. It walks the index once, away from the cursor (oldest first
// after one, else newest first), so it answers in time linear in the
// queue whatever the filter, and counts the matches on the way.
func (x *index) page(f dlq.Filter, before, after uint64, n int) page {
	m := newMatcher(f)
	x.mu.RLock()
	defer x.mu.RUnlock()
	var p page
	// Newest first, skipped are the matches newer than the page, more the
	// ones older.
	var skipped, more bool
	visit := func(r *row) {
		if r.gone || !m.match(r) {
			return
		}
		p.Matching++
		switch {
		case after > 0 && r.Seq <= after, after == 0 && before > 0 && r.Seq >= before:
			skipped = true
		case len(p.Rows) < n:
			p.Rows = append(p.Rows, *r)
		default:
			more = true
		}
	}
	if after > 0 {
		for i := range x.rows {
			visit(&x.rows[i])
		}
		slices.Reverse(p.Rows)
		// Walked oldest first: what was skipped is older, the rest newer.
		skipped, more = more, skipped
	} else {
		for i := len(x.rows) - 1; i >= 0; i-- {
			visit(&x.rows[i])
		}
	}
	if len(p.Rows) > 0 {
		if skipped {
			p.Newer = p.Rows[0].Seq
		}
		if more {
			p.Older = p.Rows[len(p.Rows)-1].Seq
		}
	}
	return p
}

// selection returns the sequences of every entry f selects, oldest first,
// and how many there are of each op/class.
func (x *index) selection(f dlq.Filter) ([]uint64, map[string]int) {
	m := newMatcher(f)
	x.mu.RLock()
	defer x.mu.RUnlock()
	var seqs []uint64
	kinds := map[string]int{}
	for i := range x.rows {
		r := &x.rows[i]
		if r.gone || !m.match(r) {
			continue
		}
		seqs = append(seqs, r.Seq)
		kinds[kindOf(r.Op, r.Class)]++
	}
	return seqs, kinds
}

func kindOf(op jobs.Op, class jobs.ErrorClass) string {
	if class == "" {
		class = "no headers"
	}
	return string(op) + "/" + string(class)
}

// cut shortens s to at most n bytes without splitting a character. What
// it cuts is cleared of secret shapes first: a secret cut in two is no
// longer seen (a JWT cut before its second dot), and the pages' scrub,
// which comes after, would show its first part.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if s = redact.All(s); len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// follower keeps the index in step with the dead-letter stream.
type follower struct {
	x      *index
	stream jetstream.Stream
	topo   jobs.Topology
	every  time.Duration
}

// entryOf reads a dead letter delivered headers only, the way the dlq
// library reads one (dlq.Entry): the op comes from the subject, through
// jobs.Subjects, and from the Dlq-Op header when the subject names none.
func entryOf(subj jobs.Subjects, msg jetstream.Msg) (dlq.Entry, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return dlq.Entry{}, err
	}
	e := dlq.Entry{Seq: meta.Sequence.Stream, Subject: msg.Subject(), Time: meta.Timestamp, Header: msg.Headers()}
	e.DeadLetter, e.HeaderErr = jobs.ParseDeadLetter(e.Header)
	if e.Op = subj.OpOfDeadLetter(e.Subject); e.Op == jobs.OpUnknown && e.DeadLetter.Op.Valid() {
		e.Op = e.DeadLetter.Op
	}
	e.Size, _ = strconv.Atoi(e.Header.Get(nats.MsgSize))
	return e, nil
}

// errRecreated ends a follow whose stream was deleted and created again:
// its ordered consumer would go on from the old sequences.
var errRecreated = errors.New("the dead-letter stream was recreated")

// run reads the stream from its start, then follows it until ctx ends.
// Entries deleted by others are found by reconcile, every f.every; a
// stream recreated under the same name empties the index, and run reads
// the new stream from its start.
func (f *follower) run(ctx context.Context) error {
	for {
		if err := f.follow(ctx); !errors.Is(err, errRecreated) {
			return err
		}
	}
}

func (f *follower) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	// Ends reconcileEvery when follow ends, to start again.
	defer cancel(nil)
	// The stream may have been recreated while the follow was down (NATS
	// unreachable, the stream missing for a while).
	info, _, err := f.sync(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		f.setReady()
	}
	cons, err := f.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.topo.Subjects.DeadLetterFilter()},
		HeadersOnly:    true,
	})
	if err != nil {
		return fmt.Errorf("follow dead-letter stream %s: %w", f.topo.DeadLetterStream, err)
	}
	go f.reconcileEvery(ctx, cons, cancel)
	err = consume(ctx, cons, func(msg jetstream.Msg) {
		e, err := entryOf(f.topo.Subjects, msg)
		if err != nil {
			return
		}
		f.x.add(e)
		if meta, _ := msg.Metadata(); meta != nil && meta.NumPending == 0 {
			f.setReady()
		}
	})
	if cause := context.Cause(ctx); errors.Is(cause, errRecreated) {
		return cause
	}
	if err != nil {
		return fmt.Errorf("follow dead-letter stream %s: %w", f.topo.DeadLetterStream, err)
	}
	return nil
}

// consume calls handle with each message of an ordered consumer until
// ctx ends. The ordered consumer recovers from a lost connection or a
// deleted consumer by itself; an error that keeps coming is returned, so
// that the caller starts over.
func consume(ctx context.Context, cons jetstream.Consumer, handle func(jetstream.Msg)) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return err
	}
	defer it.Stop()
	defer context.AfterFunc(ctx, it.Stop)()
	failures := 0
	for {
		msg, err := it.Next()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return err
		case err != nil:
			if failures++; failures > 20 {
				return err
			}
			if err := clock.Sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		failures = 0
		handle(msg)
	}
}

// sync reads the stream's info, compares the stream's identity with the
// one the rows came from and empties the index when the stream is not the
// same any more: created at another time (deleted and created again), or
// with a last sequence below upTo, one indexed before info was read
// (sequences never go back in one stream, not even after a purge; one
// indexed after info was read may be newer than info, so upTo is taken
// before). It reports whether it emptied the index.
func (f *follower) sync(ctx context.Context) (*jetstream.StreamInfo, bool, error) {
	x := f.x
	x.mu.RLock()
	upTo := x.lastSeq
	x.mu.RUnlock()
	info, err := f.stream.Info(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read dead-letter stream %s: %w", f.topo.DeadLetterStream, err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	reset := (!x.created.IsZero() && !info.Created.Equal(x.created)) || info.State.LastSeq < upTo
	if reset {
		x.rows, x.live, x.dead, x.lastSeq, x.ready = nil, 0, 0, 0, false
		x.byOpClass, x.intern = map[jobs.Op]map[jobs.ErrorClass]int{}, map[string]string{}
	}
	x.created = info.Created
	return info, reset, nil
}

func (f *follower) setReady() {
	f.x.mu.Lock()
	f.x.ready, f.x.err = true, nil
	f.x.mu.Unlock()
}

func (x *index) setErr(err error) {
	x.mu.Lock()
	x.err = err
	x.mu.Unlock()
}

func (f *follower) reconcileEvery(ctx context.Context, cons jetstream.Consumer, stop context.CancelCauseFunc) {
	for range clock.Ticks(ctx, f.every) {
		err := f.reconcile(ctx, cons)
		if errors.Is(err, errRecreated) {
			stop(err)
			return
		}
		if err != nil && ctx.Err() == nil {
			f.x.setErr(err)
		}
	}
}

// reconcile removes from the index the entries deleted from the stream by
// anyone else. It compares counts first, so it asks for the list of
// deleted sequences only when something was deleted. A stream recreated
// since the index was filled empties the index: errRecreated.
func (f *follower) reconcile(ctx context.Context, cons jetstream.Consumer) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// First, before anything is compared: a recreated stream may have
	// fewer, as many or more messages than the index.
	info, reset, err := f.sync(rctx)
	if err != nil {
		return err
	}
	if reset {
		return errRecreated
	}
	ci, err := cons.Info(rctx)
	if err != nil {
		return fmt.Errorf("follow dead-letter stream %s: %w", f.topo.DeadLetterStream, err)
	}
	if ci.NumPending > 0 {
		return nil // still reading: counts cannot be compared yet
	}
	// Nothing pending: every message there is has been read (or was
	// deleted before the read got to it).
	f.setReady()
	if !f.x.behind(info.State) {
		return nil
	}
	info, err = f.stream.Info(rctx, jetstream.WithDeletedDetails(true))
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", f.topo.DeadLetterStream, err)
	}
	f.x.apply(info.State)
	return nil
}

// behind reports whether the index holds more of the messages up to the
// stream's last sequence than the stream does: some were deleted. (A
// message stored since the consumer's last delivery makes it look ahead,
// never behind.)
func (x *index) behind(st jetstream.StreamState) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := uint64(0)
	for i := range x.rows {
		r := &x.rows[i]
		if !r.gone && r.Seq <= st.LastSeq {
			n++
		}
	}
	return n > st.Msgs
}

// apply removes the entries a stream state says are gone: below its first
// sequence, or in its list of deleted ones.
func (x *index) apply(st jetstream.StreamState) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range x.rows {
		r := &x.rows[i]
		if r.Seq >= st.FirstSeq {
			break
		}
		if !r.gone {
			x.removeLocked(r.Seq)
		}
	}
	for _, seq := range st.Deleted {
		x.removeLocked(seq)
	}
	x.compact()
}
