package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Status is what Replay or Purge did with one entry.
type Status string

// Statuses.
const (
	StatusReplayed    Status = "replayed"
	StatusWouldReplay Status = "would_replay" // dry run
	StatusPurged      Status = "purged"
	StatusSkipped     Status = "skipped"
	StatusFailed      Status = "failed"
)

// EntryReport is what happened to one entry.
type EntryReport struct {
	// Seq is the dead letter's sequence.
	Seq    uint64  `json:"seq"`
	Status Status  `json:"status"`
	JobID  string  `json:"job_id,omitempty"`
	Op     jobs.Op `json:"op,omitempty"`
	// Subject is where the job was (or would be) republished.
	Subject string `json:"subject,omitempty"`
	// JobSeq is the republished job's sequence in the jobs stream.
	JobSeq uint64 `json:"job_seq,omitempty"`
	// Duplicate is set when the jobs stream already had the republished
	// message: an earlier, interrupted replay had sent it.
	Duplicate bool `json:"duplicate,omitempty"`
	// Reason says, for a person, why an entry was skipped or failed and
	// what to do about it.
	Reason string `json:"reason,omitempty"`
}

// ReplayReport sums up a Replay.
type ReplayReport struct {
	DryRun bool `json:"dry_run"`
	// Replayed entries were republished and deleted (or, in a dry run,
	// would be); Duplicates of them had been republished by an earlier,
	// interrupted run and were only deleted now.
	Replayed   int `json:"replayed"`
	Duplicates int `json:"duplicates"`
	// Skipped entries cannot be replayed and were left in the queue.
	Skipped int `json:"skipped"`
	// Failed entries hit an error; Replay stops at the first one.
	Failed int `json:"failed"`
	// NotAttempted entries were not reached: Replay stopped first.
	NotAttempted int `json:"not_attempted"`
	// Problems are the outcomes of the skipped and failed entries.
	Problems []EntryReport `json:"problems,omitempty"`
}

// ReplayMsgID is the Nats-Msg-Id of the job republished from dead letter
// seq, of the dead-letter stream created at created, for the replays-th
// time. It is deterministic so that a re-run of an interrupted replay
// sends the same id and the jobs stream deduplicates it; it differs from
// every earlier id of the job (which the jobs stream would otherwise
// swallow as a duplicate) because a stream never reuses a sequence. A
// stream deleted and created again does: its creation time keeps its
// letter 1 from being taken, within the deduplication window, for the
// replay of its predecessor's letter 1, then dropped as a duplicate and
// deleted as replayed.
func ReplayMsgID(created time.Time, seq uint64, replays int) string {
	return "replay-" + strconv.FormatInt(created.UnixNano(), 36) + "-" + strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(replays)
}

