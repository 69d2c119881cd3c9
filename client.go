package clerkjobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Client submits jobs to the clerkjobs worker and waits for their answers.
// Create it with NewClient; it is safe for concurrent use, and holds no
// resource of its own beyond the connection it was given.
type Client struct {
	nc *nats.Conn
	js jetstream.JetStream
	settings
}

// Option configures a Client.
type Option func(*settings)

type settings struct {
	topo        jobs.Topology
	prefix      string
	tenant      string
	inboxPrefix string
	timeout     time.Duration
	pubTimeout  time.Duration
}

// WithTopology names the streams and the subject prefix, as the worker was
// configured (worker flags --subject-prefix, --results-stream,
// --dlq-stream...). The default is jobs.DefaultTopology().
func WithTopology(t jobs.Topology) Option { return func(s *settings) { s.topo = t } }

// WithSubjectPrefix sets the subject prefix alone (the worker's
// --subject-prefix; default "sessions").
func WithSubjectPrefix(p string) Option { return func(s *settings) { s.prefix = p } }

// WithTenant publishes as tenant name: jobs go to
// <prefix>.tenant.<name>.<op>, the subjects the NATS server lets only this
// service publish to (deploy/README.md, "Tenants"), their answers to inboxes
// under _INBOX.<name> (unless WithInboxPrefix says otherwise), and Wait
// reads this tenant's records. Two tenants may use the same job ids. A
// user confined to its own inboxes needs the connection's made there too
// (nats.CustomInboxPrefix("_INBOX.<name>")): JetStream answers on them.
func WithTenant(name string) Option { return func(s *settings) { s.tenant = name } }

// WithInboxPrefix makes the inboxes that receive answers under prefix (for
// example _INBOX.svc_a), for a NATS user that may subscribe only there. The
// default is the connection's own inbox prefix, or _INBOX.<tenant> with
// WithTenant. With WithTenant, the tenant's name must be a token of prefix:
// the worker answers a tenant's jobs nowhere else, so Request and
// NewReplies refuse other inboxes (jobs.ErrInvalid) before publishing.
// A prefix (or the connection's own, nats.CustomInboxPrefix) is at most 232
// characters: an inbox adds 23, and a reply_to has at most 255.
func WithInboxPrefix(prefix string) Option { return func(s *settings) { s.inboxPrefix = prefix } }

// WithTimeout bounds the wait for an answer when the context has no
// deadline (default 30s): in Request and the shortcuts from the moment
// JetStream has stored the job, in Wait from the call. A job that reports
// progress (revoke_all) starts the timeout again each time it has handled
// more sessions or read another page of their listing (jobs.Progress Done,
// PagesRead), so a long one is waited for while it gets on, a listing of
// many pages included; one that stops getting on is given up after the
// timeout, even while its updates keep coming. A job published again under
// its id gets no updates (they go to the first request's inbox), so the
// repeat waits the timeout in all. A context's own deadline is never
// extended.
func WithTimeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// WithPublishTimeout bounds how long a publish waits for JetStream's
// acknowledgement (default 10s).
func WithPublishTimeout(d time.Duration) Option { return func(s *settings) { s.pubTimeout = d } }

