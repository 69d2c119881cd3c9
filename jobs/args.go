package jobs

import (
	"encoding/json"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// Args is a job's typed arguments. Each job type has its own Args type; its
// JSON form is the message body, described by schemas/<op>.json.
type Args interface {
	// Op is the job type.
	Op() Op
	// CommonFields returns the fields every job may carry.
	CommonFields() *Common
}

// Common are the optional fields of every job.
type Common struct {
	// JobID names the job in results, dead letters and logs. When empty,
	// the worker uses the Nats-Msg-Id header, else "seq-<stream sequence>".
	JobID string `json:"job_id,omitempty"`
	// ReplyTo is a NATS subject that also receives the result. Required
	// for token and refresh jobs, whose answer is sent nowhere else.
	ReplyTo string `json:"reply_to,omitempty"`
}

// CommonFields implements Args for every type that embeds Common.
func (c *Common) CommonFields() *Common { return c }

// ListArgs lists sessions of a user or client (GetSessionList).
type ListArgs struct {
	Common
	UserID    string                 `json:"user_id,omitempty"`
	ClientID  string                 `json:"client_id,omitempty"`
	Status    clerkapi.SessionStatus `json:"status,omitempty"`
	Limit     int                    `json:"limit,omitempty"`
	Offset    int                    `json:"offset,omitempty"`
	Paginated bool                   `json:"paginated,omitempty"`
}

// CreateArgs creates an active session for a user (createSession; Clerk
// testing instances only).
type CreateArgs struct {
	Common
	UserID               string `json:"user_id"`
	ActiveOrganizationID string `json:"active_organization_id,omitempty"`
}

// GetArgs retrieves a session (GetSession).
type GetArgs struct {
	Common
	SessionID string `json:"session_id"`
}

// RefreshArgs refreshes a session (RefreshSession). ExpiredToken,
// RefreshToken and RequestHeaders are secrets; the answer goes to ReplyTo
// only.
type RefreshArgs struct {
	Common
	SessionID            string         `json:"session_id"`
	ExpiredToken         string         `json:"expired_token"`
	RefreshToken         string         `json:"refresh_token"`
	RequestOrigin        string         `json:"request_origin"`
	RequestHeaders       map[string]any `json:"request_headers,omitempty"`
	Format               string         `json:"format,omitempty"`
	RequestOriginatingIP string         `json:"request_originating_ip,omitempty"`
}

// RevokeArgs revokes a session (RevokeSession). Revoking a session that is
// no longer active succeeds.
type RevokeArgs struct {
	Common
	SessionID string `json:"session_id"`
}

// TokenArgs creates a session token (CreateSessionToken), or one from a JWT
// template when TemplateName is set (CreateSessionTokenFromTemplate). The
// token goes to ReplyTo only.
type TokenArgs struct {
	Common
	SessionID        string `json:"session_id"`
	TemplateName     string `json:"template_name,omitempty"`
	ExpiresInSeconds int64  `json:"expires_in_seconds,omitempty"`
}

// RevokeAllArgs revokes every active session of a user except the listed
// ones.
type RevokeAllArgs struct {
	Common
	UserID           string   `json:"user_id"`
	ExceptSessionIDs []string `json:"except_session_ids,omitempty"`
	// LockUser locks the user in Clerk before anything is revoked, so that
	// no session can appear while the job runs: an account takeover is
	// contained in one job. The lock ends on its own after the instance's
	// lockout duration (RevokeAllSummary.LockedUntil); unlock in the Clerk
	// dashboard once the credentials are reset. A lock Clerk refuses for
	// good (403: the instance does not allow locking) does not stop the
	// revoke: every session is revoked, and the job then fails (a
	// permanent dead letter) saying that the user is not locked.
	LockUser bool `json:"lock_user,omitempty"`
}

// Op implementations.
func (*ListArgs) Op() Op      { return OpList }
func (*CreateArgs) Op() Op    { return OpCreate }
func (*GetArgs) Op() Op       { return OpGet }
func (*RefreshArgs) Op() Op   { return OpRefresh }
func (*RevokeArgs) Op() Op    { return OpRevoke }
func (*TokenArgs) Op() Op     { return OpToken }
func (*RevokeAllArgs) Op() Op { return OpRevokeAll }

// newArgs returns an empty Args of op's type.
func newArgs(o Op) Args {
	switch o {
	case OpList:
		return new(ListArgs)
	case OpCreate:
		return new(CreateArgs)
	case OpGet:
		return new(GetArgs)
	case OpRefresh:
		return new(RefreshArgs)
	case OpRevoke:
		return new(RevokeArgs)
	case OpToken:
		return new(TokenArgs)
	case OpRevokeAll:
		return new(RevokeAllArgs)
	}
	return nil
}

// Secret reports whether a job's answer is a secret that may be sent only
// to its reply_to.
func (o Op) Secret() bool { return o == OpToken || o == OpRefresh }

// Encode is the JSON body of a job.
func Encode(a Args) ([]byte, error) { return json.Marshal(a) }
