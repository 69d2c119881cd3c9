package clerkapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/clerkjobs/clerkjobs/internal/redact"
)

// SessionStatus is the state of a session.
type SessionStatus string

// The statuses a Session can have. ListParams.Status accepts all of them
// but StatusPending.
const (
	StatusActive    SessionStatus = "active"
	StatusRevoked   SessionStatus = "revoked"
	StatusEnded     SessionStatus = "ended"
	StatusExpired   SessionStatus = "expired"
	StatusRemoved   SessionStatus = "removed"
	StatusAbandoned SessionStatus = "abandoned"
	StatusReplaced  SessionStatus = "replaced"
	StatusPending   SessionStatus = "pending"
)

// Session is Clerk's Session object. Timestamps are Unix milliseconds;
// fields the API may send as null are pointers.
type Session struct {
	Object   string `json:"object"`
	ID       string `json:"id"`
	UserID   string `json:"user_id"`
	ClientID string `json:"client_id"`
	// Actor is the impersonator of an impersonation session (nil
	// otherwise), as Clerk sent it: free-form JSON, kept as it came, not
	// decoded into maps and slices, which made a large one (a proxy's)
	// take some 60 times its size in memory.
	Actor                    json.RawMessage  `json:"actor"`
	Status                   SessionStatus    `json:"status"`
	LastActiveOrganizationID *string          `json:"last_active_organization_id"`
	LastActiveAt             int64            `json:"last_active_at"`
	LatestActivity           *SessionActivity `json:"latest_activity,omitempty"`
	ExpireAt                 int64            `json:"expire_at"`
	AbandonAt                int64            `json:"abandon_at"`
	UpdatedAt                int64            `json:"updated_at"`
	CreatedAt                int64            `json:"created_at"`
	Tasks                    []SessionTask    `json:"tasks"`
}

// SessionActivity describes the device and location a session was last
// used from.
type SessionActivity struct {
	Object         string `json:"object"`
	ID             string `json:"id"`
	DeviceType     string `json:"device_type,omitempty"`
	IsMobile       bool   `json:"is_mobile"`
	BrowserName    string `json:"browser_name,omitempty"`
	BrowserVersion string `json:"browser_version,omitempty"`
	IPAddress      string `json:"ip_address,omitempty"`
	City           string `json:"city,omitempty"`
	Country        string `json:"country,omitempty"`
}

// SessionTask is a task the user must complete before the session becomes
// active (a pending session).
type SessionTask struct {
	Key string `json:"key"`
}

// SessionList is one page of sessions. TotalCount is set only by a
// paginated list (ListParams.Paginated); a plain list answers with a bare
// array and TotalCount stays -1.
type SessionList struct {
	Data       []Session `json:"data"`
	TotalCount int64     `json:"total_count"`
}

// Token is a session token: a signed JWT. Its JWT is a secret.
type Token struct {
	Object string `json:"object"`
	JWT    string `json:"jwt"`
}

// Cookies are the Set-Cookie directives a refresh answers with when asked
// for the cookie format. They are secrets.
type Cookies struct {
	Object  string   `json:"object"`
	Cookies []string `json:"cookies"`
}

// RefreshResult is the answer of RefreshSession: a Token or Cookies,
// depending on RefreshParams.Format. Exactly one is set.
type RefreshResult struct {
	Token   *Token
	Cookies *Cookies
}

