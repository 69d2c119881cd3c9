package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// process runs one delivery and settles it: ack after a stored record, nak,
// or park until the record is stored. Whatever happens, the job is either
// recorded or left in the stream.
func (w *Worker) process(ctx context.Context, run handlerFunc, d *delivery) {
	defer d.release()
	w.metrics.inFlight.Inc()
	defer w.metrics.inFlight.Dec()
	j := w.newJob(d.msg.Subject(), d.seq(), d.meta.Timestamp, int(d.meta.NumDelivered))
	bodyErr := w.readBody(ctx, d)
	ctx, span := w.startDelivery(ctx, d, j)
	defer span.End()
	j.ctx = ctx
	if bodyErr != nil {
		// Never run, nor dead-lettered, without its body: handed back, it
		// is read again at its next delivery (the backstop's dead letter,
		// if it comes to that, reads it whole from the stream).
		w.nak(d, j, w.cfg.Retry.nakDelay(j.Delivery), bodyErr.Error())
		return
	}
	if err := w.decode(ctx, j, d.headers(), d.data()); err != nil {
		if errors.Is(err, errReplyLookup) {
			w.history.add(j, []jobs.Failure{{At: time.Now().UTC(), Error: err.Error()}})
			w.nak(d, j, w.cfg.Retry.nakDelay(j.Delivery), err.Error())
			return
		}
		w.deadLetter(ctx, d, j, j.invalidInfo(err))
		return
	}
	if j.Delivery > 1 || unrepeatable(j.Op) && (d.mayBeAgain() || d.mayHaveRival(w.ackWait()/2)) {
		// An earlier delivery may have stored the job's record and lost its
		// acknowledgement (a crash, a timeout, a consumer deleted): the
		// job is done then. A first delivery of a job stored before its
		// consumer was created, or one that waited past half the ack wait
		// (in a busy worker's prefetch buffer, where no heartbeat keeps it,
		// JetStream gave it to another worker meanwhile), is looked for
		// only when running it again would do harm: a backlog queued before
		// the first worker started would otherwise pay for a look per job,
		// and any other job run again finds its record taken when it stores
		// its own.
		k, err := w.records.find(ctx, j, d.msg.Subject(), d.data())
		switch {
		case err == nil && k != 0:
			w.settleRecorded(d, j, k)
			return
		case err != nil && !errors.As(err, new(*foreignRecord)):
			// Not known whether the job is done: run again, a create
			// could make a second session and a refresh spend its token
			// twice. Handed back, it is looked for again. (Another job's
			// record on its subject is a stream created again: the job
			// runs, and is recorded under the new generation.)
			w.nak(d, j, w.cfg.Retry.nakDelay(j.Delivery), err.Error())
			return
		}
	}
	out, err := run(withJob(ctx, j), j)
	w.settle(ctx, d, j, out, err)
}

// readBody reads the job's message from the jobs stream when its consumer
// delivered its headers alone: an operator set headers_only on the
// consumer while the workers run (nats consumer edit), and JetStream then
// delivers every job without its body, saying the body's size in
// Nats-Msg-Size. Taken as delivered, the job was dead-lettered as invalid
// (an empty body) and acked: its body, gone from the work queue, was in no
// record, and the job could not be replayed. The message read is the
// delivery's only when its subject and time are the delivery's: a jobs
// stream created again holds another job at the sequence.
func (w *Worker) readBody(ctx context.Context, d *delivery) error {
	if len(d.msg.Data()) > 0 || d.msg.Headers().Get(nats.MsgSize) == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	st, err := w.js.Stream(cctx, w.cfg.Topology.JobsStream)
	if err != nil {
		return fmt.Errorf("delivered without its body (the consumer is set to headers_only), and the jobs stream cannot be read: %w", err)
	}
	m, err := st.GetMsg(cctx, d.seq())
	if err != nil {
		return fmt.Errorf("delivered without its body (the consumer is set to headers_only), and the job cannot be read from the jobs stream: %w", err)
	}
	if m.Subject != d.msg.Subject() || !m.Time.Equal(d.meta.Timestamp) {
		return errors.New("delivered without its body (the consumer is set to headers_only), and the jobs stream holds another job at its sequence (created again)")
	}
	d.body, d.header = m.Data, m.Header
	return nil
}