// Replay republishes the dead letters seqs to their original subjects and
// deletes each after JetStream acknowledged its job. Entries that cannot
// succeed are skipped and stay in the queue: redacted ones, ones whose
// payload is not a valid job, ones on no job subject (CheckReplay), ones
// whose job has a result (CheckResult). One whose job ran again since it
// was stored (a newer record of the same job), or whose job this Replay
// sent already from another letter, is deleted without sending it, and
// reported as a Duplicate. Options: WithDryRun,
// WithRate, WithProgress, WithTimeout.
//
// Replay stops at the first failure (the jobs stream refusing a job, a lost
// connection), or when ctx is cancelled, and returns the report with a
// non-nil error; re-running it is safe (see the package documentation). A
// dead-letter stream that denies deletes is refused before anything is
// sent: its letters would stay, and be replayed again.
// Entries are processed in the order given; a sequence given again is the
// same dead letter, taken once.
func (q *Queue) Replay(ctx context.Context, seqs []uint64, opts ...Option) (ReplayReport, error) {
	seen := make(map[uint64]bool, len(seqs))
	seqs = slices.DeleteFunc(slices.Clone(seqs), func(s uint64) bool { // each once, in order
		again := seen[s]
		seen[s] = true
		return again
	})
	o := collect(opts)
	rep := ReplayReport{DryRun: o.dryRun}
	var lim *rate.Limiter
	if o.rate > 0 && !o.dryRun {
		lim = rate.NewLimiter(rate.Limit(o.rate), 1)
	}
	// The creation time is read afresh for each call: a long-lived Queue
	// (the console's) outlives a stream created again.
	infoCtx, cancel := context.WithTimeout(ctx, o.timeout)
	info, err := q.stream.Info(infoCtx)
	cancel()
	if err != nil {
		rep.NotAttempted = len(seqs)
		return rep, fmt.Errorf("read dead-letter stream %s: %w", q.topo.DeadLetterStream, err)
	}
	if info.Config.DenyDelete {
		// Each letter would stay once its job is sent, to be sent again by
		// the next replay (past the deduplication window: a second run).
		rep.NotAttempted = len(seqs)
		return rep, fmt.Errorf("the dead-letter stream %s denies deletes (deny_delete, which JetStream cannot undo), so a replayed letter would stay in the queue and be replayed again: nothing was replayed; publish the jobs anew (`dlq show` gives each body)", q.topo.DeadLetterStream)
	}
	results, err := q.resultsStream(ctx, o.timeout)
	if err != nil {
		rep.NotAttempted = len(seqs)
		return rep, err
	}
	// The jobs this run sent (or, dry, would send), by sentKey: a letter's
	// job sent from a newer letter of the same job, given first, has no
	// newer letter left (deleted) nor a result yet (not run) for
	// checkResult to find, and would be sent twice.
	sent := map[string]uint64{}
	for i, seq := range seqs {
		if err := pace(ctx, lim); err != nil {
			rep.NotAttempted = len(seqs) - i
			return rep, err
		}
		out, err := q.replayOne(ctx, info.Created, results, sent, seq, o)
		switch out.Status {
		case StatusReplayed, StatusWouldReplay:
			rep.Replayed++
			if out.Duplicate {
				rep.Duplicates++
			}
		case StatusSkipped:
			rep.Skipped++
			rep.Problems = append(rep.Problems, out)
		case StatusFailed:
			rep.Failed++
			rep.Problems = append(rep.Problems, out)
		}
		if o.progress != nil {
			o.progress(out)
		}
		if err != nil {
			rep.NotAttempted = len(seqs) - i - 1
			return rep, err
		}
	}
	return rep, nil
}

