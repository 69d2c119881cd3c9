package clerkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/go-json-experiment/json/jsontext"
	answerjson "github.com/go-json-experiment/json/v1"
)

// Operation names, as in Clerk's OpenAPI description. They name the
// operation in errors and are what a Client reports to its Observer.
const (
	opList            = "GetSessionList"
	opCreate          = "createSession"
	opGet             = "GetSession"
	opRefresh         = "RefreshSession"
	opRevoke          = "RevokeSession"
	opToken           = "CreateSessionToken"
	opTokenFromTempl  = "CreateSessionTokenFromTemplate"
	opLockUser        = "LockUser"
	opUnlockUser      = "UnlockUser"
	maxResponseBytes  = 16 << 20
	defaultHTTPTimout = 30 * time.Second
)

// Sessions is the set of session operations. *Client implements it; code
// that calls Clerk should depend on this interface so that tests and
// middleware (rate limiting, metrics) can stand in between.
type Sessions interface {
	ListSessions(ctx context.Context, p ListParams) (*SessionList, error)
	CreateSession(ctx context.Context, p CreateParams) (*Session, error)
	GetSession(ctx context.Context, sessionID string) (*Session, error)
	RefreshSession(ctx context.Context, sessionID string, p RefreshParams) (*RefreshResult, error)
	RevokeSession(ctx context.Context, sessionID string) (*Session, error)
	CreateSessionToken(ctx context.Context, sessionID string, p TokenParams) (*Token, error)
	CreateSessionTokenFromTemplate(ctx context.Context, sessionID, templateName string, p TokenParams) (*Token, error)
}

// Users is the set of user operations: locking a user so that nobody can
// sign in as them, and unlocking. *Client implements it. It is separate
// from Sessions so that code that only handles sessions does not have to
// offer it, and code that locks users can be handed just this.
type Users interface {
	LockUser(ctx context.Context, userID string) (*User, error)
	UnlockUser(ctx context.Context, userID string) (*User, error)
}

var (
	_ Sessions = (*Client)(nil)
	_ Users    = (*Client)(nil)
)

// Client calls Clerk's Backend API. It is safe for concurrent use. Create
// it with New.
type Client struct {
	secretKey  *secret
	baseURL    *url.URL
	http       *http.Client
	apiVersion string
	userAgent  string
	tracer     trace.Tracer // nil: no spans (WithTracerProvider)
}

// secret holds the key behind a pointer. fmt prints a pointer nested in a
// value as an address, so not even a dereferenced Client (fmt.Sprint(*c))
// or a struct holding a Client by value can print the key.
type secret struct {
	key     string
	headers [2]http.Header // requestHeaders, built once by New
	known   redact.Known   // the key prepared for clearing answers, by New
}

// Option configures a Client.
type Option func(*Client) error

// WithSecretKey sets the secret key (sk_live_..., sk_test_...) sent as the
// bearer token. Required.
func WithSecretKey(key string) Option {
	return func(c *Client) error {
		c.secretKey = &secret{key: strings.TrimSpace(key)}
		return nil
	}
}

// WithBaseURL sets the API root, including the /v1 path. The default is
// https://api.clerk.com/v1.
func WithBaseURL(raw string) Option {
	return func(c *Client) error {
		u, err := url.Parse(strings.TrimRight(raw, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not quoted as given: a proxy's credentials may be in it.
			return fmt.Errorf("clerkapi: base URL %q must be an absolute http(s) URL such as %s", redact.URLs(raw), DefaultBaseURL)
		}
		if !strings.HasSuffix(u.Path, "/v1") {
			// Clerk answers 404 at every path outside /v1, as it does for a
			// session that does not exist: every job would be dead-lettered
			// as permanent, and the circuit's probe would take the 404 for
			// proof that all is well.
			return fmt.Errorf("clerkapi: base URL %q does not end in /v1, the path of Clerk's Backend API (%s; the emulator's is http://HOST:PORT/v1): write the URL with it", redact.URLs(raw), DefaultBaseURL)
		}
		c.baseURL = u
		return nil
	}
}

// WithHTTPClient sets the HTTP client; its CheckRedirect is not used, as
// the Client never follows a redirect. The default has a 30 s timeout and
// keeps up to 4096 idle connections to Clerk (net/http's
// default keeps 2: a client making more calls at once would open, and
// leave in TIME_WAIT, a new connection for almost every call).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error {
		if h == nil {
			return errors.New("clerkapi: nil *http.Client")
		}
		c.http = h
		return nil
	}
}