// newJob reads what a job's subject and place in the stream say about it,
// before its body is looked at.
func (w *Worker) newJob(subject string, seq uint64, stored time.Time, delivery int) *job {
	tenant, op := w.cfg.Topology.Subjects.ParseJob(subject)
	j := &job{
		Op: op, Tenant: tenant, Seq: seq, Stored: stored, Delivery: delivery, Started: time.Now(),
		ID: "seq-" + strconv.FormatUint(seq, 10),
	}
	if tenant != "" && jobs.CheckTenant(tenant) != nil {
		tenant = "" // an unusable tenant is no subject token: recorded outside tenants
	}
	j.Key = jobs.RecordKey{Tenant: tenant, Op: op, JobID: j.ID, Gen: w.records.generation(), Seq: j.Seq}
	return j
}

// decode checks everything about the job that comes from its message —
// subject, headers, body, reply_to — before anything is done with it, and
// fills in j. An error is a *jobs.InvalidError (the job is dead-lettered)
// or errReplyLookup (tried again later).
func (w *Worker) decode(ctx context.Context, j *job, header nats.Header, data []byte) error {
	args, decErr := jobs.Decode(j.Op, data)
	j.secrets = secretsOf(args)
	if j.Tenant != "" {
		if err := jobs.CheckTenant(j.Tenant); err != nil {
			return &jobs.InvalidError{Op: j.Op, Reason: "subject: " + err.Error()}
		}
	}
	// The job id: the body's job_id, else the Nats-Msg-Id header, else
	// seq-<n>. It goes into subjects, keys, headers and log lines, so one
	// that cannot be used (jobs.CheckJobID: a bad character, too long,
	// shaped like a secret) makes the job invalid, recorded as seq-<n>.
	var invalid *jobs.InvalidError
	bodyID := ""
	if args == nil {
		bodyID = jobs.BodyJobID(data)
	}
	switch h := header.Get(jetstream.MsgIDHeader); {
	case args != nil && args.CommonFields().JobID != "":
		j.ID = args.CommonFields().JobID
	case errors.As(decErr, &invalid) && invalid.Field == "/job_id":
		// The body names an id that cannot be used. The header is no
		// fallback: it is the publisher's copy of the same id as often as
		// not (Nats-Msg-Id is the job id for jobs.Publish and the
		// client), and the job stays seq-<n> whatever it holds.
	case bodyID != "":
		// Invalid for another reason: recorded under the id its publisher
		// gave, where it looks (Client.Wait), and names in the answer.
		j.ID = bodyID
	case h != "":
		if err := jobs.CheckJobID(h); err != nil {
			return &jobs.InvalidError{Op: j.Op, Reason: "header " + jetstream.MsgIDHeader + ": " + err.Error() + "; set job_id in the body or a usable Nats-Msg-Id"}
		}
		j.ID = h
	}
	j.Key.JobID = j.ID
	if decErr != nil {
		// Tell the requester why, if its reply_to can be told.
		if r := replyToOf(args, data); r != "" && w.replies.check(ctx, j.Op, j.Tenant, r) == nil {
			j.ReplyTo = r
		}
		return decErr
	}
	args.CommonFields().JobID = j.ID // handlers see the effective id
	j.Args = args
	if r := args.CommonFields().ReplyTo; r != "" {
		if err := w.replies.check(ctx, j.Op, j.Tenant, r); err != nil {
			return err
		}
		j.ReplyTo = r
	} else if j.Op.Secret() {
		// The schemas require reply_to here; this keeps a custom schema
		// from ever minting a token nobody receives.
		return &jobs.InvalidError{Op: j.Op, Field: "/reply_to", Reason: "required: the answer is a secret sent nowhere else"}
	}
	return nil
}