func (q *Queue) replayOne(ctx context.Context, created time.Time, results jetstream.Stream, sent map[string]uint64, seq uint64, o options) (EntryReport, error) {
	out := EntryReport{Seq: seq}
	skip := func(format string, a ...any) (EntryReport, error) {
		out.Status, out.Reason = StatusSkipped, fmt.Sprintf(format, a...)
		return out, nil
	}
	fail := func(err error, format string, a ...any) (EntryReport, error) {
		out.Status, out.Reason = StatusFailed, fmt.Sprintf(format, a...)
		return out, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}

	getCtx, cancel := context.WithTimeout(ctx, o.timeout)
	e, err := q.Get(getCtx, seq)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		return skip("not in the dead-letter queue (already replayed or purged?)")
	case err != nil:
		return fail(err, "could not read it: %v", err)
	}
	d := e.DeadLetter
	// The report is shown and logged: the letter's values are cleared of
	// secret shapes (a job id never looks like one, a forged header may),
	// and the subject bounded as CheckReplay's reasons show it.
	out.JobID, out.Op, out.Subject = redact.Text(d.JobID), e.Op, text.Line(redact.All(d.Subject), 120)
	if o.expect != nil {
		if err := o.expect(e); err != nil {
			return skip("%s", err)
		}
	}
	if err := q.CheckReplay(e); err != nil {
		return skip("%s", err)
	}
	resCtx, cancel := context.WithTimeout(ctx, o.timeout)
	err = q.checkResult(resCtx, results, e)
	cancel()
	out.Op = q.topo.Subjects.OpOf(d.Subject)
	key := q.sentKey(e)
	if first, ok := sent[key]; ok && key != "" && err == nil {
		err = &ranSince{fmt.Sprintf("the same job was sent by this replay from dead letter %d: sent again, it would run once more, so `dlq replay` only removes this letter", first)}
	}
	var ran *ranSince
	switch {
	case errors.As(err, &ran):
		// Replayed already (an interrupted run's job ran), or published
		// again: as for a duplicate, the letter goes, and nothing is sent.
		out.Duplicate, out.Reason = true, ran.reason
		if o.dryRun {
			out.Status = StatusWouldReplay
			return out, nil
		}
		if derr := q.deleteReplayed(context.WithoutCancel(ctx), seq, o); derr != nil {
			return fail(derr, "its job ran again since, so it was not sent; deleting the dead letter failed (%s): run the replay again, or purge it", natsconn.ErrorText(derr))
		}
		out.Status = StatusReplayed
		return out, nil
	case errors.Is(err, ErrNotReplayable):
		return skip("%s", err)
	case err != nil:
		return fail(err, "could not look for its job's records (%s), which say whether it ran since; the dead letter is kept: run the replay again once %s and %s can be read", natsconn.ErrorText(err), q.topo.ResultsStream, q.topo.DeadLetterStream)
	}
	if o.dryRun {
		if key != "" {
			sent[key] = seq
		}
		out.Status = StatusWouldReplay
		return out, nil
	}

	replays := d.Replays + 1
	m := nats.NewMsg(d.Subject)
	m.Data = keepJobID(out.Op, e.Payload, d)
	m.Header.Set(jetstream.MsgIDHeader, ReplayMsgID(created, seq, replays))
	m.Header.Set(jobs.HeaderReplays, strconv.Itoa(replays))
	m.Header.Set(jobs.HeaderReplayOf, strconv.FormatUint(seq, 10))
	// The replay is a new span in the operator's trace, linked to the one
	// that dead-lettered the job: the replay shows up in the same story.
	// The letter's trace is read on its own: a letter without one would
	// otherwise link the replay to the operator's span, its own parent.
	spanCtx, span := tracing.StartSend(ctx, m, trace.WithLinks(trace.LinkFromContext(tracing.Extract(context.Background(), e.Header))),
		trace.WithAttributes(attribute.Int("clerkjobs.replay.count", replays), attribute.Int64("clerkjobs.replay.of", int64(seq))))
	defer span.End()
	tracing.Inject(spanCtx, m)

	// From here on the entry is finished even if ctx is cancelled: an
	// interrupt must not fall between the acknowledged republish and the
	// delete. Each request is still bounded by the timeout.
	steady := context.WithoutCancel(ctx)
	nc := q.js.Conn()
	before := nc.LastError() // an earlier refusal is not this publish's
	pubCtx, cancel := context.WithTimeout(steady, o.timeout)
	ack, err := q.js.PublishMsg(pubCtx, m)
	cancel()
	if err != nil && refused(nc, before, m.Subject) {
		// The server drops a publish the user may not make, and says so
		// apart: no acknowledgement comes, but nothing was stored. The
		// letter cannot be sent by this user; the others may.
		return skip("the server refused this NATS user publishing to %s (permissions violation), so the job was NOT stored; the dead letter is kept: replay it as a user allowed to publish there", out.Subject)
	}
	if err != nil {
		if jobs.StreamFull(err) {
			return fail(err, "the jobs stream %s is full (%s), so the job was not stored; the dead letter is kept: replay it again later, once the workers have worked off the backlog (the worker's --jobs-max-bytes sets the stream's cap)", q.topo.JobsStream, natsconn.ErrorText(err))
		}
		if jobs.StorageFull(err) {
			return fail(err, "JetStream's storage is full (%s: the account's or the server's limit, max_file_store or max_mem_store, or its disk), so the job was not stored; the dead letter is kept: free or raise JetStream's storage (purge what is not needed, or raise the limit), then replay it again", natsconn.ErrorText(err))
		}
		var refused *jetstream.APIError
		if errors.As(err, &refused) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			return fail(err, "republishing to %s failed (%s); the dead letter is kept: fix the cause and run the replay again", out.Subject, natsconn.ErrorText(err))
		}
		// No answer is not a refusal: the jobs stream may have stored the
		// job, and the same replay is recognized as a duplicate only
		// within the deduplication window.
		return fail(err, "republishing to %s got no acknowledgement (%s): the job may have been stored; the dead letter is kept: run the same replay again within %s, and a stored job is recognized as a duplicate; later than that, find out whether job %s ran (its result) before replaying it, or it may run twice", out.Subject, natsconn.ErrorText(err), q.topo.DedupWindow, out.JobID)
	}
	out.JobSeq, out.Duplicate = ack.Sequence, ack.Duplicate
	if ack.Duplicate {
		// The same replay run again (interrupted after the publish), or
		// another job stored first under this replay's id by whoever may
		// publish jobs: then deleting the letter would lose the job.
		recCtx, cancel := context.WithTimeout(steady, o.timeout)
		found, err := q.compareRecord(recCtx, m, ack.Sequence)
		cancel()
		if !found {
			chkCtx, cancel := context.WithTimeout(steady, o.timeout)
			err = jobs.CheckDuplicate(chkCtx, q.js, q.topo.Subjects, m, ack)
			cancel()
		}
		switch {
		case errors.Is(err, jobs.ErrJobIDReused):
			return fail(jobs.ErrJobIDReused, "the jobs stream holds another job (seq %d) under this replay's message id %s; the dead letter is kept: replay it again once the jobs stream's deduplication window (%s) has passed, and find out who published that job", ack.Sequence, m.Header.Get(jetstream.MsgIDHeader), q.topo.DedupWindow)
		case err != nil:
			// Not err itself, whose advice (publish again with another job
			// id) is a publisher's, not a replay's.
			var dup *jobs.DuplicateError
			if errors.As(err, &dup) && dup.Gone {
				return fail(jobs.ErrDuplicateUnverified, "the jobs stream held a job (seq %d) under this replay's message id %s that could not be compared with this one; the dead letter is kept: if job %s ran (its result), purge the dead letter, else replay it again once the jobs stream's deduplication window (%s) has passed", ack.Sequence, m.Header.Get(jetstream.MsgIDHeader), out.JobID, q.topo.DedupWindow)
			}
			// The stored job, or its record once it ran, could not be read
			// (an operator's user may not read the jobs stream, a cluster
			// elects a leader): it may be this replay's own, and replayed
			// again once the window has passed it would run twice.
			return fail(jobs.ErrDuplicateUnverified, "the jobs stream took a job (seq %d) under this replay's message id %s that could not be compared with this one (it, or its record once it ran, could not be read); the dead letter is kept: it may be this replay's own job: once that job has run, run the same replay again within the jobs stream's deduplication window (%s), and its record tells; later than that, purge the dead letter if job %s has a result, and replay it only once seq %d has left the jobs stream without one", ack.Sequence, m.Header.Get(jetstream.MsgIDHeader), q.topo.DedupWindow, out.JobID, ack.Sequence)
		}
	}

	// Stored: a refused publish (skipped above) sent nothing.
	if key != "" {
		sent[key] = seq
	}
	derr := q.deleteReplayed(steady, seq, o)
	if derr == nil {
		out.Status = StatusReplayed
		return out, nil
	}
	return fail(derr, "republished as job %d on %s, but deleting the dead letter failed (%s): run the same replay again within %s and the republished job is recognized as a duplicate; later than that, purge dead letter %d instead of replaying it", ack.Sequence, ack.Stream, natsconn.ErrorText(derr), q.topo.DedupWindow, seq)
}

