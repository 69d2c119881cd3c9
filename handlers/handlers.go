// Package handlers runs each type of session job against Clerk: it turns a
// job's typed arguments into clerkapi calls, and Clerk's answer into an
// Answer. It knows nothing of NATS; retries, rate limiting and
// dead-lettering are the worker's, wrapped around these handlers.
package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Answer is what a job produced: Clerk's answer to store and send, a
// secret for reply_to only, and what to do once it is recorded.
//
// Result and Secret hold any value encoding/json encodes (Clerk's typed
// answer, a struct of your own), or JSON already encoded as a
// json.RawMessage or []byte. The worker encodes them after Handle returns,
// into the result it stores and sends, so a handler must not change them
// afterwards. An answer that does not encode dead-letters the job as
// permanent, since running it again would only repeat the Clerk call.
// A token or refresh job must answer with a Secret and no Result; a
// Secret for a job without reply_to is dropped unread (and logged).
type Answer struct {
	// Result is the Clerk answer to store and reply with (nil for token
	// and refresh jobs).
	Result any
	// Secret is an answer that may only go to the job's reply_to: a token
	// or refresh cookies.
	Secret any
	// AlreadyRevoked: a revoke found the session no longer active.
	AlreadyRevoked bool
	// Done, if set, runs once the job's result is stored and the job acked:
	// cleanup that must not happen before (a revoke_all job's progress).
	Done func(ctx context.Context) error
}

// Handler runs one job. Its error is the Clerk error (classify it with
// clerkapi.ClassOf) or a wrapped context error.
type Handler interface {
	Handle(ctx context.Context, a jobs.Args) (Answer, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, a jobs.Args) (Answer, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, a jobs.Args) (Answer, error) { return f(ctx, a) }

// Sessions runs the single-call session jobs (every type but revoke_all)
// against a Clerk client.
type Sessions struct {
	Clerk clerkapi.Sessions
}

var _ Handler = Sessions{}

// Router sends revoke_all jobs to RevokeAll and every other job to
// Sessions.
type Router struct {
	Sessions  Sessions
	RevokeAll *RevokeAll
}

// Handle dispatches on the job's type.
func (r Router) Handle(ctx context.Context, a jobs.Args) (Answer, error) {
	if ra, ok := a.(*jobs.RevokeAllArgs); ok && r.RevokeAll != nil {
		return r.RevokeAll.Handle(ctx, ra)
	}
	return r.Sessions.Handle(ctx, a)
}

// ErrUnsupported is returned for a job type this handler does not run.
var ErrUnsupported = errors.New("job type not supported")

// Handle dispatches on the job's type.
func (h Sessions) Handle(ctx context.Context, a jobs.Args) (Answer, error) {
	switch a := a.(type) {
	case *jobs.ListArgs:
		list, err := h.Clerk.ListSessions(ctx, clerkapi.ListParams{
			UserID: a.UserID, ClientID: a.ClientID, Status: a.Status,
			Limit: a.Limit, Offset: a.Offset, Paginated: a.Paginated,
		})
		if err != nil {
			return Answer{}, err
		}
		return result(listResult(list), nil)
	case *jobs.CreateArgs:
		return result(h.Clerk.CreateSession(ctx, clerkapi.CreateParams{UserID: a.UserID, ActiveOrganizationID: a.ActiveOrganizationID}))
	case *jobs.GetArgs:
		return result(h.Clerk.GetSession(ctx, a.SessionID))
	case *jobs.RevokeArgs:
		return h.revoke(ctx, a.SessionID)
	case *jobs.RefreshArgs:
		return secret(h.Clerk.RefreshSession(ctx, a.SessionID, clerkapi.RefreshParams{
			ExpiredToken: a.ExpiredToken, RefreshToken: a.RefreshToken, RequestOrigin: a.RequestOrigin,
			RequestHeaders: a.RequestHeaders, Format: clerkapi.RefreshFormat(a.Format),
			RequestOriginatingIP: a.RequestOriginatingIP,
		}))
	case *jobs.TokenArgs:
		p := clerkapi.TokenParams{ExpiresInSeconds: a.ExpiresInSeconds}
		if a.TemplateName != "" {
			return secret(h.Clerk.CreateSessionTokenFromTemplate(ctx, a.SessionID, a.TemplateName, p))
		}
		return secret(h.Clerk.CreateSessionToken(ctx, a.SessionID, p))
	}
	return Answer{}, fmt.Errorf("%s: %w", a.Op(), ErrUnsupported)
}

// revoke treats a session that is no longer active as revoked: redelivered
// revoke jobs, and revoke jobs racing a sign-out, must succeed. Clerk does
// not document what revoking a revoked session answers; when it refuses with
// a 4xx other than 404, the session's status decides.
func (h Sessions) revoke(ctx context.Context, id string) (Answer, error) {
	s, err := h.Clerk.RevokeSession(ctx, id)
	if err == nil {
		if live(s.Status) {
			// Not revoked, whatever the 200 says: retried as any 2xx that
			// is not the answer asked for (revoking again is harmless).
			return Answer{}, fmt.Errorf("clerk RevokeSession: answered 200 with the session still %s", s.Status)
		}
		return Answer{Result: s}, nil
	}
	if apiErr, ok := errors.AsType[*clerkapi.Error](err); !ok || apiErr.Class() != clerkapi.Permanent || apiErr.StatusCode == 404 {
		return Answer{}, err
	}
	cur, getErr := h.Clerk.GetSession(ctx, id)
	if getErr != nil && clerkapi.ClassOf(getErr) != clerkapi.Permanent {
		return Answer{}, getErr // could not tell: retry rather than dead-letter
	}
	if getErr != nil || live(cur.Status) {
		return Answer{}, err
	}
	return Answer{Result: cur, AlreadyRevoked: true}, nil
}

// listResult is the stored form of a list: total_count only when known.
func listResult(l *clerkapi.SessionList) any {
	if l.TotalCount < 0 {
		return struct {
			Data []clerkapi.Session `json:"data"`
		}{l.Data}
	}
	return l
}

func result[T any](v T, err error) (Answer, error) {
	if err != nil {
		return Answer{}, err
	}
	return Answer{Result: v}, nil
}

func secret[T any](v T, err error) (Answer, error) {
	o, err := result(v, err)
	o.Secret, o.Result = o.Result, nil
	return o, err
}