// settle records the delivery's outcome and acks or naks the job.
func (w *Worker) settle(ctx context.Context, d *delivery, j *job, out handlers.Answer, err error) {
	if err == nil {
		if ctx.Err() != nil {
			// Done as the drain timeout passed (its Clerk call answered as
			// the worker's context ended): its result is stored all the
			// same, on a context the shutdown has not cancelled, bounded
			// by recordTimeout. On the ended one every publish failed at
			// once, and the outcome was parked and then naked (the job run
			// again) or, for a create or refresh, dead-lettered.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
			defer cancel()
			ctx = sctx
		}
		w.succeed(ctx, d, j, out)
		return
	}
	switch class := clerkapi.ClassOf(err); {
	case ctx.Err() != nil && errors.Is(err, clerkapi.ErrUnconfirmed):
		// A create or refresh cut by the shutdown once its request went
		// out: Clerk may have carried it out, and the next worker would
		// send it again. Recorded as the permanent failure it is, on a
		// context the shutdown has not cancelled.
		w.deadLetter(context.WithoutCancel(ctx), d, j, j.errorInfo(jobs.ClassPermanent, err))
	case ctx.Err() != nil:
		// Shutdown (or a job that outlived the drain timeout): another
		// worker takes it at once. Only this delivery is spent. Only the
		// worker's own context counts: a Clerk call that timed out is a
		// DeadlineExceeded too, but retryable.
		w.history.add(j, j.Failures)
		w.nak(d, j, 0, "shutdown")
	case class == clerkapi.Permanent || errors.Is(err, handlers.ErrUnsupported) || errors.Is(err, errRejectedJob) || errors.Is(err, errHandlerPanic):
		w.deadLetter(ctx, d, j, j.errorInfo(jobs.ClassPermanent, err))
	case j.Delivery >= w.cfg.Topology.MaxDeliver:
		w.deadLetter(ctx, d, j, j.errorInfo(jobs.ClassExhausted, gaveUp(j.Delivery, err)))
	default:
		w.history.add(j, j.Failures)
		w.nak(d, j, w.cfg.Retry.nakDelay(j.Delivery), j.redact(err.Error()))
	}
}

// gaveUp is the error of a job dead-lettered after its last delivery
// failed retryably.
func gaveUp(deliveries int, err error) error {
	return withReason(fmt.Errorf("gave up after %d deliveries", deliveries), err)
}

// withReason adds to a job's error why the worker ends the job (reason,
// kept in the chain for the settlement's errors.Is). The reason comes
// first, except before the error of a revoke_all whose user is not locked
// (handlers.LockRefusedError): that starts with the user NOT locked and
// the sessions revoked, which the lists cut short (dlq list at 60
// characters) and which a reason first would push out of sight, or read
// as nothing done.
func withReason(reason, err error) error {
	var lr *handlers.LockRefusedError
	if errors.As(err, &lr) {
		return fmt.Errorf("%w (%w)", err, reason)
	}
	return fmt.Errorf("%w: %w", reason, err)
}

func (w *Worker) succeed(ctx context.Context, d *delivery, j *job, out handlers.Answer) {
	res := answered{Result: w.result(d, j, jobs.Succeeded), Answer: asJSON(out.Result)}
	res.AlreadyRevoked = out.AlreadyRevoked
	secret := asJSON(out.Secret)
	if j.Op.Secret() && (res.Answer != nil || secret == nil) {
		// A token or refresh answer is a secret: stored as a Result it
		// would sit in the results stream. (The fixed text keeps it out of
		// the dead letter too.)
		w.deadLetter(ctx, d, j, j.errorInfo(jobs.ClassPermanent, fmt.Errorf("the handler answered a %s job with a result and no secret: its answer must be a Secret, sent only to reply_to", j.Op)))
		return
	}
	// The secret goes to reply_to and nowhere else: not the results
	// stream, not the log. The stored result records the delivery, and is
	// stored only once the server has taken the reply.
	if secret != nil && j.ReplyTo == "" {
		w.logJob(w.cfg.Logger.Warn(), j).Msg("the handler's secret answer was dropped: the job has no reply_to")
		secret = nil
	}
	res.SecretDelivered = secret != nil
	// Both encodings come before anything is sent, so that an answer that
	// cannot be encoded never leaves half a job behind (a token minted and
	// delivered, no result stored).
	data, err := json.Marshal(res)
	if err != nil {
		w.deadLetter(ctx, d, j, j.errorInfo(jobs.ClassPermanent, fmt.Errorf("the handler's answer cannot be encoded as JSON: %w", err)))
		return
	}
	if secret != nil {
		withSecret := res
		withSecret.Secret = secret
		b, err := json.Marshal(withSecret)
		if err != nil {
			// Not %w: the encoder's error may quote the secret.
			w.deadLetter(ctx, d, j, j.errorInfo(jobs.ClassPermanent, errors.New("the handler's secret answer cannot be encoded as JSON")))
			return
		}
		if err := w.replies.send(withTrace(j, &nats.Msg{Subject: j.ReplyTo, Data: b}), true); err != nil {
			if j.Op == jobs.OpRefresh {
				// Clerk carried the refresh out: run again, it would send
				// the spent refresh token a second time.
				w.deadLetter(ctx, d, j, j.errorInfo(jobs.ClassPermanent, fmt.Errorf(
					"the refreshed token could not be delivered (%w): the refresh is done and its refresh token spent, so it is not sent again; the requester refreshes anew", err)))
				return
			}
			w.nak(d, j, w.cfg.Retry.nakDelay(j.Delivery), err.Error())
			return
		}
	}
	h := nats.Header{jobs.HeaderJobDigest: {jobs.Digest(d.msg.Subject(), d.data())}}
	w.records.commit(ctx, &outcome{d: d, j: j, kind: kindResult, header: h, body: data, done: func() {
		if !res.SecretDelivered && j.ReplyTo != "" {
			// Best effort: the stored result is the record.
			_ = w.replies.send(withTrace(j, &nats.Msg{Subject: j.ReplyTo, Data: data}), false)
		}
		w.ack(d, j, string(jobs.Succeeded), nil)
		if out.Done != nil {
			// With the job: the progress store keys a job's progress by its
			// message (kvProgress.key), and without it would delete another
			// key, leaving the finished job listed as in progress.
			ctx, cancel := context.WithTimeout(withJob(context.Background(), j), recordTimeout)
			defer cancel()
			if err := out.Done(ctx); err != nil {
				w.cfg.Logger.Warn().Str("job_id", j.ID).Err(err).Msg("cleanup after the job failed (its progress expires on its own)")
			}
		}
	}})
}