// deleteReplayed deletes dead letter seq, whose job is in the jobs stream
// or has run: a letter gone already is no error.
func (q *Queue) deleteReplayed(ctx context.Context, seq uint64, o options) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		delCtx, cancel := context.WithTimeout(ctx, o.timeout)
		_, err = q.delete(delCtx, seq)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// ranSince is checkResult's answer for a letter whose job ran again since
// it was stored: Replay deletes it without sending the job.
type ranSince struct{ reason string }

func (e *ranSince) Error() string        { return e.reason }
func (e *ranSince) Is(target error) bool { return target == ErrNotReplayable }

// resultsStream opens the results stream, for checkResult: nil when there
// is none (no result to find).
func (q *Queue) resultsStream(ctx context.Context, timeout time.Duration) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := q.js.Stream(ctx, q.topo.ResultsStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read results stream %s: %w", q.topo.ResultsStream, err)
	}
	return s, nil
}

// checkResult looks for a record of e's job that makes replaying it run
// the job once more (results may be nil: no results stream). The error
// matches ErrNotReplayable when there is one.
//
// A result beside it: a result wins over a dead letter, and the workers
// remove a letter beside its job's result, but not one stored while none
// ran, nor before its writer, killed, looked: replayed, its job, which
// succeeded, would run again, under a new sequence where the worker finds
// no record to stop it (a create making a second session). A result of
// another job there (its Job-Digest differs: a jobs stream created again)
// does not count.
//
// A record of the same job (its id and digest) stored after the letter:
// the job ran again since, replayed (a replay whose delete failed, run
// again past the deduplication window) or published again. Its result
// says it is done; a newer dead letter stands for it, and is the one to
// replay. The error is then a *ranSince: the letter is only removed.
func (q *Queue) checkResult(ctx context.Context, results jetstream.Stream, e Entry) error {
	if subject, ok := q.topo.Subjects.ResultBeside(e.Subject); ok && results != nil {
		r, err := results.GetLastMsgForSubject(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return err
		default:
			// The workers' rule (a record without a digest is the job's).
			if a, b := r.Header.Get(jobs.HeaderJobDigest), e.Header.Get(jobs.HeaderJobDigest); a == "" || b == "" || a == b {
				return &notReplayable{fmt.Sprintf("its job has a result (seq %d of %s): it succeeded, and the result wins over this dead letter, which no worker has removed yet; replayed, the job would run again: purge this entry", r.Sequence, q.topo.ResultsStream)}
			}
		}
	}
	rs, ok := q.topo.Subjects.ParseDeadLetter(e.Subject)
	d := e.DeadLetter
	if !ok || rs.Legacy || d.JobID == "" || jobs.IDKey(d.JobID) != rs.IDKey {
		return nil
	}
	// Its replay carries the body Replay sends, which may differ from the
	// stored one by its job_id (keepJobID).
	letter, replayed := e.Header.Get(jobs.HeaderJobDigest), jobs.Digest(d.Subject, keepJobID(q.topo.Subjects.OpOf(d.Subject), e.Payload, d))
	same := func(m *jetstream.RawStreamMsg) bool {
		got := m.Header.Get(jobs.HeaderJobDigest)
		return got != "" && (got == letter || got == replayed)
	}
	if results != nil {
		m, err := results.GetLastMsgForSubject(ctx, q.topo.Subjects.JobResults(rs.Tenant, d.JobID, 0))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return err
		case q.ranAfter(m, rs, e) && same(m):
			return &ranSince{fmt.Sprintf("the same job ran again since (replayed by an earlier run, or published again) and has a result (seq %d of %s): sent again, it would run once more, so `dlq replay` only removes this letter", m.Sequence, q.topo.ResultsStream)}
		}
	}
	m, err := q.stream.GetLastMsgForSubject(ctx, q.topo.Subjects.JobDeadLetters(rs.Tenant, d.JobID, 0))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return err
	case m.Sequence > e.Seq && same(m):
		return &ranSince{fmt.Sprintf("the same job ran again since (replayed by an earlier run, or published again) and has a newer dead letter, %d, which stands for it: sent again, it would run once more, so `dlq replay` only removes this letter (replay %d)", m.Sequence, m.Sequence)}
	}
	return nil
}

