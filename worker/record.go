package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// recordTimeout bounds publishing one result or dead letter.
const recordTimeout = 10 * time.Second

// recordKind says which stream a record goes to.
type recordKind int

const (
	kindResult recordKind = iota + 1
	kindDeadLetter
)

func (k recordKind) String() string {
	if k == kindResult {
		return "result"
	}
	return "dead letter"
}

// outcome is a settled job's record, and what follows once it is stored.
type outcome struct {
	d      *delivery
	j      *job
	kind   recordKind
	header nats.Header
	body   []byte
	// done acks the job and tells whoever waits (reply, metrics, log). It
	// runs once, after the record is stored.
	done func()
	// stored is set once this outcome's own record is confirmed: a retry
	// after the look that follows failed does not publish it again (and
	// mistake it for an earlier delivery's).
	stored bool
}

// records stores the terminal record of each job: exactly one per job,
// whatever the timing. Each job's record has a subject of its own
// (jobs.Subjects.Result, DeadLetter), the streams keep one message per
// subject and refuse a second, and before a dead letter (or any record of a
// redelivered job) the worker looks for the job's record in both streams:
// a result stored by a delivery whose acknowledgement was lost is found,
// and the job is acked, not recorded again. The streams are two, so two
// deliveries can each look before the other stores; a result wins: a dead
// letter looks for the result again once it is stored, and so does a
// result that may have had a rival (a redelivery's, or one held past half
// the ack wait, or a first delivery of a job stored before its consumer was
// created: see delivery.mayBeAgain), and the dead letter is deleted. Of two such writers at
// least one sees both records, as each looks after its own is confirmed
// and reads the stream's leader.
//
// A record JetStream refuses (a full dead-letter stream, a deleted stream,
// no quorum) is not a reason to run the job again: the outcome is parked —
// the job stays delivered to this worker and kept alive, its slot is given
// to the next job, and the record is retried (recreating a deleted stream)
// until it is stored. The worker is not ready while anything is parked, and
// takes no new job while Concurrency outcomes are. A result larger than a
// NATS message can be is the exception: no retry can store it, so its job
// is dead-lettered.
type records struct {
	w   *Worker
	gen atomic.Pointer[string]
	// created is when the jobs stream was created (UnixNano), as last read
	// with gen: see delivery.void.
	created atomic.Int64

	mu     sync.Mutex
	parked map[*delivery]*outcome
	reason string // why the last store failed, in the worker's words
	// stopping is set once the shutdown hands the outcomes left back: a
	// letter refused then is not kept, and is said by the nak's line.
	stopping bool
	full     *level // on while Concurrency outcomes or more are parked
	wake     chan struct{}
	since    time.Time // when the current run of failures began
	lastLog  time.Time

	retryMu sync.Mutex // held by the pass that retries parked outcomes

	lastUnconfirmed atomic.Int64 // UnixNano of the last "unconfirmed" warning

	healMu   sync.Mutex
	lastHeal time.Time
	healErr  error // what the last heal answered
}

func (r *records) generation() string { return *r.gen.Load() }

// commit stores o's record and then runs o.done; if JetStream refuses the
// record, o is parked.
func (r *records) commit(ctx context.Context, o *outcome) {
	already, err := r.store(ctx, o)
	switch {
	case r.tooLarge(ctx, o, err):
	case err != nil:
		r.park(o, err)
	case already != 0:
		r.w.settleRecorded(o.d, o.j, already)
	default:
		o.done()
	}
}

// store publishes o's record. already is the kind of a record the job had
// before (nothing stored then): a dead letter yields to a result.
//
// Another job's record on the job's subject means the jobs stream was
// created again since this worker read its generation (by an operator, or
// by another worker's recovery, unseen by this one): its sequences start
// at 1 again, under a new generation. The job is then recorded under the
// generation the stream has now.
//
// A dead letter larger than a NATS message can be (the job's body, a little
// under max_payload, and the headers that say why) is stored without the
// body, which its Dlq-Redacted header says: no retry could store it whole.
func (r *records) store(ctx context.Context, o *outcome) (already recordKind, err error) {
	already, err = r.storeOnce(ctx, o)
	var fr *foreignRecord
	if errors.As(err, &fr) && r.regenerate(ctx, o.j) {
		already, err = r.storeOnce(ctx, o)
	}
	if o.kind == kindDeadLetter && len(o.body) > 0 && errors.Is(err, nats.ErrMaxPayload) {
		size := len(o.body)
		o.body = nil
		// The header's own word, after the names (which listed() never
		// leaves empty, so the list never begins with a comma).
		redacted := o.header.Get(jobs.HeaderRedacted)
		if redacted != "" {
			redacted += ","
		}
		o.header.Set(jobs.HeaderRedacted, redacted+"body")
		r.w.logJob(r.w.cfg.Logger.Warn(), o.j).Int("body_bytes", size).Int64("max_payload", r.w.nc.MaxPayload()).
			Msg("the dead letter is larger than the NATS server takes in one message: stored without the job's body")
		already, err = r.storeOnce(ctx, o)
	}
	return already, err
}

