package worker

import (
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
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// recordTimeout bounds publishing one result or dead letter.
const recordTimeout = 10 * time.Second

// process runs one delivery and settles it: ack after a confirmed record,
// or nak. Whatever happens, the job is either recorded or left in the
// stream.
func (w *Worker) process(ctx context.Context, run handlerFunc, msg jetstream.Msg) {
	sm := msg.(*slotMsg)
	defer sm.done()
	w.metrics.inFlight.Inc()
	defer w.metrics.inFlight.Dec()
	meta, err := msg.Metadata()
	if err != nil { // not a JetStream message: cannot happen on a pull consumer
		w.cfg.Logger.Error().Err(err).Str("subject", msg.Subject()).Msg("message without JetStream metadata; leaving it to redelivery")
		return
	}
	w.inflight.add(msg, meta.Sequence.Stream)
	defer w.inflight.remove(msg)
	j := &job{
		Op:       w.cfg.Topology.Subjects.OpOf(msg.Subject()),
		Seq:      meta.Sequence.Stream,
		Delivery: int(meta.NumDelivered),
		Started:  time.Now(),
	}
	args, decErr := jobs.Decode(j.Op, msg.Data())
	j.ID = jobID(args, msg, j.Seq)
	if decErr == nil {
		decErr = w.checkReplyTo(args)
	}
	if decErr != nil {
		replyTo := replyToOf(args, msg.Data())
		if !validReplyTo(replyTo) || w.cfg.Topology.Subjects.Owns(replyTo) || !w.replyAllowed(replyTo) {
			replyTo = ""
		}
		w.deadLetter(msg, meta, j, invalidInfo(decErr), replyTo)
		return
	}
	// Handlers see the effective job id, whichever source it came from.
	args.CommonFields().JobID = j.ID
	j.Args = args
	out, err := run(ctx, j)
	w.settle(ctx, msg, meta, j, out, err)
}

// settle records the delivery's outcome and acks or naks the job.
func (w *Worker) settle(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, j *job, out handlers.Outcome, err error) {
	replyTo := j.Args.CommonFields().ReplyTo
	if err == nil {
		w.succeed(msg, meta, j, out, replyTo)
		return
	}
	switch class := clerkapi.ClassOf(err); {
	case ctx.Err() != nil:
		// Shutdown (or a job that outlived the drain timeout): another
		// worker takes it at once. Only this delivery is spent. Only the
		// worker's own context counts: a Clerk call that timed out is a
		// DeadlineExceeded too, but retryable.
		w.history.add(j.Seq, j.Failures)
		w.nak(msg, j, 0, "shutdown")
	case class == clerkapi.Permanent || errors.Is(err, handlers.ErrUnsupported) || errors.Is(err, errRejectedJob):
		w.deadLetter(msg, meta, j, errorInfo(jobs.ClassPermanent, err), replyTo)
	case j.Delivery >= w.cfg.Topology.MaxDeliver:
		w.deadLetter(msg, meta, j, errorInfo(jobs.ClassExhausted, fmt.Errorf("gave up after %d deliveries: %w", j.Delivery, err)), replyTo)
	default:
		w.history.add(j.Seq, j.Failures)
		w.nak(msg, j, w.cfg.Retry.nakDelay(j.Delivery), err.Error())
	}
}

func (w *Worker) succeed(msg jetstream.Msg, meta *jetstream.MsgMetadata, j *job, out handlers.Outcome, replyTo string) {
	res := w.result(meta, j, jobs.Succeeded)
	res.Result, res.AlreadyRevoked = out.Result, out.AlreadyRevoked
	if out.Secret != nil {
		// The secret goes to reply_to and nowhere else: not the results
		// stream, not the log. The stored result records the delivery.
		withSecret := res
		withSecret.Secret, withSecret.SecretDelivered = out.Secret, true
		if err := w.reply(replyTo, withSecret); err != nil {
			w.nak(msg, j, w.cfg.Retry.nakDelay(j.Delivery), "reply: "+err.Error())
			return
		}
		res.SecretDelivered = true
	}
	data, err := encodeResult(&res, w.trustedResults)
	if err != nil {
		err = fmt.Errorf("encode result: %w", err)
	} else {
		err = w.record(w.cfg.Topology.ResultsStream, w.cfg.Topology.Subjects.Result(j.Op), "result", j.Seq, nil, data)
	}
	if err != nil {
		w.nak(msg, j, w.cfg.Retry.nakDelay(j.Delivery), err.Error())
		return
	}
	if out.Secret == nil && replyTo != "" {
		_ = w.send(replyTo, data) // best effort: the stored result is the record
	}
	w.ack(msg, j, string(jobs.Succeeded), nil)
	if out.Done != nil {
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		defer cancel()
		if err := out.Done(ctx); err != nil {
			w.cfg.Logger.Warn().Str("job_id", j.ID).Err(err).Msg("cleanup after the job failed (its progress expires on its own)")
		}
	}
}

// deadLetter records the job in the dead-letter stream, tells reply_to, and
// acks. If JetStream refuses the dead letter (the stream is full), the job
// is naked instead: kept, never dropped.
func (w *Worker) deadLetter(msg jetstream.Msg, meta *jetstream.MsgMetadata, j *job, info jobs.ErrorInfo, replyTo string) {
	now := time.Now().UTC()
	hist := append(w.history.take(j.Seq), j.Failures...)
	if len(hist) == 0 {
		hist = []jobs.Failure{{At: now, Error: info.Message, Status: info.HTTPStatus, Code: info.ClerkCode, TraceID: info.TraceID}}
	}
	attempts := j.Attempts
	if prev := len(hist) - len(j.Failures); prev > 0 {
		attempts += prev
	}
	body, redacted := jobs.Redact(j.Op, msg.Data())
	replays, _ := strconv.Atoi(msg.Headers().Get(jobs.HeaderReplays))
	dl := jobs.DeadLetter{
		Subject: msg.Subject(), StreamSeq: j.Seq, JobID: j.ID, Op: j.Op, Error: info,
		Attempts: attempts, Deliveries: int(meta.NumDelivered),
		FirstFailure: hist[0].At, LastFailure: hist[len(hist)-1].At,
		Worker: w.cfg.Instance, History: hist, Redacted: redacted, Replays: replays,
	}
	if err := w.record(w.cfg.Topology.DeadLetterStream, w.cfg.Topology.Subjects.DeadLetter(j.Op), "dlq", j.Seq, dl.Header(), body); err != nil {
		w.history.add(j.Seq, j.Failures)
		w.nak(msg, j, w.cfg.Retry.NakDelay, err.Error())
		return
	}
	w.metrics.deadLetters.WithLabelValues(string(j.Op), string(info.Class)).Inc()
	if replyTo != "" {
		res := w.result(meta, j, jobs.Failed)
		res.Error = &info
		_ = w.reply(replyTo, res)
	}
	w.ack(msg, j, "dead_lettered", &info)
}

func (w *Worker) result(meta *jetstream.MsgMetadata, j *job, o jobs.Outcome) jobs.Result {
	now := time.Now()
	return jobs.Result{
		JobID: j.ID, Op: j.Op, Outcome: o, Attempts: j.Attempts, Deliveries: int(meta.NumDelivered),
		StreamSeq: j.Seq, EnqueuedAt: meta.Timestamp.UTC(), StartedAt: j.Started.UTC(), FinishedAt: now.UTC(),
		DurationMS: float64(now.Sub(j.Started).Microseconds()) / 1000, Worker: w.cfg.Instance,
	}
}

// record publishes a result or dead letter and waits for JetStream to store
// it. Its Nats-Msg-Id is derived from the job's sequence: a redelivered job
// that was recorded before a crash is deduplicated, not recorded twice.
func (w *Worker) record(stream, subject, kind string, seq uint64, h nats.Header, v any) error {
	return w.recordWithID(stream, subject, kind, fmt.Sprintf("%s-%d", w.recordIDs, seq), h, v)
}

// recordWithID publishes a record under an explicit deduplication id.
func (w *Worker) recordWithID(stream, subject, kind, id string, h nats.Header, v any) error {
	m := nats.NewMsg(subject)
	if h != nil {
		m.Header = h
	}
	switch b := v.(type) {
	case []byte:
		m.Data = b
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", kind, err)
		}
		m.Data = data
	}
	m.Header.Set(jetstream.MsgIDHeader, kind+"-"+id)
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if _, err := w.js.PublishMsg(ctx, m, jetstream.WithExpectStream(stream)); err != nil {
		w.metrics.recordFailures.WithLabelValues(stream).Inc()
		msg := fmt.Sprintf("stream %s refused the %s %s: %v", stream, kind, id, err)
		switch {
		case isFull(err):
			msg += " (the stream is full: raise its limits or purge it; the job is kept)"
		case errors.Is(err, jetstream.ErrNoStreamResponse):
			// Only a stream's leader takes messages: none answers between
			// the loss of a leader's node and the election of the next.
			msg += " (no server took it: after the loss of a NATS node this lasts until the stream has a new leader, seconds; if it lasts, check that the stream exists and that most of its replicas' nodes are up; the job is kept)"
		}
		w.recordErr.Store(&refusal{reason: msg, at: w.clock.Now()})
		w.cfg.Logger.Error().Str("stream", stream).Str("record", id).Str("error", err.Error()).
			Msg("could not record the job's outcome; keeping the job (naked) and trying again later")
		return errors.New(msg)
	}
	w.recordErr.Store(nil)
	return nil
}