// NewClient returns a Client on nc. It checks the options and talks to
// nobody: a missing stream or permission shows when a job is submitted.
func NewClient(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, errors.New("clerkjobs: NewClient needs a NATS connection")
	}
	s := settings{topo: jobs.DefaultTopology(), timeout: 30 * time.Second, pubTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	if s.prefix != "" {
		s.topo.Subjects.Prefix = s.prefix
	}
	if s.tenant != "" {
		s.topo.Subjects.Tenant = s.tenant
	}
	if err := s.topo.Validate(); err != nil {
		return nil, fmt.Errorf("clerkjobs: %w", err)
	}
	if s.inboxPrefix == "" && s.topo.Subjects.Tenant != "" {
		s.inboxPrefix = "_INBOX." + s.topo.Subjects.Tenant
	}
	if p := s.inboxPrefix; p != "" {
		if err := jobs.CheckReplySubject(p); err != nil || s.topo.Subjects.Owns(p) {
			return nil, fmt.Errorf("clerkjobs: inbox prefix %q: must be a subject outside %q, such as _INBOX.<service>", p, s.topo.Subjects.Prefix)
		}
	}
	// An inbox is the prefix, a dot and a 22-character NUID, and it is the
	// job's reply_to, of at most jobs.MaxSubjectLen characters: a longer
	// prefix would make every Request fail on a reply_to its caller never
	// set.
	// WithInboxPrefix's, when given, is the only one a reply_to is made
	// under (see Request); else the connection's.
	if p := strings.TrimSuffix(cmp.Or(s.inboxPrefix, nc.Opts.InboxPrefix), "."); len(p) > maxInboxPrefixLen {
		return nil, fmt.Errorf("clerkjobs: inbox prefix of %d characters: an inbox under it would be longer than the %d characters a reply_to may have; use a prefix of at most %d", len(p), jobs.MaxSubjectLen, maxInboxPrefixLen)
	}
	switch {
	case s.timeout <= 0:
		return nil, fmt.Errorf("clerkjobs: timeout %s: must be positive", s.timeout)
	case s.pubTimeout <= 0:
		return nil, fmt.Errorf("clerkjobs: publish timeout %s: must be positive", s.pubTimeout)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("clerkjobs: JetStream: %w", err)
	}
	return &Client{nc: nc, js: js, settings: s}, nil
}

// maxInboxPrefixLen is the longest inbox prefix whose inboxes (prefix,
// ".", a NUID) are usable as a reply_to.
const maxInboxPrefixLen = jobs.MaxSubjectLen - 1 - 22

// Topology is the topology the client publishes to and reads records from,
// its Subjects.Tenant set with WithTenant.
func (c *Client) Topology() jobs.Topology { return c.topo }

// Submitted is a job JetStream has stored.
type Submitted struct {
	JobID   string
	Subject string
	// Stream and Seq name the job's message in the jobs stream; a result or
	// dead letter records Seq as its stream_seq.
	Stream string
	Seq    uint64
	// Duplicate: the job had been published before under the same id (a
	// retry): it was not queued again, and Seq is the first one's.
	Duplicate bool
	// Digest is the job's jobs.Digest (of its subject and body), which
	// its records carry: WaitSubmitted takes only a record of this job,
	// not one of an earlier job of the same id and sequence in a jobs
	// stream since created again. Empty: not checked.
	Digest string
}

// Submit checks a job against its schema and publishes it, returning once
// JetStream has stored it. A job without a job id gets a fresh one,
// written into a. The job's answer, if any, goes to its reply_to.
//
// Publishing the same job again under the same id is harmless: it is not
// queued again (Submitted.Duplicate). A job whose id is already used by a
// different job is not queued: the error matches jobs.ErrJobIDReused (or
// jobs.ErrDuplicateUnverified when this NATS user may read neither the
// stored job nor its record to compare); publish it with another id.
// A job the jobs stream or the connection (the server's or its account's
// max_payload: jobs.OverMaxPayload) refuses for its size with its headers
// (a body near jobs.MaxJobBytes, and the trace baggage ctx carries) was
// not stored, and is not ErrUnavailable:
// publishing it again as it is fails again, so it matches jobs.ErrInvalid.
// A job that one of the record streams stored instead of the jobs stream
// (a subject prefix under the worker's record subjects, say
// sessions.results) was not queued either, and no worker will run it:
// that error matches ErrUnavailable, as when no stream stores the job, and
// jobs.ErrStoredAsRecord.
// A job refused because the jobs stream is full (jobs.StreamFull: its cap,
// Topology.JobsMaxBytes, is reached) or JetStream's storage is
// (jobs.StorageFull) was not stored either, but may be published again
// later: that error matches ErrUnavailable.
func (c *Client) Submit(ctx context.Context, a jobs.Args) (Submitted, error) {
	m, err := jobs.NewMessage(c.topo.Subjects, a)
	if err != nil {
		return Submitted{}, err
	}
	return c.publish(ctx, a, m)
}