func (r *records) storeOnce(ctx context.Context, o *outcome) (already recordKind, err error) {
	digest := o.header.Get(jobs.HeaderJobDigest)
	if o.kind == kindDeadLetter {
		return r.storeDeadLetter(ctx, o, digest)
	}
	if !o.stored {
		if already, err = r.publish(ctx, o); err != nil {
			return 0, err
		}
		o.stored = already == 0
	}
	if o.j.Delivery > 1 || o.d.mayHaveRival(r.w.ackWait()/2) || o.d.mayBeAgain() {
		// Another delivery of the job may have dead-lettered it meanwhile
		// (this one's acknowledgement lost, this process paused, the job
		// redelivered from the prefetch buffer, or delivered anew as a
		// first delivery by its consumer deleted and created again). Its
		// dead letter may have looked for this result before it was
		// stored, so this looks after: the result stands, the letter goes.
		if err := r.supersede(ctx, o.j, digest); err != nil {
			return 0, err
		}
	}
	return already, nil
}

// storeDeadLetter stores o unless the job has a result, then looks for a
// result once more: a delivery of the job that was still running may have
// stored one meanwhile, and then the letter is removed. Of two deliveries
// that store a result and a dead letter, each looks for the other's record
// after its own is confirmed, so at least one of them sees both. A retry
// after an error resumes where it failed.
func (r *records) storeDeadLetter(ctx context.Context, o *outcome, digest string) (already recordKind, err error) {
	if !o.stored {
		already, _, err = r.lookup(ctx, o.j.Key, digest, kindResult, kindDeadLetter)
		switch {
		case err != nil || already == kindResult:
			return already, err
		case already == 0:
			if already, err = r.publish(ctx, o); err != nil {
				return 0, err
			}
			o.stored = already == 0
		}
	}
	k, _, err := r.lookup(ctx, o.j.Key, digest, kindResult)
	if err != nil || k == 0 {
		return already, err
	}
	if err := r.supersede(ctx, o.j, digest); err != nil {
		return 0, err
	}
	return kindResult, nil
}

// publish stores o's record on the job's record subject. already is
// kindResult or kindDeadLetter when the subject held the job's record,
// stored by another delivery of the job.
//
// The record's Nats-Msg-Id names the delivery that writes it: a publish
// whose acknowledgement was lost is asked again, and JetStream answers
// "duplicate" for this delivery's own record where it refuses another
// delivery's. So the job is settled as recorded by this delivery (its
// answer sent, its cleanup run), not as already recorded by another.
func (r *records) publish(ctx context.Context, o *outcome) (already recordKind, err error) {
	stream, subject := r.place(o.kind, o.j.Key)
	m := withTrace(o.j, &nats.Msg{Subject: subject, Header: o.header, Data: o.body})
	id := r.w.cfg.Instance + "/" + strconv.Itoa(o.j.Delivery) + "/" + subject
	m.Header.Set(jetstream.MsgIDHeader, id)
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, recordTimeout)
		// The expected stream is stored with the record and handed back
		// with it by a direct get or a push consumer: an operator asking
		// for a dead letter with a job subject as the reply (NATS
		// permissions never check a reply subject) would otherwise have
		// the letter's body, a job's, stored in the jobs stream as a job
		// ops may not publish (a token job answering ops' inbox). The jobs
		// stream refuses it for this header
		// (deploy/nats TestOpsCannotRelayADeadLetterIntoATokenJob).
		_, err = r.w.js.PublishMsg(pctx, m, jetstream.WithExpectStream(stream))
		cancel()
		if err == nil {
			return 0, nil // a duplicate too: stored by this delivery before
		}
		noAnswer := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if attempt == 0 && noAnswer {
			continue // no answer: stored or not, asking again tells
		}
		if noAnswer && r.ownRecord(ctx, stream, subject, id) {
			// Stored, and never confirmed: this delivery's own record,
			// not another delivery's (the job is answered and acked as
			// recorded here).
			r.unconfirmed(ctx, stream)
			return 0, nil
		}
		// Refused because the subject holds the job's record already?
		k, _, ferr := r.lookup(ctx, o.j.Key, o.header.Get(jobs.HeaderJobDigest), o.kind)
		switch {
		case ferr == nil && k != 0 && r.ownRecord(ctx, stream, subject, id):
			// This delivery's, stored and unconfirmed, asked again past
			// the stream's deduplication window: not another's.
			return 0, nil
		case ferr == nil && k != 0:
			return k, nil
		case errors.As(ferr, new(*foreignRecord)):
			return 0, ferr
		}
		var herr error
		if attempt == 0 && streamMissing(err) {
			// The stream is gone (deleted by hand): the worker owns it,
			// so it creates it again and tries once more.
			if herr = r.heal(ctx); herr == nil {
				continue
			}
		}
		r.w.metrics.recordFailures.WithLabelValues(stream).Inc()
		return 0, &recordError{stream: stream, kind: o.kind, err: err, recreate: herr}
	}
}

