package jobs

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/redact"
)

// Outcome is how a job ended.
type Outcome string

// Outcomes.
const (
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
)

// Result is the message a finished job produces (schemas/result.json). The
// worker stores it on the job's result subject (Subjects.Result:
// <prefix>.results.<tenant>.<op>.<id key>.<generation>.<seq>) when the job
// succeeded and sends it to the job's reply_to whatever the outcome; Secret
// is set only in that reply.
type Result struct {
	JobID string `json:"job_id"`
	// Tenant is the tenant the job's subject named; empty outside tenants.
	Tenant  string  `json:"tenant,omitempty"`
	Op      Op      `json:"op"`
	Outcome Outcome `json:"outcome"`
	// Attempts counts the handler's attempts in the final delivery (one
	// Clerk call for most jobs; a revoke_all's attempt makes many).
	Attempts int `json:"attempts"`
	// ClerkCalls counts the Clerk calls the final delivery made.
	ClerkCalls int       `json:"clerk_calls,omitempty"`
	Deliveries int       `json:"deliveries"`
	StreamSeq  uint64    `json:"stream_seq,omitempty"`
	EnqueuedAt time.Time `json:"enqueued_at,omitzero"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS float64   `json:"duration_ms"`
	Worker     string    `json:"worker,omitempty"`
	// Result is the Clerk answer; absent for token and refresh jobs.
	Result          json.RawMessage `json:"result,omitempty"`
	AlreadyRevoked  bool            `json:"already_revoked,omitempty"`
	SecretDelivered bool            `json:"secret_delivered,omitempty"`
	// Secret is the token or cookies of a token or refresh job, present
	// only in the message sent to reply_to.
	Secret json.RawMessage `json:"secret,omitempty"`
	Error  *ErrorInfo      `json:"error,omitempty"`
}

// ErrorClass says why a job was dead-lettered.
type ErrorClass string

// Error classes.
const (
	// ClassInvalid: the message is not a valid job (not JSON, fails its
	// schema, unknown subject). Fix the publisher.
	ClassInvalid ErrorClass = "invalid"
	// ClassPermanent: Clerk refused the request (400, 404, 422, a refresh
	// token that is not valid). Sending it again cannot succeed.
	ClassPermanent ErrorClass = "permanent"
	// ClassExhausted: Clerk kept failing with retryable errors until the
	// max-deliveries budget ran out. Replay it once Clerk is healthy.
	ClassExhausted ErrorClass = "exhausted"
	// ClassMaxDeliveries: JetStream gave up delivering the job without the
	// worker finishing it (worker crashes, ack timeouts).
	ClassMaxDeliveries ErrorClass = "max_deliveries"
)

// ErrorClasses lists the classes, in a stable order.
func ErrorClasses() []ErrorClass {
	return []ErrorClass{ClassInvalid, ClassPermanent, ClassExhausted, ClassMaxDeliveries}
}

// ErrorInfo describes why a job failed.
type ErrorInfo struct {
	Class        ErrorClass `json:"class"`
	Message      string     `json:"message"`
	HTTPStatus   int        `json:"http_status,omitempty"`
	ClerkCode    string     `json:"clerk_code,omitempty"`
	ClerkMessage string     `json:"clerk_message,omitempty"`
	TraceID      string     `json:"trace_id,omitempty"`
	Field        string     `json:"field,omitempty"`
}

// Redacted returns e with every text in it cleared of anything shaped like
// a secret (a JWT, a Clerk key, a bearer token, a session cookie, a URL's
// password: redact.All, as a dead letter's headers are judged). The texts
// come from elsewhere: Clerk's answer, a proxy in front of it, a dead
// letter's headers that anyone allowed to publish could have written. Show
// or log an ErrorInfo read from a message this way.
func (e ErrorInfo) Redacted() ErrorInfo {
	return e.MapText(redact.All)
}

// MapText is e with f applied to each of its texts (all but HTTPStatus):
// how a reader that shows them (a page, a terminal) treats every one.
func (e ErrorInfo) MapText(f func(string) string) ErrorInfo {
	e.Class = ErrorClass(f(string(e.Class)))
	e.Message, e.ClerkCode, e.ClerkMessage = f(e.Message), f(e.ClerkCode), f(e.ClerkMessage)
	e.TraceID, e.Field = f(e.TraceID), f(e.Field)
	return e
}

// MaxFailedSessionIDs bounds RevokeAllSummary.FailedSessionIDs, so that a
// result stays far below what NATS takes in one message (1 MB by default),
// however many sessions fail.
const MaxFailedSessionIDs = 1000

// RevokeAllSummary is the Result.Result of a revoke_all job.
type RevokeAllSummary struct {
	UserID string `json:"user_id"`
	// Revoked sessions were active and revoked by this job.
	Revoked int `json:"revoked"`
	// AlreadyGone sessions were listed as active but had ended (or been
	// revoked by someone else, or deleted) by the time the job got to them.
	AlreadyGone int `json:"already_gone"`
	// Failed sessions could not be revoked; each was dead-lettered as its
	// own revoke job. FailedSessionIDs names them, sorted, the first
	// MaxFailedSessionIDs of them (the dead letters name them all).
	Failed           int      `json:"failed"`
	FailedSessionIDs []string `json:"failed_session_ids,omitempty"`
	// Excepted counts active sessions left alone (except_session_ids).
	Excepted int `json:"excepted"`
	// Passes is how many list-and-revoke passes ran (more than one when
	// sessions appeared while the job ran).
	Passes int `json:"passes"`
	// Remaining counts active sessions still found when the pass limit was
	// reached (sessions keep being created: lock the user in Clerk).
	Remaining int `json:"remaining,omitempty"`
	// Resumed: the job continued from progress a previous delivery saved.
	Resumed bool `json:"resumed,omitempty"`
	// Locked: the job locked the user first (lock_user), so no session could
	// be created while it ran; Remaining is then 0 by construction.
	Locked bool `json:"locked,omitempty"`
	// LockedUntil is when the lock ends on its own (the instance's lockout
	// duration); absent for a lock without an end.
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// NotLocked, with lock_user, is why the user is NOT locked: Clerk
	// refused the lock ("Clerk refused the lock, HTTP 403") or answered it
	// without locking the user ("Clerk did not confirm the lock, HTTP
	// 200"). Progress updates carry it from the lock's answer on, while the
	// sessions are revoked all the same; the job then fails
	// (handlers.LockRefusedError). A progress update comes from the job's
	// reply subject, which anyone allowed under its prefix may publish to,
	// and is matched by job id and op only: a reader that shows this text
	// checks IsNotLockedReason first (and that the job asked for the
	// lock), as publish --wait and the console do.
	NotLocked string `json:"not_locked,omitempty"`
}

// NotLockedReason is RevokeAllSummary.NotLocked as a worker writes it:
// Clerk refused the lock with status, or, for status 0, answered it 200
// without locking the user.
func NotLockedReason(status int) string {
	if status == 0 {
		return "Clerk did not confirm the lock, HTTP 200"
	}
	return fmt.Sprintf("Clerk refused the lock, HTTP %d", status)
}

// IsNotLockedReason reports whether s is a NotLockedReason. A progress
// update comes from a reply subject others may publish to: a reader that
// shows the reason as the worker's shows only these words.
func IsNotLockedReason(s string) bool {
	var status int
	if _, err := fmt.Sscanf(s, "Clerk refused the lock, HTTP %d", &status); err != nil {
		return s == NotLockedReason(0)
	}
	return status >= 400 && status <= 599 && s == NotLockedReason(status)
}

// InProgress is the outcome of a progress update.
const InProgress Outcome = "in_progress"

// Progress is the update a revoke_all job sends to its reply_to while it
// runs (schemas/progress.json); the final message is a Result.
type Progress struct {
	JobID    string           `json:"job_id"`
	Op       Op               `json:"op"`
	Outcome  Outcome          `json:"outcome"` // always "in_progress"
	Progress RevokeAllSummary `json:"progress"`
	// Total is the number of sessions to handle found so far; Done how many
	// of them are handled.
	Total int `json:"total"`
	Done  int `json:"done"`
	// PagesRead counts the pages of Clerk's session listings this delivery
	// has read. It moves while the sessions are listed, before Done can:
	// a requester waits on while either moves (a new delivery counts from
	// 1 again). Absent from a worker that predates it.
	PagesRead int `json:"pages_read"`
}
