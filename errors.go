package clerkjobs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Errors to match with errors.Is. Besides these: jobs.ErrInvalid (the job
// fails its schema, nothing was published: errors.As gives the
// *jobs.InvalidError with its Field and Reason), jobs.ErrJobIDReused (the
// job id is taken by a different job: this one was not queued) and
// jobs.ErrDuplicateUnverified (the id was published before and this user
// may read neither the stored job nor its record to compare).
var (
	// ErrJobFailed matches every *JobError: the job ran and failed, or was
	// refused by the worker; it is in the dead-letter queue.
	ErrJobFailed = errors.New("job failed")
	// ErrNoResult: no answer or record yet. A job that was accepted may
	// still run: Wait finds its result or dead letter later. Matches
	// *NoResultError.
	ErrNoResult = errors.New("no result yet")
	// ErrUnavailable: NATS or JetStream could not be reached, or refused the
	// request (no connection, no such stream, no permission, a full jobs
	// stream). A publish that failed so may or may not have been stored:
	// publishing the job again with the same id is safe. One refused for
	// want of room (jobs.StreamFull, jobs.StorageFull) was not stored:
	// publish it again later.
	ErrUnavailable = errors.New("NATS unavailable")
	// ErrSecretDeliveredElsewhere: the token or refresh job had been
	// published before under the same id, and its secret went to the inbox
	// of that first request; the record holds no secret. Request a new one
	// with another job id.
	ErrSecretDeliveredElsewhere = errors.New("the secret answer went to the inbox of an earlier request of the same job")
	// ErrSecretLost: the token or refresh job succeeded, but its answer, the
	// only copy of the secret, never reached the request's inbox (a full
	// inbox dropped it, or it was lost on the way: answers are sent once).
	// The record holds no secret. Request a new one with another job id.
	ErrSecretLost = errors.New("the secret answer never reached this request")
)

// JobError is a job that failed: the worker dead-lettered it. Its Class
// says what to do: jobs.ClassInvalid and jobs.ClassPermanent will fail
// again as they are (fix the job; Field names an invalid field);
// jobs.ClassExhausted and jobs.ClassMaxDeliveries may succeed when replayed
// once Clerk (or the workers) are healthy: see Temporary.
type JobError struct {
	JobID  string
	Tenant string
	Op     jobs.Op
	Class  jobs.ErrorClass
	// Message says what went wrong, for a person.
	Message string
	// HTTPStatus, ClerkCode and ClerkMessage are Clerk's answer, when Clerk
	// answered; TraceID is what Clerk support asks for.
	HTTPStatus   int
	ClerkCode    string
	ClerkMessage string
	TraceID      string
	// Field is the JSON pointer of an invalid field (class invalid).
	Field string
	// DeadLetterSeq is the dead letter's sequence in the dead-letter stream
	// (`publish dlq show SEQ`), 0 when it could not be read.
	DeadLetterSeq uint64
	// Result is the failure as the worker reported it, its texts cleared
	// as the fields above are.
	Result *Result
}

func (e *JobError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s job %s failed (%s): %s", e.Op, e.JobID, e.Class, e.Message)
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	if answer := e.ClerkCode; e.HTTPStatus != 0 || answer != "" {
		if e.HTTPStatus != 0 {
			answer = fmt.Sprintf("HTTP %d %s", e.HTTPStatus, answer)
		}
		fmt.Fprintf(&b, "; Clerk answered %s", strings.TrimSpace(answer))
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, ", trace id %s", e.TraceID)
	}
	if e.DeadLetterSeq != 0 {
		fmt.Fprintf(&b, "; dead letter %d", e.DeadLetterSeq)
	}
	// The message is the worker's, or Clerk's (or a proxy's) answer it
	// passed on, and the answer may not be the worker's at all: whatever
	// is shaped like a secret is taken out before the error reaches a log.
	return redact.Text(b.String())
}

// Is makes errors.Is(err, ErrJobFailed) true, and errors.Is(err,
// jobs.ErrInvalid) for a job the worker found invalid.
func (e *JobError) Is(target error) bool {
	return target == ErrJobFailed || (target == jobs.ErrInvalid && e.Class == jobs.ClassInvalid)
}