func isFull(err error) bool {
	var apiErr *jetstream.APIError
	// 10077: store failed ("maximum bytes exceeded" with DiscardNew);
	// 10047: insufficient storage resources.
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == 10077 || apiErr.ErrorCode == 10047)
}

// reply sends a result to a job's reply_to over core NATS: it is the
// requester's private subject, never a stream.
func (w *Worker) reply(subject string, res jobs.Result) error {
	if subject == "" {
		return nil
	}
	b, err := encodeResult(&res, w.trustedResults)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	return w.send(subject, b)
}

// send publishes an encoded result to a reply_to subject.
func (w *Worker) send(subject string, b []byte) error {
	if err := w.nc.Publish(subject, b); err != nil {
		return fmt.Errorf("reply to %s: %w", subject, err)
	}
	return nil
}

func (w *Worker) ack(msg jetstream.Msg, j *job, outcome string, info *jobs.ErrorInfo) {
	w.inflight.remove(msg) // no progress signal may follow the settlement
	w.history.take(j.Seq)
	if err := msg.Ack(); err != nil {
		// The record is stored; a redelivery will be deduplicated.
		w.cfg.Logger.Warn().Str("job_id", j.ID).Err(err).Msg("ack failed; the job may be redelivered (its record is deduplicated)")
	}
	w.metrics.jobs.WithLabelValues(string(j.Op), outcome).Inc()
	w.metrics.jobDuration.WithLabelValues(string(j.Op)).Observe(time.Since(j.Started).Seconds())
	ev := w.cfg.Logger.Info()
	if info != nil {
		ev = w.cfg.Logger.Warn().Str("class", string(info.Class)).Str("error", info.Message)
		if info.HTTPStatus != 0 {
			ev = ev.Int("http_status", info.HTTPStatus)
		}
		if info.TraceID != "" {
			ev = ev.Str("trace_id", info.TraceID)
		}
	}
	w.logJob(ev, j).Str("outcome", outcome).Msg("job " + outcome)
}