func (c *Client) publish(ctx context.Context, a jobs.Args, m *nats.Msg) (Submitted, error) {
	s := Submitted{JobID: a.CommonFields().JobID, Subject: m.Subject, Digest: jobs.Digest(m.Subject, m.Data)}
	// A span in ctx makes the job its child ("send <subject>"): the trace
	// runs from here to the worker, Clerk and back.
	ctx, span := tracing.StartSend(ctx, m)
	defer span.End()
	tracing.Inject(ctx, m)
	pctx, cancel := context.WithTimeout(ctx, c.pubTimeout)
	ack, err := c.js.PublishMsg(pctx, m)
	cancel()
	switch qerr := c.topo.CheckQueued(ack, err); {
	case qerr != nil:
		return s, unavailable(qerr, "publish %s job %s to %s", a.Op(), s.JobID, m.Subject)
	case err == nil:
	case jobs.StreamFull(err):
		// Refused, not lost on the way: the stream keeps every job it has
		// and takes new ones once the workers have worked some off.
		return s, unavailable(err, "publish %s job %s to %s: the jobs stream %s is full, so the job was NOT stored (no stored job was dropped); publishing it again later, once the workers have worked off the backlog, is safe; the stream's cap is the worker's --jobs-max-bytes (WORKER_JOBS_MAX_BYTES, 256 MiB by default)", a.Op(), s.JobID, m.Subject, c.topo.JobsStream)
	case jobs.StorageFull(err):
		return s, unavailable(err, "publish %s job %s to %s: JetStream's storage is full (the account's or the server's limit, max_file_store or max_mem_store, or its disk), so the job was NOT stored; publishing it again later is safe; free or raise JetStream's storage", a.Op(), s.JobID, m.Subject)
	case ctx.Err() != nil && c.inboxRefused() == "":
		return s, fmt.Errorf("publish %s job %s: %w (it may or may not be stored: publishing it again with the same job id is safe)", a.Op(), s.JobID, ctx.Err())
	case isAPIError(err, jetstream.JSErrCodeStreamMessageExceedsMaximum):
		// Not a broker out of reach: the body passed jobs.MaxJobBytes, and
		// the headers (trace context and baggage from ctx, the message id)
		// took it over the stream's limit. It would be refused every time.
		return s, fmt.Errorf("publish %s job %s to %s: it was not stored: its message, a body of %d bytes and headers of about %d (trace context and baggage from the context, and the message id), is more than the jobs stream takes (%w; %w); send it with less baggage, or a smaller job", a.Op(), s.JobID, m.Subject, len(m.Data), headerBytes(m), err, jobs.ErrInvalid)
	case errors.Is(err, nats.ErrMaxPayload):
		// Never sent: the connection takes less in one message (the
		// server's max_payload, or a tenant account's).
		return s, fmt.Errorf("publish %s job %s to %s: it was not sent: its message, a body of %d bytes and headers of about %d, is more than this connection takes in one message (%w; %w); %s", a.Op(), s.JobID, m.Subject, len(m.Data), headerBytes(m), err, jobs.ErrInvalid, jobs.OverMaxPayload(c.nc.MaxPayload(), len(m.Data)+headerBytes(m)))
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return s, unavailable(err, "no JetStream stream stores %s (the worker creates the jobs stream %s when it starts; or the subject prefix, or this user's permissions, are not what the worker expects)", m.Subject, c.topo.JobsStream)
	case c.inboxRefused() != "":
		return s, unavailable(err, "publish %s job %s to %s: no acknowledgement can reach this connection (it may or may not be stored: publishing it again with the same job id is safe): %s", a.Op(), s.JobID, m.Subject, c.inboxRefused())
	default:
		return s, unavailable(err, "publish %s job %s to %s (it may or may not be stored: publishing it again with the same job id is safe)", a.Op(), s.JobID, m.Subject)
	}
	s.Stream, s.Seq, s.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	return s, c.CheckDuplicate(ctx, m, ack)
}