// deadLetter records the job in the dead-letter stream, tells reply_to, and
// acks. If JetStream refuses the dead letter (the stream is full), the
// outcome is parked: the job is kept, with its class, until it can be
// recorded.
func (w *Worker) deadLetter(ctx context.Context, d *delivery, j *job, info jobs.ErrorInfo) {
	now := time.Now().UTC()
	hist := append(w.history.take(j), j.Failures...)
	if len(hist) == 0 {
		hist = []jobs.Failure{{At: now, Error: info.Message, Status: info.HTTPStatus, Code: info.ClerkCode, TraceID: info.TraceID}}
	}
	// Each failure in hist beyond this delivery's own was an attempt too,
	// the one made up above when none is known included.
	attempts := j.Attempts + len(hist) - len(j.Failures)
	replays := jobs.ReplayCount(d.headers())
	o := w.deadLetterOutcome(j, d.msg.Subject(), d.data(), info, hist, attempts, int(d.meta.NumDelivered), replays)
	o.d = d
	o.done = func() {
		w.metrics.deadLetters.WithLabelValues(string(j.Op), string(info.Class)).Inc()
		if j.ReplyTo != "" {
			// Over core NATS, best effort: reply_to is the requester's
			// private subject, never a stream; the dead letter is the record.
			res := w.result(d, j, jobs.Failed)
			res.Error = &info
			if b, err := json.Marshal(res); err == nil {
				_ = w.replies.send(withTrace(j, &nats.Msg{Subject: j.ReplyTo, Data: b}), false)
			}
		}
		w.ack(d, j, "dead_lettered", &info)
		w.dropProgress(j)
	}
	w.records.commit(ctx, o)
}

// dropProgress deletes a revoke_all's progress once its dead letter is
// confirmed, as Answer.Done does once its result is: the job is finished,
// and its progress would list it as in progress (the console reads the
// bucket) for the bucket's TTL. Nothing reads it again: the progress is
// keyed by the job's message, a replay of the letter is a new message,
// and a redelivery of this one (its ack lost) finds the letter and is
// settled without running. Never before the letter is confirmed: a
// delivery cut before then resumes from the progress.
func (w *Worker) dropProgress(j *job) {
	if j.Op != jobs.OpRevokeAll || w.progress == nil {
		return
	}
	// With the job: the store keys the progress by its message.
	ctx, cancel := context.WithTimeout(withJob(context.Background(), j), recordTimeout)
	defer cancel()
	if err := w.progress.Delete(ctx, j.ID); err != nil {
		w.cfg.Logger.Warn().Str("job_id", j.ID).Err(err).Msg("cleanup after the job's dead letter failed (its progress expires on its own)")
	}
}