// UnmarshalJSON tells the two shapes apart by their "object" field.
func (r *RefreshResult) UnmarshalJSON(b []byte) error {
	var probe struct {
		Object string `json:"object"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	switch probe.Object {
	case "cookies":
		r.Token, r.Cookies = nil, new(Cookies)
		return json.Unmarshal(b, r.Cookies)
	default:
		r.Token, r.Cookies = new(Token), nil
		return json.Unmarshal(b, r.Token)
	}
}

// MarshalJSON writes whichever shape is set.
func (r RefreshResult) MarshalJSON() ([]byte, error) {
	if r.Cookies != nil {
		return json.Marshal(r.Cookies)
	}
	return json.Marshal(r.Token)
}

// User is the part of Clerk's User object that locking concerns: who the
// user is and whether, and for how long, they cannot sign in. The answer's
// other fields (email addresses, metadata, …) are not decoded. Timestamps
// are Unix milliseconds; fields the API may send as null are pointers.
type User struct {
	Object     string  `json:"object"`
	ID         string  `json:"id"`
	ExternalID *string `json:"external_id"`
	// Locked is true while the user cannot sign in: locked with LockUser,
	// or by Clerk after too many failed sign-in attempts.
	Locked bool `json:"locked"`
	// LockoutExpiresInSeconds is how long the lock still holds, counted
	// from Clerk's answer. It is nil for a user who is not locked and for a
	// lock that never expires (the instance's "indefinite lockout").
	LockoutExpiresInSeconds *int64 `json:"lockout_expires_in_seconds"`
	// Banned users cannot sign in until unbanned; banning also revokes
	// their sessions (Clerk's BanUser, not offered by this client).
	Banned       bool   `json:"banned"`
	LastSignInAt *int64 `json:"last_sign_in_at"`
	CreatedAt    int64  `json:"created_at"`
	UpdatedAt    int64  `json:"updated_at"`
}

// LockedUntil says whether the user is locked and until when, counting
// LockoutExpiresInSeconds from received, the time the answer arrived (pass
// time.Now() right after the call). until is the zero time when the user
// is not locked and when the lock never expires: tell the two apart with
// locked.
func (u *User) LockedUntil(received time.Time) (until time.Time, locked bool) {
	if !u.Locked {
		return time.Time{}, false
	}
	if u.LockoutExpiresInSeconds == nil {
		return time.Time{}, true
	}
	// Clamped so that an absurd answer cannot overflow time.Duration
	// (about 292 years) into a time in the past.
	secs := min(max(*u.LockoutExpiresInSeconds, 0), int64(math.MaxInt64/time.Second))
	return received.Add(time.Duration(secs) * time.Second), true
}

// ListParams filters GetSessionList. Clerk expects at least one of
// ClientID and UserID.
type ListParams struct {
	ClientID string
	UserID   string
	Status   SessionStatus
	// Limit is the page size, 1 to 500; 0 means Clerk's default (10).
	Limit int
	// Offset skips that many sessions (newest first).
	Offset int
	// Paginated asks for {data, total_count} instead of a bare array.
	Paginated bool
}

// CreateParams are the body of createSession (testing instances only).
type CreateParams struct {
	UserID               string `json:"user_id"`
	ActiveOrganizationID string `json:"active_organization_id,omitempty"`
}

// RefreshFormat selects what RefreshSession answers with.
type RefreshFormat string

// Refresh formats.
const (
	FormatToken  RefreshFormat = "token"
	FormatCookie RefreshFormat = "cookie"
)

// RefreshParams are the body of RefreshSession. ExpiredToken, RefreshToken
// and RequestOrigin are required. ExpiredToken and RefreshToken are secrets.
// RequestHeaders maps each header name to its values: Clerk takes a list of
// strings ({"User-Agent": ["…"]}); a single string is sent as a list of one.
type RefreshParams struct {
	ExpiredToken         string         `json:"expired_token"`
	RefreshToken         string         `json:"refresh_token"`
	RequestOrigin        string         `json:"request_origin"`
	RequestHeaders       map[string]any `json:"request_headers,omitempty"`
	Format               RefreshFormat  `json:"format,omitempty"`
	RequestOriginatingIP string         `json:"request_originating_ip,omitempty"`
}

// secrets are the values of p that must never appear in an error.
func (p RefreshParams) secrets() []string {
	out := []string{p.ExpiredToken, p.RefreshToken}
	for _, v := range p.RequestHeaders {
		out = append(out, redact.Values(v)...)
	}
	return out
}

// TokenParams are the body of CreateSessionToken and
// CreateSessionTokenFromTemplate.
type TokenParams struct {
	// ExpiresInSeconds overrides the token lifetime: 30 to 315360000, or 0
	// for the instance's (or template's) default.
	ExpiresInSeconds int64
}

// Limits Clerk enforces, checked before any request is sent.
const (
	MinListLimit          = 1
	MaxListLimit          = 500
	MinTokenLifetimeSecs  = 30
	MaxTokenLifetimeSecs  = 315360000
	DefaultAPIVersion     = "2026-05-12"
	DefaultBaseURL        = "https://api.clerk.com/v1"
	defaultUserAgentValue = "clerkjobs-clerkapi/1"
)

// The check methods tell Clerk's answer from JSON that merely decodes (see
// call): each requires what every answer of its kind carries.

func (s *Session) check() error {
	// Clerk sends "actor": null for a session that is not an
	// impersonation: nil, as when the actor was a map, so that
	// s.Actor != nil still tells an impersonation (encoded as null all
	// the same).
	if string(s.Actor) == "null" {
		s.Actor = nil
	}
	// Kept as it came, bytes that are not UTF-8 would be written so into
	// results (not JSON to a strict reader): they are U+FFFD, as in every
	// string decoded. Such bytes can only be inside its strings.
	if !utf8.Valid(s.Actor) {
		s.Actor = bytes.ToValidUTF8(s.Actor, []byte("\uFFFD"))
	}
	return need(s.ID != "", "the answer is not a session: it has no id")
}

// redact clears every text of the session of secrets (the ones k holds and
// anything shaped like one): an upstream echoing the request into a 2xx
// answer would otherwise have the key stored in the job's result. The
// actor is cleared as the JSON it is; when a secret may hide behind JSON
// escapes in it (\u0073k_…), it is read and written back, and an actor
// that the clearing left unreadable is replaced whole.
func (s *Session) redact(k redact.Known) {
	for _, f := range []*string{&s.Object, &s.ID, &s.UserID, &s.ClientID, (*string)(&s.Status), s.LastActiveOrganizationID} {
		if f != nil {
			*f = k.Text(*f)
		}
	}
	if a := s.LatestActivity; a != nil {
		for _, f := range []*string{&a.Object, &a.ID, &a.DeviceType, &a.BrowserName, &a.BrowserVersion, &a.IPAddress, &a.City, &a.Country} {
			*f = k.Text(*f)
		}
	}
	for i := range s.Tasks {
		s.Tasks[i].Key = k.Text(s.Tasks[i].Key)
	}
	if len(s.Actor) == 0 {
		return
	}
	if bytes.IndexByte(s.Actor, '\\') >= 0 {
		var v any
		dec := json.NewDecoder(bytes.NewReader(s.Actor))
		dec.UseNumber() // a number written back as it came
		if dec.Decode(&v) == nil && redactStrings(&v, k) {
			s.Actor = json.RawMessage(`"` + redact.Placeholder + `"`)
			if b, err := json.Marshal(v); err == nil {
				s.Actor = b
			}
		}
	}
	if clean := k.Text(string(s.Actor)); clean != string(s.Actor) {
		s.Actor = json.RawMessage(clean)
		if !json.Valid(s.Actor) {
			s.Actor = json.RawMessage(`"` + redact.Placeholder + `"`)
		}
	}
}

// redactStrings clears every string in v (names of members too) of
// secrets, and reports whether it changed any.
func redactStrings(v *any, k redact.Known) bool {
	changed := false
	switch x := (*v).(type) {
	case string:
		if clean := k.Text(x); clean != x {
			*v, changed = clean, true
		}
	case []any:
		for i := range x {
			changed = redactStrings(&x[i], k) || changed
		}
	case map[string]any:
		for key, e := range x {
			if redactStrings(&e, k) {
				x[key], changed = e, true
			}
			if clean := k.Text(key); clean != key {
				delete(x, key)
				x[clean], changed = e, true
			}
		}
	}
	return changed
}

func (l *SessionList) redact(k redact.Known) {
	for i := range l.Data {
		l.Data[i].redact(k)
	}
}

func (u *User) redact(k redact.Known) {
	for _, f := range []*string{&u.Object, &u.ID, u.ExternalID} {
		if f != nil {
			*f = k.Text(*f)
		}
	}
}

// need is nil when ok holds, else the error why.
func need(ok bool, why string) error {
	if ok {
		return nil
	}
	return errors.New(why)
}

// check requires the data array (an empty one is a list of no sessions;
// none at all, as in "{}" or "null", is not a list) and a session in each
// of its entries: a list that decoded from anything else would say the
// user has no sessions, and a revoke_all would revoke none.
func (l *SessionList) check() error {
	if l.Data == nil {
		return errors.New("the answer is not a list of sessions: it has no data array")
	}
	for i := range l.Data {
		if err := l.Data[i].check(); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return nil
}

func (t *Token) check() error { return need(t.JWT != "", "the answer is not a token: it has no jwt") }

func (r *RefreshResult) check() error {
	switch {
	case r.Cookies != nil:
		// The spec sets no least number of cookies: an empty list is an
		// answer (and a refresh retried on it could spend the refresh
		// token); no list at all is not.
		return need(r.Cookies.Cookies != nil, "the answer has no cookies list")
	case r.Token != nil:
		return r.Token.check()
	}
	return errors.New("the answer is neither a token nor cookies")
}

func (u *User) check() error { return need(u.ID != "", "the answer is not a user: it has no id") }
