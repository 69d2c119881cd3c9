package handlers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// BulkProgress is what a revoke_all job has done so far. It is saved
// (ProgressStore) as the job goes, so a redelivery after a crash resumes
// instead of starting over.
type BulkProgress struct {
	// JobID is the job's id, for whoever reads the store (the console).
	JobID     string    `json:"job_id,omitempty"`
	UserID    string    `json:"user_id"`
	StartedAt time.Time `json:"started_at"`
	// Done maps each handled session to its outcome: "revoked",
	// "already_gone" or "failed".
	Done   map[string]string `json:"done"`
	Passes int               `json:"passes"`
	// Excepted are the listed active or pending sessions left alone.
	Excepted map[string]bool `json:"excepted,omitempty"`
	// Locked: the user was locked (lock_user) before anything was revoked;
	// LockedUntil is when the lock ends on its own.
	Locked      bool       `json:"locked,omitempty"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// LockPass is Passes when the lock was last sent (lock_user): MaxPasses
	// bounds the passes since, so that a delivery that sends the lock
	// again, after one that could not lock, revokes what was created
	// meanwhile.
	LockPass int  `json:"lock_pass,omitempty"`
	Resumed  bool `json:"-"`
}

// Outcomes of one session in a revoke_all job.
const (
	sessionRevoked     = "revoked"
	sessionAlreadyGone = "already_gone"
	sessionFailed      = "failed"
)

// ProgressStore keeps revoke_all progress between deliveries. The worker
// implements it over a JetStream key-value bucket.
type ProgressStore interface {
	// Load returns the saved progress of a job, or nil if there is none.
	Load(ctx context.Context, jobID string) (*BulkProgress, error)
	Save(ctx context.Context, jobID string, p *BulkProgress) error
	Delete(ctx context.Context, jobID string) error
}

// RevokeAll runs revoke_all jobs: it lists the user's sessions
// (paginated, 500 a page) and revokes each active or pending one with bounded concurrency, through
// the same rate-limited client as every other job, so single jobs keep
// flowing.
//
// With lock_user it locks the user first. When Clerk refuses the lock for
// good (403: the instance does not allow locking, or the key may not lock
// users), or answers it 200 without locking the user, it revokes every
// session all the same and then fails with a LockRefusedError: during an
// account takeover, sessions revoked without the lock are better than none,
// but the job must not read as the success the publisher asked for.
//
// Sessions created while the job runs: after a pass over the listed
// sessions, the job lists again and revokes what is still active, until a
// pass finds nothing new (at most MaxPasses). A session created after the
// last pass is not revoked; lock the user in Clerk first if an attacker may
// still sign in.
type RevokeAll struct {
	Clerk clerkapi.Sessions
	// Users locks users for lock_user jobs; without it such jobs fail as
	// unsupported.
	Users clerkapi.Users
	Store ProgressStore
	// DeadLetter records a session whose revoke failed permanently as its
	// own sessions.revoke job, so operators can replay just those.
	DeadLetter func(ctx context.Context, jobID, sessionID string, err error) error
	// Report receives progress updates for the job's reply_to, about every
	// ReportEvery.
	Report func(ctx context.Context, replyTo string, p jobs.Progress)
	// Retry runs one Clerk call with the worker's retry policy: a
	// transient failure of one call must not stop the whole job.
	Retry func(ctx context.Context, call func() error) error
	// Concurrency bounds the revokes in flight for one job. It is asked
	// at each pass, so it can follow the rate limit and Clerk's latency;
	// nil means 8.
	Concurrency func() int
	// CheckpointEvery is how often progress is saved.
	CheckpointEvery time.Duration
	// ReportEvery is how often progress is reported.
	ReportEvery time.Duration
	// MaxPasses bounds the list-and-revoke passes of a job (since the lock
	// was last sent, for lock_user: BulkProgress.LockPass).
	MaxPasses int
}

// pageSize is the largest page GetSessionList serves.
const pageSize = clerkapi.MaxListLimit

// Handle runs one revoke_all job. A retryable or systemic error ends the
// run with progress saved; the next run (a retry, the circuit closing, or a
// redelivery to any worker) continues from there.
func (h RevokeAll) Handle(ctx context.Context, a *jobs.RevokeAllArgs) (Answer, error) {
	jobID := a.JobID
	p, err := h.Store.Load(ctx, jobID)
	if err != nil {
		return Answer{}, fmt.Errorf("revoke_all %s: load progress: %w", jobID, err)
	}
	if p != nil && p.UserID != a.UserID {
		// The same job id reused for another user: that progress is not
		// this job's.
		p = nil
	}
	resumed := p != nil
	if !resumed {
		p = &BulkProgress{JobID: jobID, UserID: a.UserID, StartedAt: time.Now().UTC()}
	}
	p.Resumed = resumed
	if p.Done == nil { // a store may give back what it saved as null
		p.Done = map[string]string{}
	}
	if p.Excepted == nil {
		p.Excepted = map[string]bool{}
	}
	r := &bulkRun{h: h, args: a, p: p}
	// refused is Clerk's refusal of the lock, when it refused for good;
	// unconfirmed, how Clerk answered the lock 200 without locking the
	// user. Either way the sessions are revoked all the same, and the job
	// then fails (LockRefusedError).
	var refused *clerkapi.Error
	var unconfirmed unconfirmedLock
	// failed is the job's failure, run's when the revokes did not finish
	// (nil when they did): with the user not locked, a LockRefusedError,
	// which says so first.
	failed := func(run error) error {
		if refused == nil && unconfirmed == "" {
			return run
		}
		return &LockRefusedError{JobID: jobID, Summary: r.summary(), Err: refused, Unconfirmed: string(unconfirmed), Run: run}
	}
	// A panic (a revoke's, raised again by revoke once the others have
	// returned) is the job's error (the worker's recoverPanic): with the
	// user not locked, it says so first, as every other failure of the
	// job does, or the job's last word left it out.
	defer func() {
		if v := recover(); v != nil {
			if refused != nil || unconfirmed != "" {
				p, _ := v.(*Panic)
				v = fmt.Sprintf("user NOT locked (%s), revoked %d sessions so far, then: %v", lockWhy(refused), r.summary().Revoked, v)
				if p != nil {
					v = &Panic{Value: v, Stack: p.Stack}
				}
			}
			panic(v)
		}
	}()
	if a.LockUser {
		if err := h.lock(ctx, a, p); err != nil {
			if refused = lockRefusal(err); refused == nil && !errors.As(err, &unconfirmed) {
				return Answer{}, err
			}
			// Not locked now, whatever an earlier delivery saved (a lock
			// since ended, which Clerk now refuses to make again).
			p.Locked, p.LockedUntil = false, nil
			// The requester hears it now, while the sessions are revoked,
			// not from the job's end: the last delivery's, for a lock
			// Clerk did not confirm.
			r.notLocked = lockWhy(refused)
			if h.Report != nil {
				h.Report(ctx, a.ReplyTo, r.progress())
			}
		}
	}
	if !resumed && !p.Locked {
		// Saved before the first revoke (a lock saves it itself): a
		// delivery cut before its first checkpoint left no progress, so the
		// next one started afresh and its summary left out every session
		// the cut one had revoked (recoverUnsaved recounts from
		// StartedAt). A failed save costs only that, as a missed
		// checkpoint does.
		h.saveBeforeRevoking(ctx, jobID, p)
	}
	// A delivery that resumes recounts what the last one revoked unsaved:
	// after the lock, which comes before any listing (this one reads every
	// page of the user's revoked sessions), and whose refusal its failure
	// must not hide. Before the lock, a listing that kept failing ended
	// every delivery after the first with the listing's error alone, and
	// the last one's letter said nothing of the user NOT locked.
	if resumed {
		if err := r.recoverUnsaved(ctx); err != nil {
			return Answer{}, failed(err)
		}
	}
	err = r.run(ctx)
	// Save whatever was done, even when the run failed or was cancelled:
	// that is what makes the next delivery resume. A save that fails is
	// not the job's failure: like a missed checkpoint, it costs only a
	// recount (recoverUnsaved) if the job runs again. A progress too big
	// to save (some 20,000 sessions at NATS's default max_payload) would
	// otherwise fail a job that revoked every session, on every delivery.
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = h.Store.Save(saveCtx, jobID, p)
	if err != nil {
		// With the user not locked, that comes first: a last delivery's
		// dead letter read "gave up after 5 deliveries: revoke_all …:
		// list sessions …", the lock's failure nowhere. The run's failure
		// decides what happens next (see LockRefusedError.Run).
		return Answer{}, failed(err)
	}
	sum := r.summary()
	if h.Report != nil {
		h.Report(ctx, a.ReplyTo, r.progress())
	}
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.Int("clerkjobs.bulk.revoked", sum.Revoked), attribute.Int("clerkjobs.bulk.already_gone", sum.AlreadyGone),
		attribute.Int("clerkjobs.bulk.failed", sum.Failed), attribute.Int("clerkjobs.bulk.excepted", sum.Excepted),
		attribute.Int("clerkjobs.bulk.passes", sum.Passes), attribute.Int("clerkjobs.bulk.remaining", sum.Remaining),
		attribute.Bool("clerkjobs.bulk.locked", sum.Locked))
	if refused != nil || unconfirmed != "" {
		// A failure, not a result: the publisher asked for the lock, and
		// a result would read as the account contained. The progress is
		// left to the caller: a delivery cut before the dead letter is
		// stored resumes from it (the worker deletes it once the letter
		// is; a replay of the letter is a new job). An unconfirmed lock's
		// failure is retryable (see LockRefusedError): the next delivery
		// resumes from it too.
		return Answer{}, failed(nil)
	}
	return Answer{Result: sum, Done: func(ctx context.Context) error { return h.Store.Delete(ctx, jobID) }}, nil
}

// lockWhy says why a user is not locked: Clerk's refusal of the lock, or,
// nil, a lock Clerk answered 200 without locking the user.
func lockWhy(refused *clerkapi.Error) string {
	if refused != nil {
		return jobs.NotLockedReason(refused.StatusCode)
	}
	return jobs.NotLockedReason(0)
}

// lockRefusal is Clerk's answer in err, the lock's failure, when Clerk
// refused the lock for good, or nil: a permanent answer (403: the
// instance's settings do not allow locking, or the key may not lock users,
// whose revokes use other endpoints and may still be allowed; 400, 422, a
// 409 other than resource_locked: the request's fault) other than 404. A 409
// resource_locked (the user being changed meanwhile) is retryable, as
// clerkapi classes it. Such a lock will not take if sent again, and
// stopping there would leave every session of a taken-over account active,
// so the sessions are revoked without it. A 404 is the user not existing:
// there is no session to revoke (the listing would find none), and the
// publisher has the wrong id. A retryable failure may take later, and a
// systemic one (the key) is nobody's job's: both still stop the job before
// any revoke.
func lockRefusal(err error) *clerkapi.Error {
	if e, ok := errors.AsType[*clerkapi.Error](err); ok && e.Class() == clerkapi.Permanent && e.StatusCode != http.StatusNotFound {
		return e
	}
	return nil
}

// LockRefusedError is the failure of a lock_user revoke_all job whose user
// is not locked: every session was revoked as without the lock (Summary).
// Either Clerk refused the lock for good (Err), or it answered the lock 200
// without locking the user (Unconfirmed).
//
// A refusal unwraps to Clerk's answer, a permanent error, so the job is
// dead-lettered as permanent with Clerk's status and code (redacted, as
// every Clerk error, by the worker): sent again, the lock would be refused
// again.
//
// An unconfirmed lock unwraps to nothing of Clerk's, so the failure is
// retryable (clerkapi.ClassOf's class of an error that is not Clerk's): a
// 200 that is not a lock may be a passing fault (a proxy's stale copy, an
// answer from before a settings change), and the next delivery sends the
// lock again at the cost of relisting the sessions (the revokes resume from
// the saved progress, and revoke only what was created meanwhile). Made
// permanent, one such answer would end the job for good, and leave a user
// whom a second try would have locked unlocked. Should every delivery get
// the same answer, the last one's dead letter (exhausted) still starts
// with this error's text (the worker puts "gave up after N deliveries"
// after it, not before), the user NOT locked and the counts first.
type LockRefusedError struct {
	JobID   string
	Summary jobs.RevokeAllSummary
	// Err is Clerk's refusal of the lock; nil for an unconfirmed lock.
	Err *clerkapi.Error
	// Unconfirmed is what Clerk answered the lock 200 with instead of the
	// user locked ("a user who is not locked", "another user than the one
	// to lock"), when Err is nil.
	Unconfirmed string
	// Run is why the revokes did not finish, when they did not (a
	// listing, a resumed delivery's recount included, or a revoke failed,
	// the delivery ended): Summary counts what
	// was done so far. The error then unwraps to Run alone, whose class
	// decides (a retryable failure is retried, resuming the revokes), not
	// to the lock's refusal, which would dead-letter the job as permanent
	// with sessions still to revoke.
	Run error
}

// Error says, for the person reading the dead letter, what was not done,
// what was, why, and what to do. It starts with the user NOT locked: the
// lists cut the error short (dlq list at 60 characters, the console at
// 160), and "revoked 5 sessions" alone reads as the success asked for.
// The counts follow, as the dead letter's header keeps only its first
// 1024 bytes. Of Clerk's refusal it gives the status, code and trace id,
// not Clerk's message: that text is Clerk's, of any length, and in the
// middle it pushed the advice out of the header; the worker stores it
// apart (Dlq-Clerk-Message, clerk_message). With Run, whose Clerk fields
// the letter holds instead, it gives the message cut short (see refusal).
func (e *LockRefusedError) Error() string {
	s := e.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "user NOT locked (%s): revoked %d sessions of %s (already gone %d, failed %d, excepted %d",
		lockWhy(e.Err), s.Revoked, s.UserID, s.AlreadyGone, s.Failed, s.Excepted)
	if s.Remaining > 0 {
		fmt.Fprintf(&b, ", still active %d", s.Remaining)
	}
	if e.Run != nil {
		// The run's own error, then the lock's answer; no advice: the
		// revokes come first, and the next delivery resumes them.
		// The run's error is cut to the room left: Clerk's message in it
		// is of any length (the letter stores it apart,
		// Dlq-Clerk-Message), and whole it pushed the lock's answer, and
		// the worker's reason after it, out of the letter's 1024-byte
		// header.
		fmt.Fprintf(&b, ") so far for revoke_all %s, and the revokes did not finish: ", e.JobID)
		tail := ". Clerk's answer to the lock: " + e.refusal()
		// Cleared before it is cut: a secret cut in half no longer looks
		// like one to the worker's redaction.
		b.WriteString(text.Line(redact.Text(e.Run.Error()), max(maxLockRefusedText-b.Len()-len(tail), minRunText)))
		b.WriteString(tail)
		return b.String()
	}
	fmt.Fprintf(&b, ") for revoke_all %s, but new sessions can still be created. Clerk's answer to the lock: %s. %s", e.JobID, e.refusal(), e.advice())
	return b.String()
}

// refusal is Clerk's refusal in a few bounded words: status, code, trace id
// (the code and trace id are Clerk's text too, so bounded); for an
// unconfirmed lock, what the 200 held instead (the handler's words).
func (e *LockRefusedError) refusal() string {
	if e.Err == nil {
		return "HTTP 200 with " + e.Unconfirmed
	}
	s := fmt.Sprintf("HTTP %d", e.Err.StatusCode)
	if c := e.Err.Code(); c != "" {
		s += " " + text.Line(c, maxRefusalField)
	}
	if e.Err.TraceID != "" {
		s += ", trace " + text.Line(e.Err.TraceID, maxRefusalField)
	}
	if e.Run != nil {
		// The letter's Clerk fields (Dlq-Clerk-Message among them) are
		// the run's failure's, which the error unwraps to: the lock's
		// message, which says why Clerk refused it, is given here, cut
		// short (no advice follows it).
		if m := e.Err.Message(); m != "" {
			s += ": " + text.Line(m, maxRefusalMessage)
		}
		return s
	}
	return s + "; Clerk's message given apart"
}

// maxRefusalField bounds Clerk's code and trace id in a LockRefusedError:
// Clerk's are a few dozen bytes. maxRefusalMessage bounds Clerk's message
// of the lock, given in the error only when Run is set.
const (
	maxRefusalField   = 64
	maxRefusalMessage = 160
	// maxLockRefusedText bounds a LockRefusedError with Run, whose
	// failure is cut to the room left (minRunText at least): the worker's
	// reason for ending the job ("gave up after N deliveries", "refused
	// with an authorization error although Clerk accepts the key") comes
	// after it, and both must fit the letter's 1024-byte header.
	maxLockRefusedText = 900
	minRunText         = 60
)

// advice is what to do, by Clerk's status and code. A 403 is something an
// operator can change, then replay the letter: with the code
// authorization_invalid ("you are not authorized to perform this request"
// in Clerk's catalogue), the key's rights first (a key of another instance,
// or without the permission to lock users). The spec lists that one 403
// for the lock, with no code of its own for an instance whose settings do
// not allow user lockout, so that cause is named after the key's; a 403
// with another code is the lockout settings. Another refusal (400, 422, a
// 409 of another code) is the request's, and Clerk's message says why: a
// replay would be refused again. An unconfirmed lock is sent again by the
// next delivery, or by a replay of the last one's letter.
func (e *LockRefusedError) advice() string {
	const withoutLock = "to revoke without locking, publish without --lock (lock_user)"
	switch {
	case e.Err == nil:
		return "The next delivery, or a replay of this letter, sends the lock again, then revokes what was created meanwhile (revoking again is harmless). " +
			"If Clerk keeps answering so (user lockout off in the instance's restrictions settings? a proxy answering for Clerk?), " +
			"lock the user in the Clerk dashboard; " + withoutLock
	case e.Err.StatusCode == http.StatusForbidden && e.Err.HasCode("authorization_invalid"):
		// Short: with ids and Clerk's code and trace id at their longest,
		// the error must still fit the letter's 1024-byte header.
		return "Not authorised: check the worker's secret key (the key of this user's Clerk instance, whose permissions allow locking users) " +
			"or allow user lockout in the instance's restrictions settings (the same 403), then replay this letter " +
			"(revoking again is harmless); " + withoutLock
	case e.Err.StatusCode == http.StatusForbidden:
		return "To lock the user, allow user lockout in the Clerk instance's restrictions settings (dashboard) and replay this letter " +
			"(revoking again is harmless); " + withoutLock
	}
	return "Clerk's message says why it refused the lock request; replayed as it is, the lock would be refused again. " +
		"To revoke without locking, publish without --lock (lock_user); to lock the user, use the Clerk dashboard"
}

// Unwrap is the run's failure when the revokes did not finish (Run), else
// Clerk's refusal, or nothing for an unconfirmed lock (never a nil
// *clerkapi.Error, which errors.As would take for Clerk's answer).
func (e *LockRefusedError) Unwrap() error {
	switch {
	case e.Run != nil:
		return e.Run
	case e.Err == nil:
		return nil
	}
	return e.Err
}

// lock locks the user before anything is revoked (lock_user), so that the
// passes converge: no session can be created while the job runs. A lock
// that fails stops the job before any revoke, with the lock's error (a 404
// dead-letters the job, a 5xx retries it), except a lock Clerk refuses for
// good (lockRefusal) or answers without locking the user (unconfirmedLock),
// after which Handle revokes without it. The lock is
// saved at once, so a redelivery after a crash does not lock again —
// unless the lock has ended meanwhile, or the save failed.
func (h RevokeAll) lock(ctx context.Context, a *jobs.RevokeAllArgs, p *BulkProgress) error {
	if p.lockHeld() {
		return nil
	}
	// This run sends the lock (again): the passes counted are those from
	// here (saved with the lock, for a run that resumes under it). An
	// earlier run that could not lock (answered 200 unlocked) may have
	// spent the job's passes on sessions created as fast as they were
	// revoked; counted against those, this run would list what was created
	// meanwhile and revoke none of it, and end locked with sessions active,
	// or leave them to the next delivery, which would revoke none either.
	p.LockPass = p.Passes
	if h.Users == nil {
		return fmt.Errorf("revoke_all %s: lock_user: this worker cannot lock users: %w", a.JobID, ErrUnsupported)
	}
	var until time.Time
	err := h.retry(ctx, func() error {
		u, err := h.Users.LockUser(ctx, a.UserID)
		if err != nil {
			return err
		}
		// Only Clerk's word that the user is locked is a lock: a 200 with
		// a user who is not (locked false) would otherwise be reported as
		// locked, and with no end, as an indefinite lock. Retryable, as a
		// 2xx that is not the answer asked for: locking again is harmless.
		var locked bool
		if until, locked = u.LockedUntil(time.Now()); !locked {
			return unconfirmedLock("a user who is not locked")
		}
		// Nor is another user's lock (a proxy's cache keyed wrongly), as
		// the listing refuses another user's sessions.
		if u.ID != a.UserID {
			return unconfirmedLock("another user than the one to lock")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke_all %s: lock user %s before revoking: %w", a.JobID, a.UserID, err)
	}
	p.Locked, p.LockedUntil = true, nil
	if !until.IsZero() {
		until = until.UTC()
		p.LockedUntil = &until
	}
	// A save that fails (a progress bucket sealed, full or deleted) is not
	// the job's failure, like any missed checkpoint: it costs only a second
	// lock if the job runs again, as a crash before the save would. Failing
	// here locked the user again on every attempt and revoked nothing: an
	// account takeover left with every session active.
	h.saveBeforeRevoking(ctx, a.JobID, p)
	return nil
}

// saveBeforeRevoking saves p, waiting at most a second: a save before the
// revokes (the job's start, its lock) is worth a recount or a second lock
// if the job is cut, not the revokes themselves. A save the server leaves
// unanswered (writes to the bucket refused by permissions, a stream
// without a leader) held every revoke_all's first revoke for JetStream's
// whole timeout: live sessions for longer during an account takeover.
func (h RevokeAll) saveBeforeRevoking(ctx context.Context, jobID string, p *BulkProgress) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = h.Store.Save(ctx, jobID, p)
}

// lockHeld reports whether an earlier delivery's lock holds still: the
// job does not lock again.
func (p *BulkProgress) lockHeld() bool {
	return p.Locked && (p.LockedUntil == nil || time.Now().Before(*p.LockedUntil))
}

// unconfirmedLock is a lock Clerk answered 200 without locking the user:
// what the answer held instead. It is not Clerk's error, so retryable
// (clerkapi.ClassOf): retried within the delivery like any call, and
// then, unlike other retryable failures of the lock, not a reason to stop
// before the revokes (Handle): Clerk did answer, and may keep answering so
// on every delivery, which left every session of a taken-over account
// active until the job was dead-lettered as exhausted.
type unconfirmedLock string

func (u unconfirmedLock) Error() string { return "clerk LockUser: answered 200 with " + string(u) }

// recoverUnsaved finds sessions revoked after the job's last checkpoint
// (before a crash): they are no longer active, so no pass would list them
// again, and without this they would be missing from the counts. Revoked
// sessions last updated since the job started are counted as its own. The
// list is ordered by creation, not update, so every page is read. An
// excepted session is never the job's: one revoked meanwhile (its owner
// signed out) would be counted twice, and as revoked by the job.
func (r *bulkRun) recoverUnsaved(ctx context.Context) error {
	a, p := r.args, r.p
	since := p.StartedAt.UnixMilli()
	err := r.eachPage(ctx, clerkapi.ListParams{UserID: a.UserID, Status: clerkapi.StatusRevoked}, func(page *clerkapi.SessionList) {
		for _, s := range page.Data {
			if p.Excepted[s.ID] || slices.Contains(a.ExceptSessionIDs, s.ID) {
				continue
			}
			if _, ok := p.Done[s.ID]; !ok && s.UpdatedAt >= since {
				p.Done[s.ID] = sessionRevoked
			}
		}
	})
	if err != nil {
		return fmt.Errorf("revoke_all: list revoked sessions of %s: %w", a.UserID, err)
	}
	return nil
}

// eachPage calls f with each page of the sessions p selects, from the
// first, pageSize at a time, each page without the sessions an earlier one
// brought (a session created meanwhile shifts the later ones back onto
// the next page). A full page is never the last, as before
// total_count was read: a total_count lower than the list (stale, or
// wrong) must not end the listing early. A shorter page is the last
// when Clerk's total_count says that no more remain, and never without a
// total_count, so that Clerk serving fewer than its documented 500 a page
// does not end the listing early either: a revoke_all that stopped there
// would leave sessions active and say nothing (and, as it lists every
// session, not only active ones, would read the same first page again at
// each pass). Whatever total_count says, a page that brings no session
// not seen yet ends the listing: a Clerk that ignores the offset would
// otherwise be asked for the same page until the offset reached
// total_count, which may be never. Each page read counts (pageRead).
func (r *bulkRun) eachPage(ctx context.Context, p clerkapi.ListParams, f func(*clerkapi.SessionList)) error {
	p.Limit, p.Offset, p.Paginated = pageSize, 0, true
	seen := map[string]bool{}
	for {
		page, err := retried(ctx, r.h, func() (*clerkapi.SessionList, error) { return r.h.Clerk.ListSessions(ctx, p) })
		if err != nil {
			return err
		}
		fresh := &clerkapi.SessionList{TotalCount: page.TotalCount}
		for _, s := range page.Data {
			if p.UserID != "" && s.UserID != p.UserID {
				// A listing that did not apply the user filter (a proxy,
				// another API version): acting on it would revoke other
				// users' sessions.
				return fmt.Errorf("clerk GetSessionList: the list of %s's sessions holds another user's: the user_id filter was not applied", p.UserID)
			}
			if !seen[s.ID] {
				seen[s.ID] = true
				fresh.Data = append(fresh.Data, s)
			}
		}
		f(fresh)
		r.pageRead(ctx)
		p.Offset += len(page.Data)
		switch {
		case len(fresh.Data) == 0:
			return nil
		case len(page.Data) >= pageSize, page.TotalCount < 0:
			// A short page without total_count may be a Clerk serving
			// fewer than asked: only a page with nothing new ends it.
		case int64(p.Offset) >= page.TotalCount:
			return nil
		}
	}
}

// bulkRun is one run of a revoke_all job.
type bulkRun struct {
	h    RevokeAll
	args *jobs.RevokeAllArgs
	mu   sync.Mutex // guards p.Done while revokes run
	p    *BulkProgress

	total     int
	remaining int       // active or pending sessions left when the pass limit was reached
	pagesRead int       // pages of listings read by this run, guarded by mu
	reported  time.Time // the last report sent from a listing
	notLocked string    // why the user is not locked (lock_user), set before the revokes
}

// run lists and revokes until a listing finds nothing left to revoke, or
// MaxPasses passes are complete (since the lock was last sent: see
// BulkProgress.LockPass). A pass counts only once all of its
// revokes are done: an interrupted pass is redone, never skipped.
func (r *bulkRun) run(ctx context.Context) error {
	maxPasses := max(r.h.MaxPasses, 1)
	relisted := 0
	for {
		todo, shifted, err := r.list(ctx)
		if err != nil {
			return err
		}
		if len(todo) == 0 && shifted {
			// Nothing found, but sessions ended while the pages were read:
			// the listing may have missed one, so it cannot end the job.
			if relisted++; relisted < maxListings {
				continue
			}
			return fmt.Errorf("revoke_all: sessions of %s kept leaving the listing while it was read (%d listings), so a listing may have missed some", r.args.UserID, relisted)
		}
		relisted = 0
		if len(todo) == 0 {
			r.p.Passes = max(r.p.Passes, 1)
			return nil
		}
		if r.p.Passes-r.p.LockPass >= maxPasses {
			// Sessions keep appearing: say how many are left rather than
			// chase them forever.
			r.remaining = len(todo)
			return nil
		}
		if err := r.revoke(ctx, todo); err != nil {
			return err
		}
		r.p.Passes++
		// One event per pass, no span per revoke: a 10,000-session job
		// stays a readable trace.
		trace.SpanFromContext(ctx).AddEvent("revoke_all.pass", trace.WithAttributes(
			attribute.Int("clerkjobs.bulk.pass", r.p.Passes), attribute.Int("clerkjobs.bulk.found", len(todo))))
	}
}

// maxListings bounds the listings in a row that find nothing to revoke
// while sessions end under them.
const maxListings = 5

// list takes a snapshot of the user's live sessions (active or pending)
// still to handle, from a listing of all the user's sessions. It reads
// every page before revoking anything. A session that leaves the listing
// while the pages are read (a Clerk listing only some statuses, or
// deleting a session) shifts the pages, moving one not read yet onto a
// page already read: shifted says that a later page counted fewer
// sessions than the first, so the listing may have missed some, which
// only a later listing finds (run never ends the job on such a one).
// Sessions created meanwhile come first and only move the others back,
// onto the next page: eachPage drops the repeats.
func (r *bulkRun) list(ctx context.Context) (todo []string, shifted bool, err error) {
	first := int64(-1)
	// Every session of the user, not status=active: that filter cannot
	// select a pending session (signed in, a task such as choosing an
	// organization left to do), which becomes active once its task is done.
	err = r.eachPage(ctx, clerkapi.ListParams{UserID: r.args.UserID}, func(page *clerkapi.SessionList) {
		if first < 0 {
			first = page.TotalCount
		} else if page.TotalCount < first {
			shifted = true
		}
		for _, s := range page.Data {
			switch {
			case !live(s.Status):
				// Ended before the job, or handled by it already.
			case slices.Contains(r.args.ExceptSessionIDs, s.ID):
				r.p.Excepted[s.ID] = true
			case r.p.Done[s.ID] == sessionFailed:
				// Already dead-lettered; the operator replays it.
			default:
				// Listed live, so not handled yet, whatever an answer said
				// of it before (a revoke answered 200 with the session
				// still active, a 404 from a proxy): counted once, by the
				// outcome its next revoke gets, or as remaining.
				delete(r.p.Done, s.ID)
				todo = append(todo, s.ID)
			}
		}
	})
	if err != nil {
		return nil, false, fmt.Errorf("revoke_all: list the sessions of %s: %w", r.args.UserID, err)
	}
	r.total = len(r.p.Done) + len(todo)
	return todo, shifted, nil
}

// revoke revokes ids with bounded concurrency. It stops at the first error
// that is not the session's own (retryable, systemic, cancelled).
//
// A revoke that panics (the Clerk client given to the worker, say) stops
// the others, and its panic is raised again here, in the handler's
// goroutine, once every revoke has returned: unrecovered in its own
// goroutine it killed the process, every job in flight with it (and the
// redelivered job the next worker), where the worker turns a handler's
// panic into the job's error; and raised before the others returned, the
// job would be settled while they still revoked.
func (r *bulkRun) revoke(ctx context.Context, ids []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan string)
	var wg sync.WaitGroup
	var panicMu sync.Mutex
	var panicked *Panic // the first revoke's panic, with its goroutine's stack
	n := 8
	if r.h.Concurrency != nil {
		n = max(r.h.Concurrency(), 1)
	}
	for range n {
		wg.Go(func() {
			defer func() {
				if v := recover(); v != nil {
					panicMu.Lock()
					if panicked == nil {
						panicked = &Panic{Value: v, Stack: debug.Stack()}
					}
					panicMu.Unlock()
					cancel(errors.New("revoke_all: a revoke panicked"))
				}
			}()
			for id := range work {
				if err := r.revokeOne(ctx, id); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	stopTicks := r.tick(ctx)
	func() {
		defer close(work)
		for _, id := range ids {
			select {
			case work <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	stopTicks()
	if panicked != nil {
		panic(panicked)
	}
	// The cause is the error that stopped a revoke, or the job's own
	// cancellation; nil when every id was handled.
	return context.Cause(ctx)
}

// Panic is a panic raised again in the handler's goroutine (a revoke's,
// in revoke_all): Value is the panic's value as it was, Stack the stack of
// the goroutine that panicked, which the one that raises it again no longer
// shows. It reads as its value (fmt's %v), so the job's error is the same;
// the worker logs Stack.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) String() string {
	if p == nil { // a custom handler's panic((*Panic)(nil))
		return "<nil>"
	}
	return fmt.Sprint(p.Value)
}

// revokeOne revokes one session and records its outcome. It returns an error
// only when the whole job must stop. Its Clerk calls start no span (see
// run).
func (r *bulkRun) revokeOne(ctx context.Context, id string) error {
	span := trace.SpanFromContext(ctx) // the job's, for the revoke_all.failed event
	// Nor do the waits around those calls (a Retry-After pause, a backoff
	// between attempts), which start their spans from the span in the
	// context: a span that records nothing, with the job's trace ids.
	ctx = clerkapi.ContextWithoutSpans(trace.ContextWithSpanContext(ctx, span.SpanContext()))
	s, err := retried(ctx, r.h, func() (*clerkapi.Session, error) { return r.h.Clerk.RevokeSession(ctx, id) })
	outcome := sessionRevoked
	switch {
	case err == nil && s.Status != clerkapi.StatusRevoked:
		outcome = sessionAlreadyGone
	case err == nil:
	case isNotFound(err):
		outcome = sessionAlreadyGone // deleted meanwhile
	case clerkapi.ClassOf(err) == clerkapi.Permanent:
		gone, gerr := r.checkGone(ctx, id)
		if gerr != nil {
			return gerr // could not tell: stop, the job is retried
		}
		if gone {
			outcome = sessionAlreadyGone
			break
		}
		span.AddEvent("revoke_all.failed", trace.WithAttributes(attribute.String("error.type", clerkapi.ClassOf(err).String())))
		if derr := r.h.DeadLetter(ctx, r.args.JobID, id, err); derr != nil {
			return fmt.Errorf("revoke_all: dead-letter the revoke of %s: %w", id, derr)
		}
		outcome = sessionFailed
	default:
		return err
	}
	r.mu.Lock()
	r.p.Done[id] = outcome
	r.mu.Unlock()
	return nil
}

// checkGone tells a session that had already ended (Clerk refused to revoke
// it) from one that truly could not be revoked. An error means it could not
// tell (the job is being stopped, or Clerk is failing).
func (r *bulkRun) checkGone(ctx context.Context, id string) (bool, error) {
	s, err := retried(ctx, r.h, func() (*clerkapi.Session, error) { return r.h.Clerk.GetSession(ctx, id) })
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case isNotFound(err):
		return true, nil
	case err != nil && clerkapi.ClassOf(err) != clerkapi.Permanent:
		return false, err
	}
	return err == nil && !live(s.Status), nil
}

// live reports whether a session with status s may still be used: an
// active one, or a pending one, which becomes active once its task is done.
func live(s clerkapi.SessionStatus) bool {
	return s == clerkapi.StatusActive || s == clerkapi.StatusPending
}

// retry runs call with h.Retry, or once when there is none.
func (h RevokeAll) retry(ctx context.Context, call func() error) error {
	if h.Retry == nil {
		return call()
	}
	return h.Retry(ctx, call)
}

// retried is retry for a call with an answer: the answer of the attempt
// that ended the retries.
func retried[T any](ctx context.Context, h RevokeAll, call func() (T, error)) (v T, err error) {
	err = h.retry(ctx, func() (err error) {
		v, err = call()
		return err
	})
	return v, err
}

func isNotFound(err error) bool {
	e, ok := errors.AsType[*clerkapi.Error](err)
	return ok && e.StatusCode == 404
}

// tick saves and reports progress while revokes run.
func (r *bulkRun) tick(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		save := time.NewTicker(max(r.h.CheckpointEvery, 50*time.Millisecond))
		report := time.NewTicker(max(r.h.ReportEvery, 50*time.Millisecond))
		defer save.Stop()
		defer report.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-save.C:
				r.mu.Lock()
				snap := *r.p
				snap.Done = maps.Clone(r.p.Done)
				r.mu.Unlock()
				_ = r.h.Store.Save(ctx, r.args.JobID, &snap) // a missed checkpoint only costs a recount
			case <-report.C:
				if r.h.Report != nil {
					r.h.Report(ctx, r.args.ReplyTo, r.progress())
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// pageRead counts a page of a listing read and reports progress, at once
// for the first page and then at most every ReportEvery. A listing reads
// every page before anything is revoked, and a user's may take many pages,
// each a rate-limited and retried Clerk call: without these updates, done
// stays put and a requester cannot tell the listing from a dead worker.
// Called from the run's goroutine only (no tick runs during a listing).
func (r *bulkRun) pageRead(ctx context.Context) {
	r.mu.Lock()
	r.pagesRead++
	r.mu.Unlock()
	if r.h.Report == nil || time.Since(r.reported) < max(r.h.ReportEvery, 50*time.Millisecond) {
		return
	}
	r.reported = time.Now()
	r.h.Report(ctx, r.args.ReplyTo, r.progress())
}

func (r *bulkRun) summary() jobs.RevokeAllSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := jobs.RevokeAllSummary{UserID: r.args.UserID, Excepted: len(r.p.Excepted), Passes: r.p.Passes, Resumed: r.p.Resumed, Remaining: r.remaining,
		Locked: r.p.Locked, LockedUntil: r.p.LockedUntil, NotLocked: r.notLocked}
	for id, o := range r.p.Done {
		switch o {
		case sessionRevoked:
			s.Revoked++
		case sessionAlreadyGone:
			s.AlreadyGone++
		case sessionFailed:
			s.Failed++
			s.FailedSessionIDs = append(s.FailedSessionIDs, id)
		}
	}
	slices.Sort(s.FailedSessionIDs)
	s.FailedSessionIDs = s.FailedSessionIDs[:min(len(s.FailedSessionIDs), jobs.MaxFailedSessionIDs)]
	return s
}

func (r *bulkRun) progress() jobs.Progress {
	s := r.summary()
	r.mu.Lock()
	done, total, pages := len(r.p.Done), max(r.total, len(r.p.Done)), r.pagesRead
	r.mu.Unlock()
	return jobs.Progress{JobID: r.args.JobID, Op: jobs.OpRevokeAll, Outcome: jobs.InProgress, Progress: s, Total: total, Done: done, PagesRead: pages}
}