// headerBytes is about how many bytes m's headers take on the wire.
func headerBytes(m *nats.Msg) int {
	n := 0
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// isAPIError reports whether err is JetStream's refusal with code.
func isAPIError(err error, code jetstream.ErrorCode) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == code
}

// CheckDuplicate says what a message JetStream acknowledged as a duplicate
// was deduplicated against, for code that publishes jobs itself (say
// asynchronously, in batches): nil when it is the same job (the harmless
// duplicate of a retried publish; reply_to aside), a *jobs.DuplicateError
// matching jobs.ErrJobIDReused when it is a different one (this job was not
// queued), or one matching jobs.ErrDuplicateUnverified when it cannot tell.
// It returns nil for an acknowledgement that is not a duplicate.
//
// It compares the job (jobs.Digest) with the stored job, or with its
// record once it ran; a tenant's client looks at its own records first,
// which its NATS user may read when the stored job is out of its reach.
func (c *Client) CheckDuplicate(ctx context.Context, m *nats.Msg, ack *jetstream.PubAck) error {
	if ack == nil || !ack.Duplicate {
		return nil
	}
	read := 5 * time.Second // how long the stored job is read
	if tenant, o := c.topo.Subjects.ParseJob(m.Subject); tenant != "" {
		// A tenant's NATS user may read its own records (deploy/nats), and
		// usually not the jobs stream, which holds other tenants' jobs: the
		// record first, the stored job only briefly.
		a, err := jobs.Decode(o, m.Data)
		if err != nil {
			return err
		}
		id := a.CommonFields().JobID
		if rec, err := c.latest(ctx, tenant, id, ack.Sequence); err == nil && rec != nil {
			if rec.digest == jobs.Digest(m.Subject, m.Data) {
				return nil
			}
			return &jobs.DuplicateError{JobID: id, Seq: ack.Sequence, Err: jobs.ErrJobIDReused}
		}
		read = 2 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, read)
	defer cancel()
	return jobs.CheckDuplicate(cctx, c.js, c.topo.Subjects, m, ack)
}

// RequestOption changes one Request.
type RequestOption func(*requestOptions)

type requestOptions struct {
	onProgress  func(jobs.Progress)
	onSubmitted func(Submitted)
}

// OnProgress calls fn with each progress update the job sends (revoke_all
// sends one every second), in the caller's goroutine, before Request
// returns. An update is matched to the job by its id and op only (the
// reply subject is open to anyone allowed under its prefix): it may move
// a progress bar, but its text is not the worker's word; see
// jobs.IsNotLockedReason for Progress.NotLocked.
func OnProgress(fn func(jobs.Progress)) RequestOption {
	return func(o *requestOptions) { o.onProgress = fn }
}

// OnSubmitted calls fn once JetStream has stored the job, before the wait
// for its answer: to log its id and sequence, say.
func OnSubmitted(fn func(Submitted)) RequestOption {
	return func(o *requestOptions) { o.onSubmitted = fn }
}