// ranAfter reports whether result m is of a run of the job later than the
// one dead letter e (its subject rs) records: by the jobs stream's
// sequences, which the records' subjects carry, rather than by the two
// streams' clocks, which may be two servers' and differ. Across a jobs
// stream created again (another generation) only the clocks can tell.
func (q *Queue) ranAfter(m *jetstream.RawStreamMsg, rs jobs.RecordSubject, e Entry) bool {
	if r, ok := q.topo.Subjects.ParseResult(m.Subject); ok && !r.Legacy && r.Gen == rs.Gen {
		return r.Seq > rs.Seq
	}
	return m.Time.After(e.Time)
}

// sentKey names e's job as Replay sends it (its id and the digest of the
// body sent), or is "" for a letter without a job id.
func (q *Queue) sentKey(e Entry) string {
	d := e.DeadLetter
	if d.JobID == "" {
		return ""
	}
	return d.JobID + "\x00" + jobs.Digest(d.Subject, keepJobID(q.topo.Subjects.OpOf(d.Subject), e.Payload, d))
}

// CheckResult is the part of Replay's rule CheckReplay cannot say from the
// letter alone: nil, an error matching ErrNotReplayable when the letter's
// job has a result or ran again since (replayed, it would run once more),
// or another error when the records could not be read. e must have been
// read with its payload.
func (q *Queue) CheckResult(ctx context.Context, e Entry) error {
	s, err := q.resultsStream(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	return q.checkResult(ctx, s, e)
}

// refused reports whether the server has refused this connection a
// publish to subject since before was its last error. A refusal arrives
// before the answer to a flush sent after it.
func refused(nc *nats.Conn, before error, subject string) bool {
	if nc == nil {
		return false
	}
	_ = nc.FlushTimeout(2 * time.Second)
	err := nc.LastError()
	return err != nil && err != before && errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), strconv.Quote(subject))
}