// WithAPIVersion sets the Clerk-API-Version header. The default is
// DefaultAPIVersion.
func WithAPIVersion(v string) Option {
	return func(c *Client) error {
		if _, err := time.Parse("2006-01-02", v); err != nil {
			return fmt.Errorf("clerkapi: API version %q must be a date such as %s", shownArg(v), DefaultAPIVersion)
		}
		c.apiVersion = v
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// maxIdleConnsPerHost is how many idle keep-alive connections the default
// HTTP client keeps to the API host: as many as the worker's largest
// concurrency, so that every call in flight can reuse one. Idle connections
// close after 90 s (net/http's IdleConnTimeout).
const maxIdleConnsPerHost = 4096

// defaultTransport is http.DefaultTransport (proxy from the environment,
// dial and TLS timeouts, HTTP/2) keeping enough idle connections. It is
// shared by every Client built without WithHTTPClient, as
// http.DefaultTransport would be.
var defaultTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdleConnsPerHost
	t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	return t
}()

// New returns a Client. It fails when no secret key is given or an option
// is invalid.
func New(opts ...Option) (*Client, error) {
	base, _ := url.Parse(DefaultBaseURL)
	c := &Client{
		baseURL:    base,
		http:       &http.Client{Timeout: defaultHTTPTimout, Transport: defaultTransport},
		apiVersion: DefaultAPIVersion,
		userAgent:  defaultUserAgentValue,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.secretKey == nil || c.secretKey.key == "" {
		return nil, errors.New("clerkapi: a secret key is required (WithSecretKey; CLERK_SECRET_KEY in the worker)")
	}
	if strings.HasPrefix(c.secretKey.key, "sk_live_") && c.baseURL.Scheme == "http" && !loopback(c.baseURL.Hostname()) {
		// A production key in clear on the network: the emulator (a test
		// key's place) or a proxy meant to be https, set by mistake.
		return nil, fmt.Errorf("clerkapi: a live secret key (sk_live_…) goes only over https, or plain http to this machine (a TLS proxy on 127.0.0.1): the base URL is http://%s; use https, or a test key (sk_test_…) with the emulator",
			redact.URLs(c.baseURL.Host))
	}
	// Clerk's API does not redirect. Following one would send the request
	// elsewhere: net/http drops the key for another host, but repeats the
	// body of a 307 or 308 (a refresh job's tokens), keeps the key for the
	// same host on another port or over plain http, and takes whatever
	// answers there for Clerk's answer. A copy, so that a client passed to
	// WithHTTPClient is left as it was.
	h := *c.http
	// Returned as the answer, a redirect is an *Error with its 3xx status.
	h.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &h
	c.secretKey.headers = c.requestHeaders()
	c.secretKey.known = redact.Prepare(c.secretKey.key)
	return c, nil
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String never shows the secret key, nor credentials in the base URL (a
// proxy's), so a Client can be logged or printed with %v safely.
func (c *Client) String() string {
	return fmt.Sprintf("clerkapi.Client{base: %s, version: %s, key: %s}", redact.URLs(c.baseURL.String()), c.apiVersion, redactKey(c.secretKey.key))
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// redactKey keeps only the key's environment prefix (sk_live, sk_test).
func redactKey(k string) string {
	if i := strings.LastIndexByte(k, '_'); i > 0 && i < 16 {
		return k[:i] + "_[REDACTED]"
	}
	return "[REDACTED]"
}

// isID reports whether id is a Clerk object id, ^[a-z]+_[A-Za-z0-9]+$ (a
// prefix, an underscore and base62), without the regexp engine. Validating
// ids keeps a crafted one ("../users", "a/b?x") from reaching another path.
func isID(id string) bool {
	prefix, rest, ok := strings.Cut(id, "_")
	return ok && prefix != "" && rest != "" &&
		!strings.ContainsFunc(prefix, func(r rune) bool { return r < 'a' || r > 'z' }) &&
		!strings.ContainsFunc(rest, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') })
}

// templatePattern is what Clerk allows as a JWT template name.
var templatePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// checkID refuses an id, which kind names, that is not a Clerk id.
func checkID(op, kind, id string) error {
	if id == "" {
		return invalid(op, "%s is empty", kind)
	}
	if len(id) > 128 || !isID(id) {
		return invalid(op, "%s %q is not a Clerk id (prefix_base62)", kind, shownArg(id))
	}
	return nil
}

// invalid is the error of a call refused before it is sent: an argument is
// wrong (ErrInvalidInput), as the format says.
func invalid(op, format string, args ...any) error {
	return fmt.Errorf("clerk %s: %s: %w", op, fmt.Sprintf(format, args...), ErrInvalidInput)
}

// shownArg is a refused argument as its error quotes it. A secret passed
// by mistake (the key or a token instead of an id) is hidden: errors are
// logged. Redacted before the cut, so that no piece of one is left.
func shownArg(s string) string { return text.Truncate(redact.Text(s), 64) }

// ListSessions calls GetSessionList. A bare-array answer gives a list whose
// TotalCount is -1.
func (c *Client) ListSessions(ctx context.Context, p ListParams) (*SessionList, error) {
	q := url.Values{}
	for _, f := range []struct{ name, id string }{{"client_id", p.ClientID}, {"user_id", p.UserID}} {
		if f.id == "" {
			continue
		}
		if err := checkID(opList, f.name, f.id); err != nil {
			return nil, err
		}
		q.Set(f.name, f.id)
	}
	if p.ClientID == "" && p.UserID == "" {
		return nil, invalid(opList, "give client_id or user_id")
	}
	if p.Status != "" {
		switch p.Status {
		case StatusActive, StatusRevoked, StatusEnded, StatusExpired, StatusRemoved, StatusAbandoned, StatusReplaced:
		default:
			return nil, invalid(opList, "status %q is not one of active, revoked, ended, expired, removed, abandoned, replaced", shownArg(string(p.Status)))
		}
		q.Set("status", string(p.Status))
	}
	if p.Limit != 0 {
		if p.Limit < MinListLimit || p.Limit > MaxListLimit {
			return nil, invalid(opList, "limit %d is outside %d..%d", p.Limit, MinListLimit, MaxListLimit)
		}
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Offset < 0 {
		return nil, invalid(opList, "offset %d is negative", p.Offset)
	}
	if p.Offset > 0 {
		q.Set("offset", strconv.Itoa(p.Offset))
	}
	if p.Paginated {
		q.Set("paginated", "true")
	}
	body, err := c.do(ctx, opList, http.MethodGet, "/sessions", q, nil)
	if err != nil {
		return nil, err
	}
	list := &SessionList{TotalCount: -1}
	var into any = list
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		into, body = &list.Data, trimmed
	}
	if err = checkArrays(body); err == nil {
		err = decodeAnswer(body, into)
	}
	if err == nil {
		err = list.check()
	}
	if err != nil {
		return nil, decodeErr(opList, err)
	}
	list.redact(c.secretKey.known)
	return list, nil
}

// checkArrays refuses an answer holding an array of more than
// MaxListLimit entries, before it is decoded: no answer of Clerk's holds
// one (a page holds at most 500 sessions, a session a few tasks, a
// refresh a few cookies), while an answer of up to maxResponseBytes made
// of tiny entries ({} repeated) decoded to millions of sessions, tasks or
// cookies, gigabytes for one call. With every array so bounded, what an
// answer decodes to is too. The answer is read in place, token by token,
// nothing decoded. An answer that is not valid JSON passes, for
// decodeAnswer to report.
func checkArrays(body []byte) error {
	// In place (a bytes.Buffer is not copied), as leniently as
	// encoding/json.
	dec := jsontext.NewDecoder(bytes.NewBuffer(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	// The entries so far of each array open, the innermost last; -1 for an
	// object.
	var open []int
	for {
		kind := dec.PeekKind()
		if kind == 0 {
			return nil // the end, or not JSON
		}
		if n := len(open); n > 0 && open[n-1] >= 0 && kind != ']' {
			if open[n-1]++; open[n-1] > MaxListLimit {
				return fmt.Errorf("the answer holds a list of more than %d entries, more than any of Clerk's answers (a page holds at most %d sessions)", MaxListLimit, MaxListLimit)
			}
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return nil
		}
		switch tok.Kind() {
		case '[':
			open = append(open, 0)
		case '{':
			open = append(open, -1)
		case ']', '}':
			open = open[:len(open)-1]
		}
	}
}

// minCheckedAnswer is the size from which a single object's answer goes
// through checkArrays: a smaller one decodes to little whatever it holds,
// and Clerk's sessions, tokens and users are a few kilobytes.
const minCheckedAnswer = 64 << 10

// CreateSession calls createSession. Clerk offers it on testing instances
// only.
func (c *Client) CreateSession(ctx context.Context, p CreateParams) (*Session, error) {
	err := checkID(opCreate, "user_id", p.UserID)
	if err == nil && p.ActiveOrganizationID != "" {
		err = checkID(opCreate, "active_organization_id", p.ActiveOrganizationID)
	}
	if err != nil {
		return nil, err
	}
	return call[Session](ctx, c, opCreate, http.MethodPost, "/sessions", nil, p)
}

// GetSession calls GetSession.
func (c *Client) GetSession(ctx context.Context, sessionID string) (*Session, error) {
	return c.sessionByID(ctx, opGet, http.MethodGet, sessionID, "/sessions/"+sessionID)
}

// RefreshSession calls RefreshSession. Its validation failures are 401s
// with session_refresh_* codes, which ClassOf reports as Permanent.
func (c *Client) RefreshSession(ctx context.Context, sessionID string, p RefreshParams) (*RefreshResult, error) {
	if err := checkID(opRefresh, "session_id", sessionID); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{
		{"expired_token", p.ExpiredToken}, {"refresh_token", p.RefreshToken}, {"request_origin", p.RequestOrigin},
	} {
		if strings.TrimSpace(f.v) == "" {
			return nil, invalid(opRefresh, "%s is required", f.name)
		}
	}
	switch p.Format {
	case "", FormatToken, FormatCookie:
	default:
		return nil, invalid(opRefresh, "format %q is not token or cookie", shownArg(string(p.Format)))
	}
	p.RequestHeaders = headerLists(p.RequestHeaders)
	return call[RefreshResult](ctx, c, opRefresh, http.MethodPost, "/sessions/"+sessionID+"/refresh", nil, p)
}

// headerLists is h with every string value made a one-element list: Clerk
// reads request_headers as a map of header names to lists of values
// (Record<string, string[]>, as its backend SDK sends them), and refuses a
// bare string, which is how a header is most often written. Other values
// are sent as they are (Clerk judges them). h itself is left as it was.
func headerLists(h map[string]any) map[string]any {
	if len(h) == 0 {
		return h
	}
	out := make(map[string]any, len(h))
	for k, v := range h {
		if s, ok := v.(string); ok {
			v = []string{s}
		}
		out[k] = v
	}
	return out
}

// RevokeSession calls RevokeSession. The answer is the session with status
// revoked.
func (c *Client) RevokeSession(ctx context.Context, sessionID string) (*Session, error) {
	return c.sessionByID(ctx, opRevoke, http.MethodPost, sessionID, "/sessions/"+sessionID+"/revoke")
}

// sessionByID sends an operation about one session and requires the
// answer to be that session: another one (a proxy's cache keyed wrongly)
// would make a revoke succeed, or a refused revoke read as already done,
// while the session asked for stays active. Such an answer is a decode
// error, Retryable as any 2xx that is not the answer asked for.
func (c *Client) sessionByID(ctx context.Context, op, method, sessionID, path string) (*Session, error) {
	s, err := callByID[Session](ctx, c, op, method, "session_id", sessionID, path)
	if err == nil && s.ID != sessionID {
		// sessionID passed checkID: a Clerk id, safe to quote; the
		// answer's id is untrusted text and is not.
		return nil, decodeErr(op, fmt.Errorf("the answer is about another session than %s", sessionID))
	}
	return s, err
}

// CreateSessionToken calls CreateSessionToken. The JWT is a secret.
func (c *Client) CreateSessionToken(ctx context.Context, sessionID string, p TokenParams) (*Token, error) {
	return c.createToken(ctx, opToken, sessionID, "", p)
}

// CreateSessionTokenFromTemplate calls CreateSessionTokenFromTemplate. An
// unknown template is a 404 (Permanent). The JWT is a secret.
func (c *Client) CreateSessionTokenFromTemplate(ctx context.Context, sessionID, templateName string, p TokenParams) (*Token, error) {
	return c.createToken(ctx, opTokenFromTempl, sessionID, templateName, p)
}

// createToken checks the arguments of either token operation and sends it;
// templateName is opTokenFromTempl's.
func (c *Client) createToken(ctx context.Context, op, sessionID, templateName string, p TokenParams) (*Token, error) {
	if err := checkID(op, "session_id", sessionID); err != nil {
		return nil, err
	}
	path := "/sessions/" + sessionID + "/tokens"
	if op == opTokenFromTempl {
		if !templatePattern.MatchString(templateName) {
			return nil, invalid(op, "template_name %q must be 1-128 letters, digits, '_' or '-'", shownArg(templateName))
		}
		path += "/" + url.PathEscape(templateName)
	}
	if n := p.ExpiresInSeconds; n != 0 && (n < MinTokenLifetimeSecs || n > MaxTokenLifetimeSecs) {
		return nil, invalid(op, "expires_in_seconds %d is outside %d..%d", n, MinTokenLifetimeSecs, MaxTokenLifetimeSecs)
	}
	// 0 leaves it out: the body is {}, and the lifetime the default.
	body := struct {
		ExpiresInSeconds int64 `json:"expires_in_seconds,omitempty"`
	}{p.ExpiresInSeconds}
	return call[Token](ctx, c, op, http.MethodPost, path, nil, body)
}

// LockUser calls LockUser: until the lock ends, nobody can sign in as the
// user (a sign-in is refused with the code user_locked, which ClassOf
// reports as Permanent). Sessions that exist already stay active: to
// contain an account takeover, lock first and then revoke them, so that no
// new session can appear meanwhile.
//
// The lock ends on its own after the instance's lockout duration (one hour
// unless changed in the Clerk dashboard's Attack protection settings, where
// it can also be made indefinite) or when UnlockUser is called. The answer
// says how long it holds: see User.LockedUntil.
//
// Clerk answers 403 when the instance's settings do not allow locking
// (user lockout disabled). ClassOf reports that 403 as Permanent, not
// Systemic: Clerk accepted the key, and only this operation is refused, so
// it is no reason to stop calls that would succeed.
func (c *Client) LockUser(ctx context.Context, userID string) (*User, error) {
	return callByID[User](ctx, c, opLockUser, http.MethodPost, "user_id", userID, "/users/"+userID+"/lock")
}

// UnlockUser calls UnlockUser: the user may sign in again at once. Clerk's
// description lists no error for a user who is not locked (the emulator
// answers 200 and changes nothing). A 403 is Permanent, as for LockUser.
func (c *Client) UnlockUser(ctx context.Context, userID string) (*User, error) {
	return callByID[User](ctx, c, opUnlockUser, http.MethodPost, "user_id", userID, "/users/"+userID+"/unlock")
}

// call sends one request and decodes a 2xx answer into a T.
func call[T any](ctx context.Context, c *Client, op, method, path string, q url.Values, in any) (*T, error) {
	body, err := c.do(ctx, op, method, path, q, in)
	if err != nil {
		return nil, err
	}
	v := new(T)
	if len(body) >= minCheckedAnswer {
		err = checkArrays(body)
	}
	if err == nil {
		err = decodeAnswer(body, v)
	}
	// JSON that is not the object asked for ("null", "{}", a proxy's own
	// 200) decodes without error into an empty value: taken as Clerk's
	// answer, it made a revoke succeed without a session and a token job
	// deliver an empty token.
	if c, ok := any(v).(interface{ check() error }); ok && err == nil {
		err = c.check()
	}
	if err != nil {
		return nil, unconfirmed(op, decodeErr(op, err))
	}
	// A session or a user is stored and shown (a job's result): what an
	// upstream echoed into one (the Authorization header as a browser
	// name, in the actor) is taken out. A token or cookies are the secret
	// asked for, and are left whole.
	if r, ok := any(v).(interface{ redact(redact.Known) }); ok {
		r.redact(c.answerSecrets(in))
	}
	return v, nil
}

// callByID is call for an operation whose one argument is the id in its
// path: kind names the id in the error that refuses it.
func callByID[T any](ctx context.Context, c *Client, op, method, kind, id, path string) (*T, error) {
	if err := checkID(op, kind, id); err != nil {
		return nil, err
	}
	return call[T](ctx, c, op, method, path, nil, nil)
}

// unconfirmed marks the error of a createSession or a RefreshSession that
// Clerk answered 2xx (a body that is not the answer, or one that broke
// off), or that was sent and never answered: Clerk may have carried it
// out, so it is ErrUnconfirmed, not to be retried into a second session
// or a second use of the refresh token. Any other op's error is returned
// as it is.
func unconfirmed(op string, err error) error {
	if !unrepeatable(op) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, ErrUnconfirmed)
}

// unrepeatable reports whether op must not be sent again once Clerk may
// have carried it out: a create makes another session, a refresh spends
// its refresh token.
func unrepeatable(op string) bool { return op == opCreate || op == opRefresh }

// decodeAnswer reads a 2xx body into v with encoding/json's rules, run by
// the implementation Go's encoding/json becomes under GOEXPERIMENT=jsonv2
// (go-json-experiment/json/v1). Reading a Session that way takes 2.2 µs
// and 2 allocations against 5.0 µs and 21: Clerk's answer is the largest
// JSON a worker reads for each job. Requests are still encoded with
// encoding/json, because that implementation writes an encoding/json.Number
// (a number in a refresh job's request_headers) as a string.
//
// A body it cannot read is read again by encoding/json, into a value set
// back to zero, and fails with encoding/json's own error: the other
// implementation's errors are other types (in a build without
// GOEXPERIMENT=jsonv2) and other texts, and name the path down into a
// map with the body's own keys, of any length, where encoding/json's name
// the struct field. Only a failed answer pays for the second reading.
func decodeAnswer(body []byte, v any) error {
	err := answerjson.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero() // every caller passes a non-nil pointer
	return json.Unmarshal(body, v)
}

// decodeErr reports a 2xx body that is not the expected JSON. It is
// Retryable (ClassOf's default): a proxy or a truncated answer, not the
// request's fault. A create's is also ErrUnconfirmed (see unconfirmed).
func decodeErr(op string, err error) error {
	return fmt.Errorf("clerk %s: decode answer: %w", op, err)
}

// requestSecrets are what an answer to a request with body in may echo:
// the key and the request's own secrets. redact.Text finds each also as
// the JSON body wrote it, and that escaped again (percent-encoded,
// Go-quoted, base64).
func (c *Client) requestSecrets(in any) []string {
	out := []string{c.secretKey.key}
	if sc, ok := in.(interface{ secrets() []string }); ok {
		out = append(out, sc.secrets()...)
	}
	return out
}

// answerSecrets are requestSecrets prepared for clearing an answer's
// fields, or an error answer's: the key's alone are prepared once, by New.
func (c *Client) answerSecrets(in any) redact.Known {
	if _, ok := in.(interface{ secrets() []string }); ok {
		return redact.Prepare(c.requestSecrets(in)...)
	}
	return c.secretKey.known
}

// do sends one request and returns the body of a 2xx answer, or an *Error.
func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, in any) (_ []byte, err error) {
	var resp *http.Response
	// Whatever answers may echo the request (a proxy quoting the
	// Authorization header, Clerk quoting a token), in its body or its
	// headers: the key and the request's own secrets never leave in an
	// error or a span.
	secrets := func() []string { return c.requestSecrets(in) }
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.startSpan(ctx, op, method, path)
		defer func() { endSpan(span, resp, err, secrets) }()
	}
	u := *c.baseURL
	u.Path = c.baseURL.Path + path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("clerk %s: encode request: %w", op, err)
		}
		body = bytes.NewReader(b)
	} else if method == http.MethodPost {
		body = strings.NewReader("null")
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("clerk %s: %w", op, err)
	}
	if body != nil {
		req.Header = c.secretKey.headers[1].Clone()
	} else {
		req.Header = c.secretKey.headers[0].Clone()
	}
	// A create or a refresh whose request went out whole may have been
	// carried out whatever becomes of its answer (a connection dropped or
	// timed out before it came): sent again, it could create a second
	// session, or send a spent refresh token again.
	var sent atomic.Bool
	if unrepeatable(op) {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) },
		}))
	}
	resp, err = c.http.Do(req)
	if err != nil {
		err = fmt.Errorf("clerk %s: %w", op, scrubURLError(err, secrets()...))
		if sent.Load() {
			return nil, unconfirmed(op, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp.Body, resp.ContentLength)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The status and headers came whole: they decide the class and the
		// Retry-After even when the body broke off (what came is parsed,
		// as any body that is not Clerk's JSON).
		apiErr := parseError(op, resp.StatusCode, resp.Header, b, c.answerSecrets(in))
		if apiErr.unconfirmed() {
			return nil, unconfirmed(op, apiErr)
		}
		return nil, apiErr
	}
	if err != nil {
		// The status said 2xx: Clerk carried the call out, whatever
		// became of the body (a create is not sent again).
		return nil, unconfirmed(op, fmt.Errorf("clerk %s: read answer: %w", op, err))
	}
	return b, nil
}