func (w *Worker) nak(msg jetstream.Msg, j *job, delay time.Duration, reason string) {
	// A progress signal after the nak would cancel its delay (the server
	// restarts the ack wait), so stop the heartbeat first.
	w.inflight.remove(msg)
	if err := msg.NakWithDelay(delay); err != nil {
		w.cfg.Logger.Warn().Str("job_id", j.ID).Err(err).Msg("nak failed; the job will be redelivered after the ack wait")
	}
	w.metrics.jobs.WithLabelValues(string(j.Op), "redelivered").Inc()
	ev := w.cfg.Logger.Info().Dur("redeliver_in", delay).Str("error", reason)
	if n := len(j.Failures); n > 0 && j.Failures[n-1].TraceID != "" {
		ev = ev.Str("trace_id", j.Failures[n-1].TraceID)
	}
	w.logJob(ev, j).Str("outcome", "redelivered").Msg("job will be retried")
}

func (w *Worker) logJob(ev *zerolog.Event, j *job) *zerolog.Event {
	return ev.Str("job_id", j.ID).Str("op", string(j.Op)).Uint64("stream_seq", j.Seq).
		Int("delivery", j.Delivery).Int("attempts", j.Attempts).Dur("duration", time.Since(j.Started))
}

// checkReplyTo refuses a reply_to under the worker's own prefix: answers
// sent there could be captured by a stream, and secrets must never be.
func (w *Worker) checkReplyTo(a jobs.Args) error {
	r := a.CommonFields().ReplyTo
	if r == "" {
		return nil
	}
	if w.cfg.Topology.Subjects.Owns(r) || r[0] == '$' {
		return &jobs.InvalidError{Op: a.Op(), Field: "/reply_to", Reason: fmt.Sprintf("%q is under the jobs prefix or a system subject; use a private inbox such as _INBOX.<id>", r)}
	}
	if !w.replyAllowed(r) {
		return &jobs.InvalidError{Op: a.Op(), Field: "/reply_to", Reason: fmt.Sprintf("%q does not start with an allowed reply prefix (%s)", r, strings.Join(w.cfg.ReplyPrefixes, ", "))}
	}
	return nil
}