// compareRecord compares m with the record (result or dead letter) of the
// job stored at seq of the jobs stream under m's id, once that job ran:
// found is false when there is none to read. The record comes first, as
// for a tenant's Client.CheckDuplicate: an operator's NATS user reads the
// records streams but not the jobs stream, which holds every pending job's
// secrets (deploy/nats), and a replay run again after the interruption
// finds its job run already.
func (q *Queue) compareRecord(ctx context.Context, m *nats.Msg, seq uint64) (found bool, err error) {
	tenant, op := q.topo.Subjects.ParseJob(m.Subject)
	jobID := m.Header.Get(jetstream.MsgIDHeader)
	if a, err := jobs.Decode(op, m.Data); err == nil && a.CommonFields().JobID != "" {
		jobID = a.CommonFields().JobID
	}
	for _, r := range []struct{ stream, filter string }{
		{q.topo.ResultsStream, q.topo.Subjects.JobResults(tenant, jobID, seq)},
		{q.topo.DeadLetterStream, q.topo.Subjects.JobDeadLetters(tenant, jobID, seq)},
	} {
		s, err := q.js.Stream(ctx, r.stream)
		if err != nil {
			continue
		}
		rec, err := s.GetLastMsgForSubject(ctx, r.filter)
		if err != nil {
			continue
		}
		if rec.Header.Get(jobs.HeaderJobDigest) != jobs.Digest(m.Subject, m.Data) {
			return true, &jobs.DuplicateError{JobID: jobID, Seq: seq, Err: jobs.ErrJobIDReused}
		}
		return true, nil
	}
	return false, nil
}

// keepJobID is the payload to republish for dead letter d: the payload
// itself, or, when its body names no job_id, the payload with d's job id
// written in. Such a job was named by its Nats-Msg-Id, and the replay
// carries another one (ReplayMsgID), which the worker would take as the
// job's id: the requester, who looks the job up by the id it chose, would
// find neither the result nor the dead letter (deleted by the replay). An
// id the worker made up (seq-<n>) is left out, as is one that is not
// usable; the rest of the body is kept byte for byte.
func keepJobID(op jobs.Op, payload []byte, d jobs.DeadLetter) []byte {
	args, err := jobs.Decode(op, payload)
	switch {
	case err != nil, args.CommonFields().JobID != "", d.JobID == "",
		d.JobID == "seq-"+strconv.FormatUint(d.StreamSeq, 10), jobs.CheckJobID(d.JobID) != nil:
		return payload
	}
	open := bytes.IndexByte(payload, '{')
	if open < 0 {
		return payload
	}
	id, _ := json.Marshal(d.JobID) // a string: always encodes
	out := slices.Concat(payload[:open+1], []byte(`"job_id":`), id)
	if rest := bytes.TrimSpace(payload[open+1:]); len(rest) == 0 || rest[0] != '}' {
		out = append(out, ',')
	}
	out = append(out, payload[open+1:]...)
	if _, err := jobs.Decode(op, out); err != nil {
		return payload // never send something that fails where the original would not
	}
	return out
}