// ownRecord reports whether the record on subject carries the Nats-Msg-Id
// id: stored by this delivery.
func (r *records) ownRecord(ctx context.Context, stream, subject, id string) bool {
	m, err := r.getOnLeader(ctx, stream, msgGet{LastFor: subject})
	return err == nil && m.header(jetstream.MsgIDHeader) == id
}

// unconfirmed says (at most every 30 s) that stream stores records without
// confirming them: each record waits twice recordTimeout for an answer. A
// stream set to no_ack while the workers run does that; a worker's start
// sets it back.
func (r *records) unconfirmed(ctx context.Context, stream string) {
	now := time.Now().UnixNano()
	last := r.lastUnconfirmed.Load()
	if now-last < int64(30*time.Second) || !r.lastUnconfirmed.CompareAndSwap(last, now) {
		return
	}
	why := "JetStream stored the record and did not confirm it in time"
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	if st, err := r.w.js.Stream(cctx, stream); err == nil && st.CachedInfo().Config.NoAck {
		why = "the stream is set to no_ack (changed while the workers run; a worker's start sets it back): it never confirms a record"
	}
	r.w.cfg.Logger.Warn().Str("stream", stream).Dur("waited", 2*recordTimeout).Str("reason", why).
		Msg("records are stored without a confirmation: each job waits for one before it is answered and acked")
}

// supersede removes j's dead letter, if it has one: j has a result, and a
// job's result is the truer record (its Clerk call succeeded). Another
// job's letter on the subject stays.
func (r *records) supersede(ctx context.Context, j *job, digest string) error {
	k, seq, err := r.lookup(ctx, j.Key, digest, kindDeadLetter)
	if errors.As(err, new(*foreignRecord)) {
		return nil
	}
	if err != nil || k == 0 {
		return err
	}
	subject := r.w.cfg.Topology.Subjects.DeadLetter(j.Key)
	removed, err := r.removeLetter(ctx, seq, subject)
	if errors.Is(err, errDeleteDenied) {
		// No retry removes it: the job is done (its result stored), and
		// kept waiting it would hold a slot for ever. Said, as when a
		// redelivery finds such a letter (find).
		r.w.logJob(r.w.cfg.Logger.Warn(), j).Uint64("dead_letter_seq", seq).Str("dead_letter_subject", subject).
			Msg("the job has a result; a dead letter beside it cannot be removed: the dead-letter stream denies deletes " +
				"(deny_delete, set while the workers run); nats stream purge --subject removes it")
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove the dead letter (seq %d) of a job with a result: %w", seq, err)
	}
	if removed {
		r.w.logJob(r.w.cfg.Logger.Warn(), j).Uint64("dead_letter_seq", seq).
			Msg("dead letter removed: another delivery of the job stored its result (a result wins)")
	}
	return nil
}

