package clerkjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// Record is a finished job as the worker reports it (schemas/result.json).
type Record = jobs.Result

// Result is a finished job: the worker's Record (job id, op, outcome,
// Clerk's answer in Result, attempts...), and the secret answer of a token
// or refresh job in Secret. Record.Secret is always nil here, so that a
// Result can be printed or logged whole: Secret prints as [REDACTED].
type Result struct {
	Record
	// Secret is the token or cookies of a token or refresh job, in an answer
	// received on this client's inbox; zero otherwise (a record found in a
	// stream never holds one).
	Secret Secret `json:"secret,omitzero"`
	// DeadLetterSeq is the sequence of a failed job's dead letter in the
	// dead-letter stream, 0 when unknown.
	DeadLetterSeq uint64 `json:"dead_letter_seq,omitempty"`

	digest string // the record's Job-Digest, when read from a stream
}

// Reveal is the record as the worker sent it, secret included: for code
// that forwards it whole (the publish command prints it with --json).
func (r *Result) Reveal() Record {
	rec := r.Record
	rec.Secret = r.Secret.Reveal()
	return rec
}

func newResult(rec Record) *Result {
	secret := newSecret(rec.Secret)
	rec.Secret = nil
	return &Result{Record: rec, Secret: secret}
}

// An inbox holds at most this much unread. A batch's answers are a few
// hundred bytes each and are read as they come: only a flood, or a reader
// stopped for a long time, reaches these.
const (
	replyPendingMsgs  = 64 * 1024
	replyPendingBytes = 64 << 20
)

// Replies is a private inbox for the answers of jobs published with its
// Subject as their reply_to: what Request uses for one job, and what code
// that publishes many jobs itself (a batch) uses for all of them. The
// subscription is confirmed by the server before NewReplies returns, so no
// answer can be missed. Close it when done.
type Replies struct {
	sub    *nats.Subscription
	tenant string // the client's: an answer for another tenant is not ours
	// ignored counts the messages Next skipped (see Ignored).
	ignored atomic.Int64
}

// NewReplies subscribes to a fresh inbox under the client's inbox prefix.
func (c *Client) NewReplies(ctx context.Context) (*Replies, error) {
	if why := c.foreignInbox(); why != "" {
		return nil, fmt.Errorf("clerkjobs: %w: reply_to: %s", jobs.ErrInvalid, why)
	}
	inbox := c.nc.NewInbox()
	if c.inboxPrefix != "" {
		inbox = strings.TrimSuffix(c.inboxPrefix, ".") + "." + nuid.Next()
	}
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, unavailable(err, "subscribe to the reply inbox %s", inbox)
	}
	// What waits unread is bounded: whoever else may publish to the inbox
	// (see Expect) must not make this process hold more. What does not fit
	// is dropped and counted (Dropped); the jobs' records still say what
	// became of them.
	if err := sub.SetPendingLimits(replyPendingMsgs, replyPendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("reply inbox: %w", err)
	}
	// A fast worker could answer before the server knows the subscription.
	fctx, cancel := context.WithTimeout(ctx, c.pubTimeout)
	defer cancel()
	if err := c.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("subscribe to the reply inbox %s: %w", inbox, ctx.Err())
		}
		return nil, unavailable(err, "subscribe to the reply inbox %s", inbox)
	}
	// A subscription the server refused (the user may not subscribe there)
	// is reported asynchronously, before the flush's answer, naming the
	// inbox (which is new: an older error cannot name it).
	if err := c.nc.LastError(); err != nil && errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+inbox+`"`) {
		_ = sub.Unsubscribe()
		return nil, unavailable(err, "subscribe to the reply inbox %s (this NATS user may subscribe only under its own inbox prefix: see WithInboxPrefix and WithTenant)", inbox)
	}
	return &Replies{sub: sub, tenant: c.topo.Subjects.Tenant}, nil
}

// Subject is the inbox: the reply_to of the jobs whose answers it receives.
func (r *Replies) Subject() string { return r.sub.Subject }