// Request submits a job and waits for its answer on a private inbox: the
// Result of a job that succeeded; a *JobError (ErrJobFailed) for one that
// failed; a *NoResultError (ErrNoResult) when no answer came before ctx
// ended (or the client's timeout, WithTimeout, when ctx has none), or
// before the connection closed for good (then it matches ErrUnavailable
// too): the job was accepted and may still run, and Wait finds what
// became of it later. A job without
// a job id gets a fresh one, written into a; its reply_to must be empty.
//
// An answer is sent once, and not always (a job whose reply_to the worker
// refused is dead-lettered unanswered; a worker may stop between storing a
// record and answering): Request looks for the job's record while it
// waits, every few seconds and at once after each reconnect of the
// client's connection (an answer sent meanwhile is lost), and before it
// gives up. A token or refresh job found succeeded that way is
// ErrSecretLost, as only its answer held the secret.
//
// When the job had been published before under the same id, its answer
// went to the first request's inbox: Request then waits for the job's
// record in the results and dead-letter streams (without the secret of a
// token or refresh job, which only the first request received).
func (c *Client) Request(ctx context.Context, a jobs.Args, opts ...RequestOption) (*Result, error) {
	var o requestOptions
	for _, f := range opts {
		f(&o)
	}
	com := a.CommonFields()
	if com.ReplyTo != "" {
		return nil, &jobs.InvalidError{Op: a.Op(), Field: "/reply_to", Reason: "Request receives the answer on an inbox of its own: leave reply_to empty (Submit publishes a job whose answer goes elsewhere)"}
	}
	if why := c.foreignInbox(); why != "" {
		return nil, &jobs.InvalidError{Op: a.Op(), Field: "/reply_to", Reason: why}
	}
	rep, err := c.NewReplies(ctx)
	if err != nil {
		return nil, err
	}
	defer rep.Close()
	com.ReplyTo = rep.Subject()
	m, err := jobs.NewMessage(c.topo.Subjects, a)
	com.ReplyTo = ""
	if err != nil {
		return nil, err
	}
	s, err := c.publish(ctx, a, m)
	var unverified error // a duplicate this user could not compare
	var de *jobs.DuplicateError
	if errors.Is(err, jobs.ErrDuplicateUnverified) && !(errors.As(err, &de) && de.Gone) {
		// Its record, once stored, tells (a job gone without one
		// never will: that is returned at once, as Submit does).
		unverified, err = err, nil
	}
	if err != nil {
		return nil, err
	}
	if o.onSubmitted != nil {
		o.onSubmitted(s)
	}
	ctx, cancel, alive := c.bounded(ctx) // the wait for the answer
	defer cancel()
	onProgress, done, pages := o.onProgress, -1, -1
	if a.Op() == jobs.OpRevokeAll {
		onProgress = func(p jobs.Progress) {
			// Reports come every second, moving or not: only a move is
			// life. Pages read start again from 1 in a new delivery.
			if p.Done > done || p.PagesRead != pages {
				done, pages = max(done, p.Done), p.PagesRead
				alive()
			}
			if o.onProgress != nil {
				o.onProgress(p)
			}
		}
	}
	var res *Result
	if s.Duplicate {
		// Unverified: the record's digest tells whether it is this job.
		res, err = c.waitRecord(ctx, s.JobID, s.Seq, s.Digest, unverified != nil)
	} else {
		// Only the answer of the job this call published: its id, op, this
		// client's tenant and the sequence JetStream just gave it. Anything
		// else on the inbox is ignored.
		exp := Expect{Op: a.Op(), Seq: s.Seq}
		var stored bool // found as its record: the answer was lost
		res, stored, err = c.awaitAnswer(ctx, rep, s, a.Op(), func(id string) (Expect, bool) { return exp, id == s.JobID }, onProgress)
		if errors.Is(err, ErrUnavailable) {
			// The inbox cannot be read (the connection closed for good):
			// the job was accepted all the same, and may still run.
			err = &NoResultError{Err: err}
		}
		if errors.Is(err, ErrNoResult) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// No answer in time (not interrupted): one more look for its
			// record, as the worker sends an answer once, best effort,
			// after storing the record.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if r, lerr := c.latest(lctx, c.topo.Subjects.Tenant, s.JobID, s.Seq); lerr == nil && r.of(s.Digest) {
				res, stored, err = r, true, nil
			}
			cancel()
		}
		if stored && a.Op().Secret() && res.Outcome == jobs.Succeeded {
			return nil, lostSecret(s.JobID, a.Op(), rep.Dropped())
		}
	}
	var nr *NoResultError
	if errors.As(err, &nr) {
		// Still no record of a duplicate it could not compare: it may be
		// this job, queued, or another job that took the id.
		nr.JobID, nr.Submitted, nr.Err = s.JobID, &s, errors.Join(nr.Err, unverified)
		nr.Ignored, nr.Dropped = rep.Ignored(), rep.Dropped()
	}
	if err != nil {
		return nil, err
	}
	return c.settle(ctx, res)
}