// deadLetterOutcome builds the dead letter of a job: the one place dead
// letters are made (a delivery's failure, the backstop's rescue, a
// revoke_all's session). The payload is redacted here, and every text is
// cleared of the job's secrets.
func (w *Worker) deadLetterOutcome(j *job, subject string, payload []byte, info jobs.ErrorInfo, hist []jobs.Failure, attempts, deliveries, replays int) *outcome {
	for i := range hist {
		hist[i].Error = j.redact(hist[i].Error)
		hist[i].TraceID = j.redact(hist[i].TraceID)
	}
	body, redacted := jobs.Redact(j.Op, payload)
	// The subject is the publisher's text too: the jobs stream captures
	// every sessions.* subject, a key pasted as the op included. Such a
	// letter is not replayable (its subject is not the job's any more);
	// Job-Digest below is of the subject as it came, a hash.
	shown := subject
	if clean := redact.All(subject); clean != subject {
		shown, redacted = clean, append(redacted, "subject")
	}
	dl := jobs.DeadLetter{
		Subject: shown, StreamSeq: j.Seq, JobID: j.ID, Op: j.Op, Error: info,
		Attempts: attempts, Deliveries: deliveries,
		FirstFailure: hist[0].At, LastFailure: hist[len(hist)-1].At,
		Worker: w.cfg.Instance, History: hist, Redacted: redacted, Replays: replays,
	}
	h := dl.Header()
	h.Set(jobs.HeaderJobDigest, jobs.Digest(subject, payload))
	return &outcome{j: j, kind: kindDeadLetter, header: h, body: body}
}

// settleRecorded acks a job whose record another delivery stored.
func (w *Worker) settleRecorded(d *delivery, j *job, k recordKind) {
	w.inflight.remove(d)
	w.history.take(j)
	if err := d.ack(); err != nil {
		w.settleFailed(j, err, "ack failed; the job may be redelivered (its record is found again)")
	}
	// A rival delivery may have saved a revoke_all's progress after the
	// record's writer dropped it: the job is finished all the same.
	w.dropProgress(j)
	w.metrics.jobs.WithLabelValues(string(j.Op), "already_recorded").Inc()
	endDelivery(j, "already_recorded", nil)
	w.logJob(w.cfg.Logger.Info(), j).Str("outcome", "already_recorded").Str("record", k.String()).
		Msg("job already recorded by another delivery; acked without recording it again")
}

// answered is a result with the handler's answer as the handler returned
// it, so that encoding/json encodes the answer once, here, rather than
// compacting a copy the handler encoded first (BenchmarkResultEncode: the
// encoding takes half the time for a revoke). Its result and secret hide the embedded
// jobs.Result's, which stay empty: readers decode the same JSON into
// jobs.Result.
type answered struct {
	jobs.Result
	Answer any `json:"result,omitempty"`
	Secret any `json:"secret,omitempty"`
}

// asJSON takes bytes (json.RawMessage or []byte) as JSON already encoded,
// not as a base64 string, and empty bytes as no answer ("result" left out,
// not null).
func asJSON(v any) any {
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b = x
	case []byte:
		b = x
	default:
		return v
	}
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

func (w *Worker) result(d *delivery, j *job, o jobs.Outcome) jobs.Result {
	now := time.Now()
	return jobs.Result{
		JobID: j.ID, Tenant: j.Key.Tenant, Op: j.Op, Outcome: o, Attempts: j.Attempts, ClerkCalls: int(j.calls.Load()), Deliveries: int(d.meta.NumDelivered),
		StreamSeq: j.Seq, EnqueuedAt: d.meta.Timestamp.UTC(), StartedAt: j.Started.UTC(), FinishedAt: now.UTC(),
		DurationMS: float64(now.Sub(j.Started).Microseconds()) / 1000, Worker: w.cfg.Instance,
	}
}

func (w *Worker) ack(d *delivery, j *job, outcome string, info *jobs.ErrorInfo) {
	w.inflight.remove(d) // no progress signal may follow the settlement
	w.history.take(j)
	if err := d.ack(); err != nil {
		// The record is stored; a redelivery finds it and is acked.
		w.settleFailed(j, err, "ack failed; the job may be redelivered (its record is found, not made again)")
	}
	w.metrics.jobs.WithLabelValues(string(j.Op), outcome).Inc()
	w.metrics.jobDuration.WithLabelValues(string(j.Op)).Observe(time.Since(j.Started).Seconds())
	endDelivery(j, outcome, info)
	ev := w.cfg.Logger.Info()
	if info != nil {
		ev = w.cfg.Logger.Warn().Str("class", string(info.Class)).Str("error", info.Message)
		if info.HTTPStatus != 0 {
			ev = ev.Int("http_status", info.HTTPStatus)
		}
		if info.TraceID != "" {
			ev = ev.Str("clerk_trace_id", info.TraceID)
		}
	}
	w.logJob(ev, j).Str("outcome", outcome).Msg("job " + outcome)
}

