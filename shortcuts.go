package clerkjobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// RevokeOptions change RevokeSession; nil means none.
type RevokeOptions struct {
	// JobID names the job (default: a fresh id). Use one derived from what
	// the revoke is for ("offboard-user_42-sess_123") and a retry after a
	// crash is the same job, not a second revoke.
	JobID string
}

// Revocation is a session revoked.
type Revocation struct {
	JobID string
	// Session is the session as Clerk answered: status revoked (or the
	// status it had ended with).
	Session clerkapi.Session
	// AlreadyRevoked: the session had ended before; nothing changed.
	AlreadyRevoked bool
}

// RevokeSession revokes a session and waits until Clerk has confirmed it.
// Errors are those of Request.
func (c *Client) RevokeSession(ctx context.Context, sessionID string, opts *RevokeOptions) (*Revocation, error) {
	a := &jobs.RevokeArgs{SessionID: sessionID}
	if opts != nil {
		a.JobID = opts.JobID
	}
	r, session, err := request[clerkapi.Session](ctx, c, a)
	if err != nil {
		return nil, err
	}
	if string(session.Actor) == "null" {
		session.Actor = nil // not an impersonation: nil, as clerkapi gives it
	}
	return &Revocation{JobID: r.JobID, Session: *session, AlreadyRevoked: r.AlreadyRevoked}, nil
}

// TokenOptions change SessionToken; nil means none.
type TokenOptions struct {
	// Template names a JWT template (CreateSessionTokenFromTemplate).
	Template string
	// ExpiresIn is the token's lifetime in whole seconds, 30s to 10 years
	// (default: Clerk's, or the template's).
	ExpiresIn time.Duration
	// JobID names the job (default: a fresh id).
	JobID string
}

// SessionToken creates a session token, from a JWT template or not. The
// token travels only to this client's inbox; it is returned as a Token,
// which prints as [REDACTED]. Errors are those of Request, and
// ErrSecretDeliveredElsewhere when a job of the same id had been requested
// before (its token went to that request).
func (c *Client) SessionToken(ctx context.Context, sessionID string, opts *TokenOptions) (Token, error) {
	a := &jobs.TokenArgs{SessionID: sessionID}
	if opts != nil {
		a.JobID, a.TemplateName = opts.JobID, opts.Template
		if d := opts.ExpiresIn; d != 0 {
			if d%time.Second != 0 {
				return Token{}, &jobs.InvalidError{Op: jobs.OpToken, Field: "/expires_in_seconds", Reason: fmt.Sprintf("ExpiresIn %s: whole seconds only", d)}
			}
			a.ExpiresInSeconds = int64(d / time.Second)
		}
	}
	r, err := c.Request(ctx, a)
	if err != nil {
		return Token{}, err
	}
	if r.Secret.IsZero() {
		return Token{}, fmt.Errorf("token job %s: %w; request a new token with another job id", r.JobID, ErrSecretDeliveredElsewhere)
	}
	return r.Secret.Token()
}

// RevokeAllOptions change RevokeAll; nil means none.
type RevokeAllOptions struct {
	// JobID names the job (default: a fresh id). The job is safe to repeat:
	// with the same id within the deduplication window it is not queued
	// again, and RevokeAll waits for the first one's record. Its progress
	// goes to the first call's inbox, not to this one: the repeat is
	// waited for WithTimeout (or ctx's deadline) in all, never restarted
	// by progress, and Wait finds the record of a long one later.
	JobID string
	// Except are sessions to keep (the operator's own, say).
	Except []string
	// LockUser locks the user in Clerk before anything is revoked, so that
	// no session can be created while the job runs: an account takeover is
	// contained in one call. The summary says until when the lock holds
	// (it ends on its own; unlock in the Clerk dashboard). When Clerk
	// refuses the lock for good (403: the instance does not allow
	// locking, or the key may not lock users), or answers it without
	// locking the user, every session is revoked all the same and the job
	// fails, saying "user NOT locked" first: a refusal at once, an answer
	// that is no lock once the job's deliveries are spent (each sends the
	// lock again), which may be after RevokeAll has stopped waiting
	// (Wait finds it later).
	LockUser bool
}

// RevokeAll revokes every active session of a user but the exceptions, and
// returns the job's summary. onProgress (when not nil) is called with
// each progress update (after each listing's first page, then about one a
// second) before RevokeAll returns. A user with thousands of sessions takes
// a while at Clerk's rate limit: without a deadline on ctx, the client's
// timeout bounds each stretch in which the job gets on no further (no
// session handled, no page of their listing read). Errors are those of
// Request.
func (c *Client) RevokeAll(ctx context.Context, userID string, opts *RevokeAllOptions, onProgress func(jobs.Progress)) (*jobs.RevokeAllSummary, error) {
	a := &jobs.RevokeAllArgs{UserID: userID}
	if opts != nil {
		a.JobID, a.ExceptSessionIDs, a.LockUser = opts.JobID, opts.Except, opts.LockUser
	}
	_, sum, err := request[jobs.RevokeAllSummary](ctx, c, a, OnProgress(onProgress))
	return sum, err
}

// request is Request, and Clerk's answer in the result read as a T.
func request[T any](ctx context.Context, c *Client, a jobs.Args, opts ...RequestOption) (*Result, *T, error) {
	r, err := c.Request(ctx, a, opts...)
	if err != nil {
		return nil, nil, err
	}
	v := new(T)
	if err := json.Unmarshal(r.Result, v); err != nil {
		return nil, nil, fmt.Errorf("%s job %s: its result holds no answer of the expected shape: %w", r.Op, r.JobID, err)
	}
	return r, v, nil
}