// ErrNotReplayable is what CheckReplay's errors match (errors.Is).
var ErrNotReplayable = errors.New("not replayable")

// notReplayable says why a dead letter cannot be replayed; its message is
// the reason alone, for a person.
type notReplayable struct{ reason string }

func (e *notReplayable) Error() string        { return e.reason }
func (e *notReplayable) Is(target error) bool { return target == ErrNotReplayable }

// CheckReplay reports whether Replay would republish e: nil, or an error
// (matching ErrNotReplayable) that says why not and what to do instead. It
// is the one rule: Replay skips what it refuses, and `publish dlq show` and
// the console say the same. A dead letter is replayable when its headers
// name where it came from, its secrets were not redacted, and its payload
// is a valid job for its original subject (jobs.Decode), so that it would
// not be dead-lettered again as invalid. e must have been read with its
// payload (not WithoutPayload).
func (q *Queue) CheckReplay(e Entry) error {
	d := e.DeadLetter
	no := func(format string, a ...any) error { return &notReplayable{fmt.Sprintf(format, a...)} }
	if errors.Is(e.HeaderErr, jobs.ErrNotDeadLetter) {
		return no("it lacks the dead-letter headers (%s, %s), so its original subject is unknown; inspect it with `dlq show %d`", jobs.HeaderSubject, jobs.HeaderClass, e.Seq)
	}
	// The replay count names the republished message; a count that does
	// not parse would give the wrong id, so it is not guessed.
	if v := e.Header.Get(jobs.HeaderReplays); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > jobs.MaxReplays {
			return no("header %s is not a count", jobs.HeaderReplays)
		}
	}
	if !d.Replayable() {
		// The names are the letter's header as stored: cleared of secret
		// shapes (before they are cut) and bounded, as the subject below.
		names := text.Line(redact.Text(strings.Join(d.Redacted, ", ")), 120)
		// Or only its length, when the views hide the header itself
		// (jobs.ShowHeader: a refresh token in a form is shaped like
		// nothing): every view prints this reason.
		if raw := e.Header.Get(jobs.HeaderRedacted); raw != "" {
			if _, secret := jobs.ShowHeader(jobs.HeaderRedacted, raw); secret {
				names = jobs.HiddenHeader(raw)
			}
		}
		return no("its secret fields (%s) were redacted when it was dead-lettered, so it cannot be sent again: ask the requester to submit a new %s job, then purge this entry", names, e.Op)
	}
	// Whoever wrote the letter chose its headers: the subject is shown
	// bounded and with secret-shaped runs hidden.
	shownSubject := strconv.Quote(text.Line(redact.All(d.Subject), 120))
	tenant, op := q.topo.Subjects.ParseJob(d.Subject)
	if op == jobs.OpUnknown {
		return no("its original subject %s is not a job subject under prefix %q: it would fail again; publish a corrected job, then purge this entry", shownSubject, q.topo.Subjects.Prefix)
	}
	// The letter's own subject was chosen by the worker that stored it
	// (its tenant and op come from the job's subject): a Dlq-Subject that
	// names another tenant or op would send the job where it never was.
	// A legacy subject (<prefix>.dlq.<op>) names its op, and no tenant:
	// tenants came with the per-job subjects. A subject the worker never
	// writes vouches for nothing, so its letter is not followed either.
	r, ok := q.topo.Subjects.ParseDeadLetter(e.Subject)
	if !ok {
		return no("its own subject is not a dead-letter subject the worker writes, so where it came from is unknown: it is not sent anywhere; inspect it with `dlq show %d`", e.Seq)
	}
	if r.Tenant != tenant || r.Op != op {
		return no("its original subject %s names another tenant or job type than the dead letter's own subject: it is not sent anywhere; inspect it with `dlq show %d`", shownSubject, e.Seq)
	}
	if e.Payload == nil && e.Size > 0 {
		return no("its payload was not read, so whether it is a valid %s job is unknown", op)
	}
	if _, err := jobs.Decode(op, e.Payload); err != nil {
		return no("its payload is not a valid %s job (%v), so it would fail again: publish a corrected job, then purge this entry", op, err)
	}
	return nil
}