func (w *Worker) nak(d *delivery, j *job, delay time.Duration, reason string) {
	// A progress signal after the nak would cancel its delay (the server
	// restarts the ack wait), so stop the heartbeat first.
	w.inflight.remove(d)
	if err := d.nak(delay); err != nil {
		w.settleFailed(j, err, "nak failed; the job will be redelivered after the ack wait")
	}
	w.metrics.jobs.WithLabelValues(string(j.Op), "redelivered").Inc()
	endDelivery(j, "redelivered", nil)
	// The reason may quote the job's reply_to (a check that could not be
	// made, a reply the server did not confirm): the publisher's text, in
	// which a secret may have been pasted.
	ev := w.cfg.Logger.Info().Dur("redeliver_in", delay).Str("error", j.redact(reason))
	if n := len(j.Failures); n > 0 && j.Failures[n-1].TraceID != "" {
		ev = ev.Str("clerk_trace_id", j.Failures[n-1].TraceID)
	}
	w.logJob(ev, j).Str("outcome", "redelivered").Msg("job will be retried")
}

// settleFailed logs an ack or nak that failed; usual says what follows.
func (w *Worker) settleFailed(j *job, err error, usual string) {
	switch {
	case errors.Is(err, errVoidDelivery):
		usual = "the job was stored before the jobs stream was created again: its message went with the deleted stream, so it is not settled"
	case errors.Is(err, errReplacedConsumer):
		usual = "the consumer was created again since the job was delivered: it is not handed back, and comes again after the ack wait"
	}
	w.cfg.Logger.Warn().Str("job_id", j.ID).Err(err).Msg(usual)
}

// logJob adds the job's fields to a log line. Every one is bounded: the id
// was checked, the op and tenant come from a known list or were checked.
func (w *Worker) logJob(ev *zerolog.Event, j *job) *zerolog.Event {
	ev = ev.Str("job_id", j.ID).Str("op", string(j.Op)).Uint64("stream_seq", j.Seq).
		Int("delivery", j.Delivery).Int("attempts", j.Attempts).Dur("duration", time.Since(j.Started))
	if j.Key.Tenant != "" {
		ev = ev.Str("tenant", j.Key.Tenant)
	}
	// The delivery span's ids, so that logs and traces join (none without
	// one: a nil ctx included).
	if sc := trace.SpanContextFromContext(j.ctx); sc.IsValid() {
		ev = ev.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
	}
	return ev
}

// replyToOf digs reply_to out of a job that failed validation, so the
// requester still hears why (if the reply_to passes every check).
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

// secretsOf are a job's secret values, to be cleared from any text about it.
func secretsOf(a jobs.Args) []string {
	r, ok := a.(*jobs.RefreshArgs)
	if !ok {
		return nil
	}
	out := []string{r.ExpiredToken, r.RefreshToken}
	for _, v := range r.RequestHeaders {
		out = append(out, redact.Values(v)...)
	}
	return out
}

// redact clears text about the job of its secrets, of anything shaped
// like one and of a URL's password: an error may quote a value the
// publisher chose (a reply_to such as nats://alice:password@host is a
// subject), and the text goes to the dead letter, the result and the log.
func (j *job) redact(s string) string { return redact.URLCredentials(redact.Text(s, j.secrets...)) }

// invalidInfo describes a job refused as invalid, cleared of its secrets
// when its body could be read (a refresh job's reply_to refused, quoting
// what its publisher pasted there).
func (j *job) invalidInfo(err error) jobs.ErrorInfo {
	info := jobs.ErrorInfo{Class: jobs.ClassInvalid, Message: j.redact(err.Error())}
	var ie *jobs.InvalidError
	if errors.As(err, &ie) {
		info.Field = ie.Field
	}
	return info
}

// errorInfo describes a failure for a dead letter and a reply, cleared of
// the job's secrets (Clerk's answer is untrusted text).
func (j *job) errorInfo(class jobs.ErrorClass, err error) jobs.ErrorInfo {
	info := jobs.ErrorInfo{Class: class, Message: j.redact(err.Error())}
	if e, ok := asAPIError(err); ok {
		info.HTTPStatus, info.ClerkCode, info.ClerkMessage, info.TraceID = e.StatusCode, j.redact(e.Code()), j.redact(e.Message()), j.redact(e.TraceID)
	}
	return info
}

// unrepeatable reports whether running a job of op a second time does
// harm: a create makes another session, a refresh sends its spent refresh
// token again. Other jobs run again only repeat a call whose effect is the
// same (a revoke, a listing) or mint another short-lived token.
func unrepeatable(op jobs.Op) bool { return op == jobs.OpCreate || op == jobs.OpRefresh }