// removeLetter deletes the dead letter stored at seq on subject. removed
// is false when someone else deleted it first.
func (r *records) removeLetter(ctx context.Context, seq uint64, subject string) (removed bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	dlq := r.w.cfg.Topology.DeadLetterStream
	st, err := r.w.js.Stream(cctx, dlq)
	if err == nil {
		err = st.DeleteMsg(cctx, seq)
		if err != nil && st.CachedInfo().Config.DenyDelete {
			return false, errDeleteDenied
		}
	}
	if err != nil {
		// Removed meanwhile (by the other delivery, a sweep, an operator)?
		m, lerr := r.getOnLeader(ctx, dlq, msgGet{LastFor: subject, NoHeaders: true})
		if errors.Is(lerr, jetstream.ErrMsgNotFound) || errors.Is(lerr, jetstream.ErrStreamNotFound) || (lerr == nil && m.Seq != seq) {
			return false, nil
		}
		return false, err
	}
	r.w.metrics.deadLettersSuperseded.Inc()
	return true, nil
}

// errDeleteDenied: the dead-letter stream denies deletes (deny_delete,
// which cannot be undone), so no retry removes a letter.
var errDeleteDenied = errors.New("the dead-letter stream denies deletes")

// place is the stream and subject of the record of kind the job k names.
func (r *records) place(kind recordKind, k jobs.RecordKey) (stream, subject string) {
	topo := r.w.cfg.Topology
	if kind == kindDeadLetter {
		return topo.DeadLetterStream, topo.Subjects.DeadLetter(k)
	}
	return topo.ResultsStream, topo.Subjects.Result(k)
}

// find looks for the record of j, whose message is subject and data, in
// both streams: it returns its kind, 0 when there is none. A dead letter
// beside a result found goes (the delivery that stored it may have died
// before it looked for the result).
func (r *records) find(ctx context.Context, j *job, subject string, data []byte) (recordKind, error) {
	digest := jobs.Digest(subject, data)
	kind, _, err := r.lookup(ctx, j.Key, digest, kindResult, kindDeadLetter)
	if err == nil && kind == kindResult {
		// The job is done whatever becomes of the letter: its failure to
		// go is said, not a reason to run the job again.
		if serr := r.supersede(ctx, j, digest); serr != nil {
			r.w.logJob(r.w.cfg.Logger.Warn(), j).Str("error", serr.Error()).
				Msg("the job has a result; a dead letter beside it could not be removed (publish dlq purge removes it)")
		}
	}
	return kind, err
}

// lookup looks for the record of the job k names in the streams of kinds,
// in that order: it returns the kind found first and its stream sequence,
// 0 when there is none. A record whose Job-Digest is not digest is another
// job's: a *foreignRecord error (records without a digest, and a digest
// of "", match anything).
//
// It asks each stream's leader, never a direct get: any replica answers a
// direct get, one that has not yet applied what the leader confirmed among
// them, and the checks that keep one record per job must see every record
// confirmed before they look.
func (r *records) lookup(ctx context.Context, k jobs.RecordKey, digest string, kinds ...recordKind) (recordKind, uint64, error) {
	for _, kind := range kinds {
		stream, subject := r.place(kind, k)
		m, err := r.getOnLeader(ctx, stream, msgGet{LastFor: subject})
		switch {
		case err == nil && !sameJob(m.digest(), digest):
			return 0, 0, &foreignRecord{stream: stream, subject: subject, seq: m.Seq}
		case err == nil:
			return kind, m.Seq, nil
		case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		default:
			return 0, 0, fmt.Errorf("look for the job's %s in %s: %w", kind, stream, err)
		}
	}
	return 0, 0, nil
}