// replyAllowed applies ReplyPrefixes (none: any subject).
func (w *Worker) replyAllowed(r string) bool {
	return len(w.cfg.ReplyPrefixes) == 0 || slices.ContainsFunc(w.cfg.ReplyPrefixes, func(p string) bool { return strings.HasPrefix(r, p) })
}

// jobID is the job's job_id, else its Nats-Msg-Id, else seq-<n>.
func jobID(a jobs.Args, msg jetstream.Msg, seq uint64) string {
	if a != nil && a.CommonFields().JobID != "" {
		return a.CommonFields().JobID
	}
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		return id
	}
	return "seq-" + strconv.FormatUint(seq, 10)
}

// replyToOf digs reply_to out of a job that failed validation, so the
// requester still hears why; only a syntactically valid subject outside the
// prefix is used.
func replyToOf(a jobs.Args, data []byte) string {
	if a != nil {
		return a.CommonFields().ReplyTo
	}
	var probe struct {
		ReplyTo string `json:"reply_to"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return ""
	}
	return probe.ReplyTo
}

// validReplyTo accepts a publishable subject that is not a system one.
func validReplyTo(s string) bool {
	if s == "" || s[0] == '$' || strings.ContainsAny(s, " \t\r\n*>") {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

func invalidInfo(err error) jobs.ErrorInfo {
	info := jobs.ErrorInfo{Class: jobs.ClassInvalid, Message: err.Error()}
	var ie *jobs.InvalidError
	if errors.As(err, &ie) {
		info.Field = ie.Field
	}
	return info
}

func errorInfo(class jobs.ErrorClass, err error) jobs.ErrorInfo {
	info := jobs.ErrorInfo{Class: class, Message: err.Error()}
	if e, ok := asAPIError(err); ok {
		info.HTTPStatus, info.ClerkCode, info.ClerkMessage, info.TraceID = e.StatusCode, e.Code(), e.Message(), e.TraceID
	}
	return info
}