// requestHeaders are the headers of every request, without and with a
// JSON body (Content-Type); each request gets a copy.
func (c *Client) requestHeaders() [2]http.Header {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.secretKey.key)
	h.Set("Clerk-API-Version", c.apiVersion)
	h.Set("Accept", "application/json")
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	withBody := h.Clone()
	withBody.Set("Content-Type", "application/json")
	return [2]http.Header{h, withBody}
}

// readBody is io.ReadAll(io.LimitReader(r, maxResponseBytes)), sized from
// the answer's Content-Length when it gives one, instead of growing from
// 512 bytes.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	if contentLength <= 0 || contentLength >= maxResponseBytes {
		return io.ReadAll(io.LimitReader(r, maxResponseBytes))
	}
	r = io.LimitReader(r, maxResponseBytes)
	// One byte more than announced, so that reading the end of the body
	// needs no second buffer; but no more than maxPrealloc before the bytes
	// come: an answer announcing 16 MiB and sending nothing would otherwise
	// hold 16 MiB per call in flight.
	b := make([]byte, 0, min(contentLength, maxPrealloc)+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than announced: grow as ReadAll does
		}
	}
}

// maxPrealloc bounds what readBody reserves on the word of Content-Length
// alone: more than a list of 500 sessions.
const maxPrealloc = 1 << 20

// scrubURLError drops the query string from a *url.Error: list filters are
// not secret, but keeping errors to method and path keeps them short and
// free of anything a future parameter might carry. It also hides the base
// URL's user information (net/http hides a password there, but shows a
// token given as the user, https://TOKEN@proxy/v1, as it is) and anything
// shaped like a secret. The transport's own error quotes what the server
// sent ("malformed MIME header line: %q"): an upstream echoing the request
// there shows the key or the request's secrets (secrets), which are taken
// out of its text.
func scrubURLError(err error, secrets ...string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			ue.URL = u.String()
		}
		// The path holds the call's ids and template name, which may be
		// a secret passed by mistake (a key is a valid template name).
		ue.URL = redact.Text(redact.URLs(ue.URL))
		if ue.Err != nil {
			if clean := redact.Text(ue.Err.Error(), secrets...); clean != ue.Err.Error() {
				ue.Err = &redactedError{text: clean, err: ue.Err}
			}
		}
	}
	return err
}

// redactedError is err with its text cleared of secrets. It unwraps to
// err and reports its Timeout, so that the class of the failure and a
// span's error.type stay those of err.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }
func (e *redactedError) Timeout() bool {
	t, ok := e.err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}