// lostSecret is the error of a token or refresh job that succeeded while
// its answer, the secret, never came: only its record was found.
func lostSecret(jobID string, op jobs.Op, dropped int) error {
	why := "it was lost on the way (answers are sent once)"
	if dropped > 0 {
		why = fmt.Sprintf("the reply inbox was full and dropped %d message(s) unread: is something other than the workers publishing to it?", dropped)
	}
	return fmt.Errorf("%s job %s succeeded, but %w: %s; request a new one with another job id", op, jobID, ErrSecretLost, why)
}

// Request looks for a job's record while it waits for the answer: after
// lookFirst, then at doubling intervals up to lookEvery (each made up to
// half as long again at random, so that Requests published together do
// not look in lock step), and at once after each reconnect of the
// connection.
const (
	lookFirst = time.Second
	lookEvery = 10 * time.Second
	// answerGrace is how long a token or refresh job found succeeded
	// after a reconnect is left to its answer, sent before its record,
	// before the answer is said lost.
	answerGrace = time.Second
)

// foundRecord ends a wait for an answer: the job's record was found.
type foundRecord struct{ r *Result }

func (foundRecord) Error() string { return "the job's record was found" }

// awaitAnswer waits on rep for the answer of job s. An answer is sent once,
// and not always: one sent while this connection was down is lost, and a
// job may be recorded with none sent at all (the worker refused its
// reply_to, or crashed after storing the record). So the job's record is
// looked up meanwhile, beside the inbox (a lookup never holds up the
// answer), and returned (stored) once the job is done: at once after each
// reconnect, else every few seconds. A token or refresh job's record that
// says succeeded is taken only once the connection has been back since the
// wait began, and answerGrace after it is found: otherwise its answer,
// sent before its record is stored, is on its way, and it holds the secret
// (Request's last look says whether it was lost).
func (c *Client) awaitAnswer(ctx context.Context, rep *Replies, s Submitted, op jobs.Op, want func(string) (Expect, bool), onProgress func(jobs.Progress)) (res *Result, stored bool, err error) {
	back := c.nc.StatusChanged(nats.CONNECTED)
	defer c.nc.RemoveStatusListener(back)
	wctx, cancel := context.WithCancelCause(ctx)
	looked := make(chan struct{})
	go func() {
		defer close(looked)
		c.lookOut(wctx, back, s, op, func(r *Result) { cancel(foundRecord{r}) })
	}()
	res, err = rep.Next(wctx, want, onProgress)
	cancel(nil)
	<-looked // nothing of this wait outlives it
	var f foundRecord
	if err != nil && ctx.Err() == nil && errors.As(context.Cause(wctx), &f) {
		return f.r, true, nil
	}
	return res, false, err
}

// spread is d made up to half as long again, at random.
func spread(d time.Duration) time.Duration { return d + rand.N(d/2) }

// lookOut looks up the record of job s until ctx ends, calling found with
// it (see awaitAnswer).
func (c *Client) lookOut(ctx context.Context, back <-chan nats.Status, s Submitted, op jobs.Op, found func(*Result)) {
	delay := lookFirst
	t := time.NewTimer(spread(delay))
	defer t.Stop()
	reconnected := false // since the wait began: an answer sent meanwhile may be lost
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-back:
			if !ok {
				back = nil
				continue
			}
			// nats.go subscribes the inbox again before it says
			// CONNECTED: an answer the inbox misses from here on is a
			// record this finds.
			reconnected = true
		case <-t.C:
			delay = min(2*delay, lookEvery)
			t.Reset(spread(delay))
			if !c.nc.IsConnected() {
				// A lookup sent now could wait out its timeout while the
				// reconnect it missed goes unheeded: the reconnect looks.
				continue
			}
		}
		r, err := c.latest(ctx, c.topo.Subjects.Tenant, s.JobID, s.Seq)
		switch {
		case err != nil || !r.of(s.Digest):
		case op.Secret() && r.Outcome == jobs.Succeeded && !reconnected:
			// Its answer, sent before its record, comes: nothing more to
			// look for but after a reconnect.
			t.Stop()
		case op.Secret() && r.Outcome == jobs.Succeeded:
			// Its answer went before its record: lost in the reconnect,
			// or on the inbox still unread, which answerGrace leaves it
			// to be.
			select {
			case <-ctx.Done():
				return
			case <-time.After(answerGrace):
			}
			found(r)
			return
		default:
			found(r)
			return
		}
	}
}