// As lets errors.As find a *jobs.InvalidError in a job the worker found
// invalid, as for one the client refused before publishing.
func (e *JobError) As(target any) bool {
	p, ok := target.(**jobs.InvalidError)
	if !ok || e.Class != jobs.ClassInvalid {
		return false
	}
	// The message is the worker's InvalidError said whole: its reason is
	// what follows the op and field, or Error would say them twice.
	inv := &jobs.InvalidError{Op: e.Op, Field: e.Field}
	inv.Reason = strings.TrimPrefix(e.Message, inv.Error())
	*p = inv
	return true
}

// Temporary reports whether replaying the job may succeed as it is: it
// failed for want of a healthy Clerk or worker (exhausted, max_deliveries),
// not because of what it asks (invalid, permanent).
func (e *JobError) Temporary() bool {
	return e.Class == jobs.ClassExhausted || e.Class == jobs.ClassMaxDeliveries
}

// jobError describes a failed result.
func jobError(r *Result) *JobError {
	e := &JobError{JobID: r.JobID, Tenant: r.Tenant, Op: r.Op, DeadLetterSeq: r.DeadLetterSeq, Result: r}
	if i := r.Error; i != nil {
		// Text from elsewhere, which callers log (the error, its fields,
		// its Result): cleared of anything shaped like a secret (a JWT, a
		// Clerk key, a bearer token).
		c := i.Redacted()
		r.Error = &c
		e.Class, e.Message, e.HTTPStatus, e.ClerkCode, e.ClerkMessage, e.TraceID, e.Field =
			c.Class, c.Message, c.HTTPStatus, c.ClerkCode, c.ClerkMessage, c.TraceID, c.Field
	}
	return e
}

// NoResultError says that no answer came in time for a job, and what is
// known about it.
type NoResultError struct {
	JobID string
	// Submitted is set when this call published the job: the job was
	// accepted (it is in the jobs stream at Submitted.Seq, or ran already)
	// and may still run.
	Submitted *Submitted
	// Err is why the wait ended (the context's error), joined with the last
	// error reading the records, if any.
	Err error
	// Ignored counts the messages on the request's reply inbox that were not
	// this job's answer: not JSON, or naming another job, op, tenant or
	// sequence. The workers never send those to a request's inbox, so
	// something else may be publishing there. What they said is never
	// shown.
	Ignored int
	// Dropped counts the messages the request's reply inbox dropped unread
	// because it was full (Replies.Dropped): the answer may have been one
	// of them.
	Dropped int
}

func (e *NoResultError) Error() string {
	var msg string
	switch s := e.Submitted; {
	case s == nil:
		msg = fmt.Sprintf("no result or dead letter for job %s yet", e.JobID)
	case s.Duplicate:
		msg = fmt.Sprintf("no record of job %s yet: it was published before (stream %s, seq %d), so its answer goes to the inbox of that first request; it may still run", e.JobID, s.Stream, s.Seq)
	default:
		msg = fmt.Sprintf("no result for job %s yet: it was accepted (stream %s, seq %d) and may still run", e.JobID, s.Stream, s.Seq)
	}
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	if e.Ignored > 0 {
		msg += fmt.Sprintf("; %d other message(s) on its reply inbox ignored, not this job's answer (malformed, of another job, or forged: is something other than the workers publishing to the inbox?)", e.Ignored)
	}
	if e.Dropped > 0 {
		msg += fmt.Sprintf("; %d message(s) dropped unread, the reply inbox being full (flooded?): its answer may have been one of them", e.Dropped)
	}
	return msg + "; Wait finds its result or dead letter later"
}

// Is makes errors.Is(err, ErrNoResult) true.
func (e *NoResultError) Is(target error) bool { return target == ErrNoResult }

// Unwrap gives the context's error (and a record lookup's).
func (e *NoResultError) Unwrap() error { return e.Err }

// unavailable wraps a NATS error as ErrUnavailable, with what was being
// done.
func unavailable(err error, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, fmt.Sprintf(format, a...), err)
}