// PurgeReport sums up a Purge.
type PurgeReport struct {
	Purged int `json:"purged"`
	// NotFound entries were gone already (replayed or purged).
	NotFound int `json:"not_found"`
	// Skipped entries were refused by WithExpect's check, and kept.
	Skipped int `json:"skipped,omitempty"`
	// Failed entries hit an error; Purge stops at the first one.
	Failed int `json:"failed"`
	// NotAttempted entries were not reached.
	NotAttempted int           `json:"not_attempted"`
	Problems     []EntryReport `json:"problems,omitempty"`
}

// Purge deletes the dead letters seqs. It stops at the first failure or
// when ctx is cancelled. Options: WithExpect, WithProgress, WithTimeout.
func (q *Queue) Purge(ctx context.Context, seqs []uint64, opts ...Option) (PurgeReport, error) {
	o := collect(opts)
	var rep PurgeReport
	for i, seq := range seqs {
		if err := ctx.Err(); err != nil {
			rep.NotAttempted = len(seqs) - i
			return rep, err
		}
		out := EntryReport{Seq: seq, Status: StatusPurged}
		found, refused, err := q.vet(ctx, seq, o, &out)
		if found && !refused {
			delCtx, cancel := context.WithTimeout(ctx, o.timeout)
			found, err = q.delete(delCtx, seq)
			cancel()
		}
		switch {
		case refused:
			rep.Skipped++
			rep.Problems = append(rep.Problems, out)
		case err == nil && found:
			rep.Purged++
		case err == nil:
			out.Status, out.Reason = StatusSkipped, "not in the dead-letter queue (already replayed or purged?)"
			rep.NotFound++
			rep.Problems = append(rep.Problems, out)
		default:
			out.Status, out.Reason = StatusFailed, fmt.Sprintf("delete failed: %v", err)
			rep.Failed++
			rep.Problems = append(rep.Problems, out)
		}
		if o.progress != nil {
			o.progress(out)
		}
		if out.Status == StatusFailed {
			rep.NotAttempted = len(seqs) - i - 1
			return rep, fmt.Errorf("purge dead letter %d: %w", seq, err)
		}
	}
	return rep, nil
}

// vet reads dead letter seq before a purge when the purge needs it:
// refused is true when WithExpect's check refused it (out says why), and
// found false when it is not in the queue. In a scoped queue it is read even
// without a check: a sequence is the whole stream's, and one of another
// tenant's letters is not this queue's to delete (Get does not find it).
// Otherwise found is true, and the delete finds out whether it is there.
func (q *Queue) vet(ctx context.Context, seq uint64, o options, out *EntryReport) (found, refused bool, err error) {
	if o.expect == nil && !q.scoped() {
		return true, false, nil
	}
	getCtx, cancel := context.WithTimeout(ctx, o.timeout)
	e, err := q.Get(getCtx, seq)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		return !q.scoped(), false, nil // unscoped: the delete finds out
	case err != nil:
		return false, false, err
	}
	if o.expect != nil {
		out.JobID, out.Op = redact.Text(e.DeadLetter.JobID), e.Op
		if cerr := o.expect(e); cerr != nil {
			out.Status, out.Reason = StatusSkipped, cerr.Error()
			return true, true, nil
		}
	}
	return true, false, nil
}

// delete removes dead letter seq. found is false when it was not there (the
// server answers a delete of a missing sequence with a generic error, so a
// failed delete is checked with a get).
func (q *Queue) delete(ctx context.Context, seq uint64) (found bool, err error) {
	err = q.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if _, gerr := q.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return true, err
}

// pace waits for lim (nil: no limit) unless ctx has ended or ends first.
// Unlike rate.Limiter.Wait, it fails only with ctx's own error, when ctx
// really ends, so callers can tell an interrupt from a failure.
func pace(ctx context.Context, lim *rate.Limiter) error {
	if lim == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	r := lim.Reserve()
	err := clock.Sleep(ctx, r.Delay())
	if err != nil {
		r.Cancel()
	}
	return err
}