// settle turns a failed result into a *JobError, with its dead letter's
// sequence when it can be read.
func (c *Client) settle(ctx context.Context, r *Result) (*Result, error) {
	if r.Outcome != jobs.Failed {
		return r, nil
	}
	if r.DeadLetterSeq == 0 && r.StreamSeq != 0 {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if m, err := c.lastMsg(lctx, c.topo.DeadLetterStream, c.topo.Subjects.JobDeadLetters(r.Tenant, r.JobID, r.StreamSeq)); err == nil && m != nil {
			r.DeadLetterSeq = m.seq
		}
	}
	return nil, jobError(r)
}

// Wait finds what became of a job submitted earlier, by this process before
// a restart or by another one of the same tenant: its Result, or a
// *JobError for a job that failed, from the results and dead-letter
// streams (the newest record when the id was used more than once). It
// waits until one is stored, or ctx ends (the client's timeout when ctx has
// none): then the error is a *NoResultError. Records are kept 24 hours
// (results) and 90 days (dead letters) by default.
//
// A result found this way never holds a token or refresh job's secret: it
// went only to the requester's inbox.
func (c *Client) Wait(ctx context.Context, jobID string) (*Result, error) {
	return c.wait(ctx, jobID, nil)
}

// WaitSubmitted waits for the record of a job JetStream stored at s.Seq
// (s as Submit returned it, or built from the acknowledgement of a job
// published otherwise, say a duplicate in a batch whose answer went to the
// inbox of its first publish): its Result, or a *JobError for a job that
// failed, or a *NoResultError when ctx ends first (the client's timeout
// when ctx has none). A record of another job under the same id, or of the
// same id stored at another sequence, is not taken for it. As with Wait,
// the result never holds a token or refresh job's secret.
func (c *Client) WaitSubmitted(ctx context.Context, s Submitted) (*Result, error) {
	return c.wait(ctx, s.JobID, &s)
}

// wait is Wait, and with s (not nil) WaitSubmitted: only the record of the
// job stored at s.Seq.
func (c *Client) wait(ctx context.Context, jobID string, s *Submitted) (*Result, error) {
	if err := jobs.CheckJobID(jobID); err != nil {
		return nil, &jobs.InvalidError{Op: jobs.OpUnknown, Field: "/job_id", Reason: err.Error()}
	}
	ctx, cancel, _ := c.bounded(ctx)
	defer cancel()
	var seq uint64
	var digest string
	if s != nil {
		seq, digest = s.Seq, s.Digest
	}
	r, err := c.waitRecord(ctx, jobID, seq, digest, false)
	var nr *NoResultError
	if errors.As(err, &nr) {
		nr.JobID, nr.Submitted = jobID, s
	}
	if err != nil {
		return nil, err
	}
	return c.settle(ctx, r)
}