// Close unsubscribes.
func (r *Replies) Close() error { return r.sub.Unsubscribe() }

// Expect is what an answer must say, besides its job id, to be taken for
// the answer of a job this client published. Anyone who may publish to the
// inbox could otherwise answer in the worker's place (a revoke reported
// done that never ran, an attacker's token returned as the session's): an
// answer must name the job's op, the client's tenant, and the sequence
// JetStream gave the job. Publish rights on the inbox prefix should belong
// to the worker alone (deploy/nats grants them so); these checks make a
// forged answer harder to pass off, not impossible for one who can read
// the jobs stream.
type Expect struct {
	// Op is the job's op.
	Op jobs.Op
	// Seq is the job's sequence in the jobs stream, from JetStream's
	// acknowledgement of this client's publish (Submitted.Seq); the worker
	// reports it as stream_seq. 0 when unknown: not checked.
	Seq uint64
}

// Dropped is how many messages the inbox dropped unread because it was full
// (more than 65,536 messages or 64 MiB waiting): a flood, or answers not
// read for a long time. A dropped answer is lost; the job's record is not
// (Client.WaitSubmitted finds it), except a token or refresh job's secret,
// which only the answer held.
func (r *Replies) Dropped() int {
	n, _ := r.sub.Dropped()
	return n
}

// Ignored is how many messages Next skipped: not JSON, answers of jobs not
// awaited, and answers that named an awaited job but not its op, tenant or
// sequence (forged, or meant for another request). Their
// content is never read further nor shown: it could hold anything.
func (r *Replies) Ignored() int { return int(r.ignored.Load()) }

// Next returns the next final answer (succeeded or failed) of a job whose id
// want accepts and which matches what want expects of it (Expect), calling
// onProgress (when not nil) with the progress updates of those jobs
// meanwhile. Anything else on the inbox (not JSON, another job's answer,
// an answer that does not match, an update of a kind it does not know) is
// skipped unread and counted (Ignored): it could hold anything, and it
// does not end the wait, so that whoever sent it cannot use it to abort
// the wait either. A failure is a Result with Outcome jobs.Failed here,
// not an error. When ctx ends first, the error matches ErrNoResult.
func (r *Replies) Next(ctx context.Context, want func(jobID string) (Expect, bool), onProgress func(jobs.Progress)) (*Result, error) {
	for {
		m, err := r.sub.NextMsgWithContext(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			// The cause: a timeout the client restarts ends its wait with
			// context.DeadlineExceeded, which only the cause carries on.
			return nil, &NoResultError{Err: context.Cause(ctx)}
		case errors.Is(err, nats.ErrSlowConsumer):
			continue // the inbox was full and dropped some (Dropped): read on
		default:
			return nil, unavailable(err, "read the reply inbox %s", r.sub.Subject)
		}
		var probe struct {
			JobID     string       `json:"job_id"`
			Op        jobs.Op      `json:"op"`
			Tenant    string       `json:"tenant"`
			Outcome   jobs.Outcome `json:"outcome"`
			StreamSeq uint64       `json:"stream_seq"`
		}
		if json.Unmarshal(m.Data, &probe) != nil {
			r.ignored.Add(1)
			continue
		}
		exp, ok := want(probe.JobID)
		if !ok || probe.Op != exp.Op {
			r.ignored.Add(1)
			continue
		}
		switch probe.Outcome {
		case jobs.InProgress:
			// An update names no tenant nor sequence: it moves a progress
			// bar, it settles nothing.
			var p jobs.Progress
			if onProgress != nil && json.Unmarshal(m.Data, &p) == nil {
				onProgress(p)
			}
		case jobs.Succeeded, jobs.Failed:
			var rec Record
			if probe.Tenant != r.tenant || (exp.Seq != 0 && probe.StreamSeq != exp.Seq) ||
				json.Unmarshal(m.Data, &rec) != nil {
				r.ignored.Add(1)
				continue
			}
			return newResult(rec), nil
		default:
			r.ignored.Add(1)
		}
	}
}