// msgGet asks a stream's leader for one message ($JS.API.STREAM.MSG.GET):
// the last on a subject, or the first on a filter from a sequence or a
// time.
type msgGet struct {
	Seq       uint64     `json:"seq,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	NoHeaders bool       `json:"no_hdr,omitempty"`
}

// storedMsg is what records read of a message: where it is, and its
// header block (NATS/1.0 and a line a header) unless asked without.
type storedMsg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	Header  []byte `json:"hdrs"`
}

// digest is the message's Job-Digest, "" without one.
func (m storedMsg) digest() string { return m.header(jobs.HeaderJobDigest) }

// header is the value of the message's header name, "" without it.
func (m storedMsg) header(name string) string {
	lines := strings.Split(string(m.Header), "\r\n")
	for _, l := range lines[min(1, len(lines)):] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sameJob tells whether two Job-Digests may name one job: a record
// written without one (by a worker that did not write them) is taken for
// the job's.
func sameJob(a, b string) bool { return a == "" || b == "" || a == b }

// foreignRecord is a record on a job's subject that names another job.
type foreignRecord struct {
	stream, subject string
	seq             uint64
}

func (e *foreignRecord) Error() string {
	return fmt.Sprintf("stream %s holds another job's record on %s (seq %d; its Job-Digest differs): the jobs stream was created again "+
		"within a second of its predecessor, or something other than the workers writes records; the job is kept until its record can be stored",
		e.stream, e.subject, e.seq)
}

// regenerate reads the jobs stream's generation again, after a record of
// another job turned up on j's subject. It is true when j's key changed:
// j is then recorded under the new generation.
func (r *records) regenerate(ctx context.Context, j *job) bool {
	gen, err := r.readGeneration(ctx)
	if err != nil || gen == j.Key.Gen {
		return false
	}
	r.w.logJob(r.w.cfg.Logger.Warn(), j).Str("generation", gen).Str("was", j.Key.Gen).
		Msg("the jobs stream was created again since this worker read it: the job is recorded under the stream's new generation")
	j.Key.Gen = gen
	return true
}

// readGeneration reads the jobs stream's generation, and keeps it for the
// jobs to come.
func (r *records) readGeneration(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	st, err := r.w.js.Stream(cctx, r.w.cfg.Topology.JobsStream)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", r.w.cfg.Topology.JobsStream, err)
	}
	created := st.CachedInfo().Created
	gen := jobs.Generation(created)
	r.gen.Store(&gen)
	r.created.Store(created.UnixNano())
	return gen, nil
}

// getOnLeader reads one message of stream from its leader (the jetstream
// package would use a direct get on the record streams), within
// recordTimeout.
func (r *records) getOnLeader(ctx context.Context, stream string, req msgGet) (storedMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return storedMsg{}, err
	}
	m, err := r.w.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"STREAM.MSG.GET."+stream, body)
	if err != nil {
		return storedMsg{}, err
	}
	var resp struct {
		Message *storedMsg          `json:"message"`
		Error   *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return storedMsg{}, fmt.Errorf("JetStream's answer: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return storedMsg{}, jetstream.ErrMsgNotFound
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return storedMsg{}, jetstream.ErrStreamNotFound
	case resp.Error != nil:
		return storedMsg{}, resp.Error
	case resp.Message == nil:
		return storedMsg{}, jetstream.ErrInvalidJetStreamResponse
	}
	return *resp.Message, nil
}

// streamMissing reports whether a publish failed because no stream
// captures the subject.
func streamMissing(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound)
}

// heal creates what the worker owns and finds missing (a stream or the
// consumer deleted by hand), at most once every two seconds; in between
// it answers what the last try did. Answering nil then would have every
// record refused meanwhile say it could not be created without saying
// why (JetStream's refusal, and what to raise), overwriting the reason
// the worker logs and reports on /readyz. A try its caller's context ended
// says nothing of JetStream: it is not kept, for another caller to be told.
func (r *records) heal(ctx context.Context) error {
	r.healMu.Lock()
	defer r.healMu.Unlock()
	if time.Since(r.lastHeal) < 2*time.Second {
		return r.healErr
	}
	_, err := r.w.recreate(ctx)
	if err != nil && ctx.Err() != nil {
		return err
	}
	r.lastHeal, r.healErr = time.Now(), err
	return err
}

// recordError is a record JetStream did not store.
type recordError struct {
	stream string
	kind   recordKind
	err    error
	// recreate is why the stream, found missing, could not be created
	// again (jobs.Ensure's error: a cap JetStream has no room to reserve
	// says which limit to raise).
	recreate error
}

func (e *recordError) Error() string {
	return fmt.Sprintf("stream %s refuses the %s: %s", e.stream, e.kind, e.reason())
}

func (e *recordError) Unwrap() error { return e.err }

// reason says why in the worker's words, with what to do.
func (e *recordError) reason() string {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(e.err, &apiErr) && (apiErr.ErrorCode == 10077 || apiErr.ErrorCode == 10047):
		// 10077: store failed ("maximum bytes exceeded" with DiscardNew);
		// 10047: insufficient storage resources.
		if e.kind == kindResult {
			return "it is full (raise --results-max-bytes, or shorten --results-max-age, or purge it; the jobs are kept)"
		}
		return "it is full (raise --dlq-max-bytes or purge it; the jobs are kept)"
	case errors.As(e.err, &apiErr) && apiErr.ErrorCode == 10023:
		// 10023: insufficient resources, the account's or the server's
		// JetStream storage limit reached (max_file_store, max_mem_store).
		return "the account's or the server's JetStream storage limit is reached (raise it, or purge a stream; the jobs are kept)"
	case streamMissing(e.err) && e.recreate != nil:
		// JetStream's words and Ensure's, bounded for a log field and
		// /readyz, with room for the hint on a cap that does not fit.
		return "the stream does not exist and could not be created: " + text.Line(redact.Text(e.recreate.Error()), maxRecreateText)
	case streamMissing(e.err):
		return "the stream does not exist and could not be created"
	case errors.Is(e.err, context.DeadlineExceeded), errors.Is(e.err, nats.ErrTimeout):
		return "JetStream did not confirm in time (no quorum?)"
	}
	return text.Line(e.err.Error(), 200)
}

// maxRecreateText bounds the error of a stream's creation in a record's
// reason: enough for jobs.Ensure's own words on a cap JetStream cannot
// reserve, and the refusal they follow.
const maxRecreateText = 1000

// park keeps o until its record is stored, freeing its slot.
func (r *records) park(o *outcome, err error) {
	reason := err.Error() // a *recordError says why in the worker's words
	r.mu.Lock()
	first := len(r.parked) == 0
	r.parked[o.d] = o
	r.reason = reason
	if first {
		r.since = time.Now()
	}
	n := len(r.parked)
	r.updateRoom()
	endDelivery(o.j, "parked", nil)
	logNow := !r.stopping && (first || time.Since(r.lastLog) > 30*time.Second)
	if logNow {
		r.lastLog = time.Now()
	}
	r.mu.Unlock()
	o.d.release()
	if logNow {
		r.w.logJob(r.w.cfg.Logger.Error(), o.j).Str("error", reason).Int("waiting", n).
			Msg("could not record the job's outcome; keeping the job and retrying (no new Clerk call)")
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// tooLarge dead-letters the job of a result that failed with err because
// it is larger than a NATS message can be (the server's max_payload, a
// list of many large sessions) or than its stream takes (a max message
// size an operator set): parked, it would wait for ever, as no retry
// stores it. A dead letter holds the job, not the result (and, too large
// itself, is stored without the job's body: see store).
func (r *records) tooLarge(ctx context.Context, o *outcome, err error) bool {
	if !oversized(o, err) {
		return false
	}
	size := len(o.body)
	for k, vs := range o.header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	limit := fmt.Sprintf("the NATS server takes in one message (max_payload %d bytes): raise the server's max_payload", r.w.nc.MaxPayload())
	if !errors.Is(err, nats.ErrMaxPayload) {
		stream, _ := r.place(o.kind, o.j.Key)
		max := "its max message size"
		if s, serr := r.w.js.Stream(ctx, stream); serr == nil {
			max = fmt.Sprintf("max message size %d bytes", s.CachedInfo().Config.MaxMsgSize)
		}
		limit = fmt.Sprintf("stream %s takes (its %s): raise or remove that limit", stream, max)
	}
	r.w.deadLetter(ctx, o.d, o.j, o.j.errorInfo(jobs.ClassPermanent, fmt.Errorf(
		"the job's result is about %d bytes, more than %s and replay this dead letter, or send the job again asking for less (a smaller list limit)", size, limit)))
	return true
}

// oversized reports whether err refused o's record for its size alone.
func oversized(o *outcome, err error) bool {
	var apiErr *jetstream.APIError
	return o.kind == kindResult && (errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum)
}

// updateRoom turns full on or off; r.mu is held.
func (r *records) updateRoom() { r.full.set(len(r.parked) >= r.w.cfg.Concurrency) }

// ready says why the worker is not ready because of records, or nil.
func (r *records) ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.parked); n > 0 {
		return fmt.Errorf("%d job outcomes wait to be recorded for %s: %s", n, time.Since(r.since).Round(time.Second), r.reason)
	}
	return nil
}

// retryParked stores parked records until ctx ends, backing off from half
// a second to ten while JetStream keeps refusing them.
func (r *records) retryParked(ctx context.Context) {
	wait := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for r.retryOnce(ctx) {
			if clock.Sleep(ctx, wait) != nil {
				return
			}
			wait = min(wait*2, 10*time.Second)
		}
		wait = 500 * time.Millisecond
	}
}

// retryOnce tries every parked record once; it reports whether some are
// still parked.
func (r *records) retryOnce(ctx context.Context) bool {
	// One pass at a time (the retry loop and the drain at shutdown): an
	// outcome stored twice would be settled twice.
	r.retryMu.Lock()
	defer r.retryMu.Unlock()
	r.mu.Lock()
	batch := slices.Collect(maps.Values(r.parked))
	r.mu.Unlock()
	stored := 0
	for _, o := range batch {
		if ctx.Err() != nil {
			return true
		}
		already, err := r.store(ctx, o)
		// A result parked for another reason may be found too large
		// later (after a reconnect to a server that takes less).
		big := oversized(o, err)
		if err != nil && !big {
			r.mu.Lock()
			r.reason = err.Error()
			r.mu.Unlock()
			continue
		}
		r.mu.Lock()
		delete(r.parked, o.d)
		r.updateRoom()
		r.mu.Unlock()
		stored++ // a result too large is recorded as its job's dead letter
		if big {
			r.tooLarge(ctx, o, err)
			continue
		}
		if already != 0 {
			r.w.settleRecorded(o.d, o.j, already)
		} else {
			o.done()
		}
	}
	r.mu.Lock()
	left, since := len(r.parked), r.since
	r.mu.Unlock()
	if stored > 0 && left == 0 {
		r.w.cfg.Logger.Info().Int("recorded", stored).Dur("after", time.Since(since).Round(time.Millisecond)).
			Msg("JetStream stores records again; every waiting outcome is recorded")
	}
	return left > 0
}

// drain tries the parked records once more at shutdown.
func (r *records) drain(ctx context.Context) {
	for r.retryOnce(ctx) {
		if clock.Sleep(ctx, time.Second) != nil {
			return
		}
	}
}

// made names the session a create's unstored result says Clerk made
// (` (session "sess_…")`), or is "": the dead letter is then the only
// record of it. A refresh's result holds nothing to name (its answer, the
// secret, went to reply_to alone).
func made(o *outcome) string {
	var res struct {
		Result struct {
			ID string `json:"id"`
		} `json:"result"`
	}
	if o.j.Op != jobs.OpCreate || json.Unmarshal(o.body, &res) != nil || res.Result.ID == "" {
		return ""
	}
	return fmt.Sprintf(" (session %.80q)", res.Result.ID) // Clerk's answer: bounded, escaped
}

// nakParked hands the outcomes never recorded back to JetStream: the jobs
// run again on another worker. A create or refresh Clerk carried out
// would be carried out twice (a second session, a spent refresh token sent
// again): it is dead-lettered as permanent instead, as one cut by the
// shutdown is, unless the dead-letter stream refuses it too.
func (r *records) nakParked() {
	r.mu.Lock()
	left, reason := r.parked, r.reason
	r.parked = map[*delivery]*outcome{}
	r.stopping = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.stopping = false
		r.mu.Unlock()
	}()
	// Bounded: the shutdown waited the drain timeout already.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, o := range left {
		if o.kind == kindResult && unrepeatable(o.j.Op) && ctx.Err() == nil {
			r.w.deadLetter(ctx, o.d, o.j, o.j.errorInfo(jobs.ClassPermanent, fmt.Errorf(
				"the worker stopped before its result could be stored (%s): Clerk carried the %s out%s, and sent again it would be carried out twice "+
					"(a create: list the user's sessions before replaying it; a refresh: its refresh token is spent)", reason, o.j.Op, made(o))))
			r.mu.Lock()
			_, refused := r.parked[o.d]
			delete(r.parked, o.d)
			why := r.reason
			r.mu.Unlock()
			if !refused {
				continue
			}
			r.w.nak(o.d, o.j, 0, "shutdown before the outcome could be recorded, and its dead letter refused too ("+why+
				"): run again, the "+string(o.j.Op)+" may be carried out twice")
			continue
		}
		r.w.nak(o.d, o.j, 0, "shutdown before the outcome could be recorded")
	}
}