// waitRecord polls the record streams for a job's newest record (of the job
// stored at seq, when not 0) until one is found or ctx ends. With digest,
// only a record of that job counts: one of another job under the same id
// is jobs.ErrJobIDReused with reused, else not this job's (an earlier jobs
// stream's job of the same id and sequence), and the wait goes on.
func (c *Client) waitRecord(ctx context.Context, jobID string, seq uint64, digest string, reused bool) (*Result, error) {
	delay := 50 * time.Millisecond
	var last error
	for {
		r, err := c.latest(ctx, c.topo.Subjects.Tenant, jobID, seq)
		switch {
		case err != nil && c.nc.IsClosed():
			return nil, &NoResultError{JobID: jobID, Err: err}
		case err != nil:
			last = err
		case r != nil && reused && !r.of(digest):
			return nil, &jobs.DuplicateError{JobID: jobID, Seq: seq, Err: jobs.ErrJobIDReused}
		case r.of(digest):
			return r, nil
		}
		if clock.Sleep(ctx, delay) != nil {
			return nil, &NoResultError{JobID: jobID, Err: errors.Join(ctx.Err(), last)}
		}
		delay = min(2*delay, time.Second)
	}
}

// bounded gives ctx the client's timeout when it has no deadline, and
// returns alive, which starts that timeout again (a deadline of ctx's own
// stays as it is).
func (c *Client) bounded(ctx context.Context) (_ context.Context, _ context.CancelFunc, alive func()) {
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, func() {}
	}
	ictx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(c.timeout, func() { cancel(context.DeadlineExceeded) })
	return timeout{ictx}, func() { t.Stop(); cancel(nil) }, func() { t.Reset(c.timeout) }
}

// timeout is a context ended by a timer that may be started again: its Err
// is then context.DeadlineExceeded, as for a deadline.
type timeout struct{ context.Context }

func (t timeout) Err() error {
	err := t.Context.Err()
	if err != nil && errors.Is(context.Cause(t.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// foreignInbox says why the client's inboxes cannot receive the answers of
// its tenant's jobs, "" when they can: the worker answers a tenant's job
// only under <reply prefix><tenant>. (its --reply-prefix is whole tokens),
// so the tenant must be a token of the inbox prefix, or every job sent
// with such a reply_to is dead-lettered as invalid.
func (c *Client) foreignInbox() string {
	t := c.topo.Subjects.Tenant
	if t == "" || slices.Contains(strings.Split(c.inboxPrefix, "."), t) {
		return ""
	}
	return fmt.Sprintf("inbox prefix %s is not an inbox of tenant %s: the worker answers the tenant's jobs only under its own inboxes (_INBOX.%s. by default) and would dead-letter the job as invalid; use WithInboxPrefix(%q), or leave the default of WithTenant",
		c.inboxPrefix, t, t, "_INBOX."+t)
}

// inboxRefused says why no JetStream answer can come, "" when nothing
// says so: the server refused this NATS user the subscription to the
// connection's own reply inboxes, where JetStream answers publishes and
// direct gets. A service's user may subscribe only under its own prefix
// (deploy/nats), and the refusal is reported once, asynchronously, when the
// connection first subscribes there: every request after it just times
// out, whatever the stream or the user's other grants.
func (c *Client) inboxRefused() string {
	err := c.nc.LastError()
	if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(strings.ToLower(err.Error()), "subscription to") {
		return ""
	}
	// Requests share one subscription, <prefix>.<id>.*: not an inbox of
	// Replies, whose refusal NewReplies reports itself.
	prefix := strings.TrimSuffix(cmp.Or(c.nc.Opts.InboxPrefix, nats.InboxPrefix), ".") + "."
	_, refused, _ := strings.Cut(err.Error(), `"`+prefix)
	if id, ok := strings.CutSuffix(strings.SplitN(refused, `"`, 2)[0], ".*"); !ok || id == "" || strings.Contains(id, ".") {
		return ""
	}
	fix := "nats.CustomInboxPrefix set to a prefix this user may subscribe to (a service's: _INBOX.<service>)"
	if p := strings.TrimSuffix(c.inboxPrefix, "."); p != "" && p+"." != prefix {
		fix = fmt.Sprintf("nats.CustomInboxPrefix(%q), the client's inbox prefix", p)
	}
	return fmt.Sprintf("the server refused this NATS user the subscription to the connection's reply inboxes (%s…), where JetStream answers: connect with %s", prefix, fix)
}
