package emulator

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// Operation ids, as in Clerk's OpenAPI description.
const (
	OpGetJWKS                        = "GetJWKS"
	OpGetSessionList                 = "GetSessionList"
	OpCreateSession                  = "createSession"
	OpGetSession                     = "GetSession"
	OpRefreshSession                 = "RefreshSession"
	OpRevokeSession                  = "RevokeSession"
	OpCreateSessionToken             = "CreateSessionToken"
	OpCreateSessionTokenFromTemplate = "CreateSessionTokenFromTemplate"
	OpLockUser                       = "LockUser"
	OpUnlockUser                     = "UnlockUser"
)

// MaxBodyBytes is the largest request body accepted; larger ones get 413
// request_body_too_large.
const MaxBodyBytes = 1 << 20

// StatusClientClosedRequest is the status logged for a call whose client
// went away during injected latency (nginx's 499). It is never sent.
const StatusClientClosedRequest = 499

// knownAPIVersions are the Clerk-API-Version values accepted.
var knownAPIVersions = map[string]bool{
	"2021-02-05": true, "2024-10-01": true, "2025-04-10": true, "2025-11-10": true, "2026-05-12": true,
}

// ServeHTTP serves the Clerk API under /v1/ and the control API under
// /_emulator/. Anything else is 404 with a Clerk errors body.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case p == "/v1" || strings.HasPrefix(p, "/v1/"):
		e.serveAPI(w, r, p[len("/v1"):])
	case p == controlPrefix || strings.HasPrefix(p, controlPrefix+"/"):
		e.serveControl(w, r, p[len(controlPrefix):])
	default:
		e.write(w, e.notFound("The path "+r.URL.Path+" is not part of the Clerk API, which lives under /v1/."))
	}
}

// route is a matched API path.
type route struct {
	op        string
	sessionID string
	userID    string
	template  string
	allow     string // the methods the path accepts; "" for an unknown path
	handle    func(*Emulator, *http.Request, route, keyInfo) reply
}

// matchAPI routes a path below /v1 (still escaped). handle is nil when the
// path is unknown or the method is not allowed.
func matchAPI(method, escaped string) route {
	parts, ok := splitPath(strings.TrimPrefix(escaped, "/"))
	if !ok {
		return route{}
	}
	one := func(m, op string, h func(*Emulator, *http.Request, route, keyInfo) reply, rt route) route {
		rt.op, rt.allow = op, m
		if method == m {
			rt.handle = h
		}
		return rt
	}
	switch {
	case len(parts) == 1 && parts[0] == "jwks":
		return one(http.MethodGet, OpGetJWKS, (*Emulator).handleJWKS, route{})
	case len(parts) == 1 && parts[0] == "sessions":
		switch method {
		case http.MethodGet:
			return route{op: OpGetSessionList, allow: "GET, POST", handle: (*Emulator).handleList}
		case http.MethodPost:
			return route{op: OpCreateSession, allow: "GET, POST", handle: (*Emulator).handleCreate}
		}
		return route{allow: "GET, POST"}
	case len(parts) == 3 && parts[0] == "users" && parts[1] != "" && parts[2] == "lock":
		return one(http.MethodPost, OpLockUser, (*Emulator).handleLock, route{userID: parts[1]})
	case len(parts) == 3 && parts[0] == "users" && parts[1] != "" && parts[2] == "unlock":
		return one(http.MethodPost, OpUnlockUser, (*Emulator).handleLock, route{userID: parts[1]})
	case len(parts) < 2 || parts[0] != "sessions" || parts[1] == "":
		return route{}
	}
	rt := route{sessionID: parts[1]}
	switch {
	case len(parts) == 2:
		return one(http.MethodGet, OpGetSession, (*Emulator).handleGet, rt)
	case len(parts) == 3 && parts[2] == "refresh":
		return one(http.MethodPost, OpRefreshSession, (*Emulator).handleRefresh, rt)
	case len(parts) == 3 && parts[2] == "revoke":
		return one(http.MethodPost, OpRevokeSession, (*Emulator).handleRevoke, rt)
	case len(parts) == 3 && parts[2] == "tokens":
		return one(http.MethodPost, OpCreateSessionToken, (*Emulator).handleToken, rt)
	case len(parts) == 4 && parts[2] == "tokens" && parts[3] != "":
		rt.template = parts[3]
		return one(http.MethodPost, OpCreateSessionTokenFromTemplate, (*Emulator).handleToken, rt)
	}
	return route{}
}

// splitPath splits an escaped path into unescaped segments; ok is false
// when a segment does not unescape.
func splitPath(escaped string) (parts []string, ok bool) {
	parts = strings.Split(escaped, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

// serveAPI runs one Clerk API call through the fault pipeline described on
// Faults and logs it.
func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	start := time.Now()
	rt := matchAPI(r.Method, rest)
	c := Call{Time: e.now(), Method: r.Method, Path: r.URL.Path, Op: rt.op, SessionID: rt.sessionID, UserID: rt.userID}
	f := e.Faults()
	if d := e.delay(f); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			c.Status, c.Fault = StatusClientClosedRequest, "canceled"
			e.record(c, start)
			return
		}
	}
	if e.chance(f.DropRate) {
		c.Fault = "drop"
		e.record(c, start)
		dropConnection(w)
		return
	}
	rep := e.answer(r, rt, f)
	if rep.fault == "" && e.chance(f.GatewayErrorRate) {
		rep = gatewayPage(r, []int{http.StatusBadGateway, http.StatusGatewayTimeout}[e.intN(2)])
	}
	c.Status, c.Fault = rep.status, rep.fault
	if rep.fault == "" && e.chance(f.DropAfterRate) {
		c.Fault = "drop_after"
		e.record(c, start)
		dropConnection(w)
		return
	}
	e.write(w, rep)
	e.record(c, start)
}

func (e *Emulator) record(c Call, start time.Time) {
	c.Duration = time.Since(start)
	e.calls.add(c)
	e.log.Debug().Str("method", c.Method).Str("path", c.Path).Str("op", c.Op).Int("status", c.Status).
		Str("session_id", c.SessionID).Str("user_id", c.UserID).Str("fault", c.Fault).Dur("duration", c.Duration).Msg("clerk api call")
}

// dropConnection closes the connection without answering. Where the
// connection cannot be hijacked (HTTP/2, a ResponseRecorder) it aborts the
// handler, which net/http turns into a reset.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// answer applies the checks every call goes through, in Clerk's order as
// far as it is known, then the handler.
func (e *Emulator) answer(r *http.Request, rt route, f Faults) reply {
	if f.RejectKey {
		return e.keyInvalid().withFault("reject_key")
	}
	hash, key, rep, ok := e.authenticate(r)
	if !ok {
		return rep
	}
	if ok, secs := e.limiter.take(hash, e.now()); !ok {
		rep := e.fail(http.StatusTooManyRequests, "too_many_requests", "Too many requests",
			"You have exceeded the rate limit. Try again in "+strconv.Itoa(secs)+" seconds.", nil)
		rep.header.Set("Retry-After", strconv.Itoa(secs))
		return rep.withFault("rate_limit")
	}
	if rep, ok := e.checkVersion(r); !ok {
		return rep
	}
	if e.chance(f.ErrorRate) {
		return e.statusError([]int{500, 502, 503}[e.intN(3)]).withFault("error")
	}
	if rt.handle == nil {
		if rt.allow != "" {
			return e.methodNotAllowed(r, rt.allow)
		}
		return e.notFound("The path " + r.URL.Path + " is not one of the Clerk API paths this emulator serves.")
	}
	if status, fault := e.forced(rt); status != 0 {
		return e.statusError(status).withFault(fault)
	}
	return rt.handle(e, r, rt, key)
}

func (e *Emulator) keyInvalid() reply {
	return e.fail(http.StatusUnauthorized, "clerk_key_invalid", "Secret key invalid",
		"The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.", nil)
}

// authenticate checks the Authorization header. Only digests of keys are
// compared and kept.
func (e *Emulator) authenticate(r *http.Request) (keyHash, keyInfo, reply, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return keyHash{}, keyInfo{}, e.fail(http.StatusUnauthorized, "authorization_header_format_invalid",
			"Invalid Authorization header format",
			`The Authorization header must be of the form "Bearer <secret key>".`, nil), false
	}
	sum := sha256.Sum256([]byte(token))
	for k, info := range e.keys {
		if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 {
			return sum, info, reply{}, true
		}
	}
	return keyHash{}, keyInfo{}, e.keyInvalid(), false
}

// checkVersion accepts a known version in the Clerk-API-Version header or
// the __clerk_api_version query parameter (not both), or none.
func (e *Emulator) checkVersion(r *http.Request) (reply, bool) {
	v := r.Header.Get("Clerk-API-Version")
	qv, inQuery := r.URL.Query()["__clerk_api_version"]
	switch {
	case v != "" && inQuery:
		return e.fail(http.StatusBadRequest, "api_version_invalid", "API version invalid",
			"Give the API version in the Clerk-API-Version header or the __clerk_api_version query parameter, not both.", nil), false
	case inQuery:
		v = qv[0]
	case v == "":
		return reply{}, true
	}
	if !knownAPIVersions[v] {
		return e.fail(http.StatusBadRequest, "api_version_invalid", "API version invalid",
			"The API version "+strconv.Quote(text.Truncate(v, 40))+" is not one of 2021-02-05, 2024-10-01, 2025-04-10, 2025-11-10, 2026-05-12.", nil), false
	}
	return reply{}, true
}

// write sends a reply as JSON.
func (e *Emulator) write(w http.ResponseWriter, rep reply) {
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if rep.html != nil {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(rep.html)))
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.html)
		return
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	b, err := json.Marshal(rep.body)
	if err != nil {
		rep = e.statusError(http.StatusInternalServerError)
		b, _ = json.Marshal(rep.body)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
}

// ---- request bodies ----

// body is a request's JSON object body, read field by field. The first
// refusal, of the body or of a field, sticks in bad and makes every later
// read a no-op: a handler reads what it needs, then answers the first
// refusal, in the order of its reads.
type body struct {
	e      *Emulator
	fields map[string]json.RawMessage
	bad    *reply
}

// readObject reads a JSON object body of at most MaxBodyBytes. An empty
// body and null read as an empty object.
func (e *Emulator) readObject(r *http.Request) *body {
	refused := func(rep reply) *body { return &body{e: e, bad: &rep} }
	if r.ContentLength > MaxBodyBytes {
		return refused(e.tooLarge())
	}
	b, rep, ok := e.readBody(r)
	if !ok {
		return refused(rep)
	}
	if len(b) == 0 || string(b) == "null" {
		return &body{e: e, fields: map[string]json.RawMessage{}}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return refused(e.fail(http.StatusUnsupportedMediaType, "unsupported_content_type", "Unsupported content type",
				"Send the request body as JSON, with Content-Type: application/json.", nil))
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return refused(e.bodyInvalid("The request body must be a JSON object."))
	}
	return &body{e: e, fields: m}
}

// readBody reads a body of at most MaxBodyBytes, trimmed of white space.
func (e *Emulator) readBody(r *http.Request) ([]byte, reply, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, e.bodyInvalid("The request body could not be read."), false
	}
	if len(b) > MaxBodyBytes {
		return nil, e.tooLarge(), false
	}
	return bytes.TrimSpace(b), reply{}, true
}

func (e *Emulator) bodyInvalid(long string) reply {
	return e.fail(http.StatusBadRequest, "request_body_invalid", "Request body invalid", long, nil)
}

func (e *Emulator) tooLarge() reply {
	return e.fail(http.StatusRequestEntityTooLarge, "request_body_too_large", "Request body too large",
		"The request body must not exceed "+strconv.Itoa(MaxBodyBytes)+" bytes.", nil)
}

// refuse records rep, unless an earlier refusal stands.
func (b *body) refuse(rep reply) {
	if b.bad == nil {
		b.bad = &rep
	}
}

// field is a field's JSON: nil when it is absent or null, or when the body
// is refused already.
func (b *body) field(name string) json.RawMessage {
	if raw := b.fields[name]; b.bad == nil && string(raw) != "null" {
		return raw
	}
	return nil
}

// optional reads an optional string field; absent and null give "".
func (b *body) optional(name string) string {
	var s string
	if raw := b.field(name); raw != nil && json.Unmarshal(raw, &s) != nil {
		b.refuse(b.e.paramTypeInvalid(name, "a string"))
	}
	return s
}

// required reads a string field that must be present and not blank.
func (b *body) required(name string) string {
	s := b.optional(name)
	if strings.TrimSpace(s) == "" {
		b.refuse(b.e.paramError("form_param_missing", name, name+" must be included", name+" must be included in the request"))
	}
	return s
}

// ---- handlers ----

func (e *Emulator) handleJWKS(*http.Request, route, keyInfo) reply {
	if err := e.sign.init(); err != nil {
		return e.statusError(http.StatusInternalServerError)
	}
	return reply{status: http.StatusOK, body: json.RawMessage(e.sign.jwks)}
}

func (e *Emulator) handleGet(_ *http.Request, rt route, _ keyInfo) reply {
	s, ok := e.Session(rt.sessionID)
	if !ok {
		return e.sessionNotFound(rt.sessionID)
	}
	return reply{status: http.StatusOK, body: s}
}

func (e *Emulator) sessionNotFound(id string) reply {
	return e.notFound("No session was found with id " + text.Truncate(id, 64) + ".")
}

// listQuery is a parsed GetSessionList query.
type listQuery struct {
	clientID, userID string
	status           clerkapi.SessionStatus
	limit, offset    int
	paginated        bool
}

func (e *Emulator) parseListQuery(q url.Values) (listQuery, reply, bool) {
	lq := listQuery{clientID: q.Get("client_id"), userID: q.Get("user_id"), limit: 10}
	if lq.clientID == "" && lq.userID == "" {
		return lq, e.fail(http.StatusBadRequest, "missing_query_parameter", "missing query parameter",
			"Provide at least one of the client_id and user_id query parameters.", nil), false
	}
	if v, ok := q["status"]; ok {
		lq.status = clerkapi.SessionStatus(v[0])
		if !validStatus(lq.status, false) {
			return lq, e.paramValueInvalid("status",
				"status must be one of abandoned, active, ended, expired, removed, replaced, revoked"), false
		}
	}
	intParam := func(name string, lo, hi int, dst *int) (reply, bool) {
		v, ok := q[name]
		if !ok {
			return reply{}, true
		}
		n, err := strconv.Atoi(v[0])
		if err != nil {
			return e.paramFormatInvalid(name, name+" must be an integer"), false
		}
		if n < lo || n > hi {
			rng := name + " must be at least " + strconv.Itoa(lo)
			if hi < math.MaxInt {
				rng = name + " must be between " + strconv.Itoa(lo) + " and " + strconv.Itoa(hi)
			}
			return e.paramValueInvalid(name, rng), false
		}
		*dst = n
		return reply{}, true
	}
	if rep, ok := intParam("limit", clerkapi.MinListLimit, clerkapi.MaxListLimit, &lq.limit); !ok {
		return lq, rep, false
	}
	if rep, ok := intParam("offset", 0, math.MaxInt, &lq.offset); !ok {
		return lq, rep, false
	}
	if v, ok := q["paginated"]; ok {
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return lq, e.paramFormatInvalid("paginated", "paginated must be true or false"), false
		}
		lq.paginated = b
	}
	return lq, reply{}, true
}

func (e *Emulator) handleList(r *http.Request, _ route, _ keyInfo) reply {
	lq, rep, ok := e.parseListQuery(r.URL.Query())
	if !ok {
		return rep
	}
	page, total := e.list(lq)
	if lq.paginated {
		return reply{status: http.StatusOK, body: clerkapi.SessionList{Data: page, TotalCount: int64(total)}}
	}
	return reply{status: http.StatusOK, body: page}
}

// list returns one page, newest first, and the number of matching
// sessions. The cost is O(offset+limit) for a user or client without a
// status filter and for a user with one until the page is full; only a
// paginated list filtered beyond that walks the user's or client's
// sessions, never all sessions.
func (e *Emulator) list(lq listQuery) ([]clerkapi.Session, int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var src []*sessionRec
	var match func(*sessionRec) bool
	total := -1 // unknown until counted
	switch {
	case lq.clientID != "":
		src = e.st.clients[lq.clientID]
		if lq.userID != "" || lq.status != "" {
			match = func(s *sessionRec) bool {
				return (lq.userID == "" || s.s.UserID == lq.userID) && (lq.status == "" || s.s.Status == lq.status)
			}
		} else {
			total = len(src)
		}
	default:
		u := e.st.users[lq.userID]
		if u == nil {
			return []clerkapi.Session{}, 0
		}
		src = u.sessions
		if lq.status != "" {
			match = func(s *sessionRec) bool { return s.s.Status == lq.status }
			total = u.counts[lq.status]
		} else {
			total = len(src)
		}
	}
	out := make([]clerkapi.Session, 0, min(lq.limit, 64))
	if match == nil {
		for i := len(src) - 1 - lq.offset; i >= 0 && len(out) < lq.limit; i-- {
			out = append(out, src[i].view())
		}
		return out, total
	}
	count, skip := 0, lq.offset
	for i := len(src) - 1; i >= 0; i-- {
		s := src[i]
		if !match(s) {
			continue
		}
		count++
		switch {
		case skip > 0:
			skip--
		case len(out) < lq.limit:
			out = append(out, s.view())
		case total >= 0 || !lq.paginated:
			return out, total
		}
	}
	if total < 0 {
		total = count
	}
	return out, total
}

func (e *Emulator) handleCreate(r *http.Request, _ route, key keyInfo) reply {
	if key.production {
		return e.fail(http.StatusBadRequest, "request_invalid_for_environment", "Request invalid for environment",
			"createSession is available on development and staging instances only.", nil)
	}
	b := e.readObject(r)
	userID := b.required("user_id")
	org := b.optional("active_organization_id")
	if b.bad != nil {
		return *b.bad
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	u := e.st.users[userID]
	if u == nil {
		return e.userNotFound(userID)
	}
	if rep, locked := e.lockRefusal(u, e.now()); locked {
		return rep
	}
	return reply{status: http.StatusOK, body: e.createSessionsLocked(userID, 1, org)[0].view()}
}

func (e *Emulator) handleRevoke(r *http.Request, rt route, _ keyInfo) reply {
	if b := e.readObject(r); b.bad != nil {
		return *b.bad
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.st.sessions[rt.sessionID]
	if s == nil {
		return e.sessionNotFound(rt.sessionID)
	}
	if ended(s.s.Status) {
		if e.strictRevoke {
			return e.fail(http.StatusBadRequest, "session_not_active", "Session not active",
				"The session is "+string(s.s.Status)+" and cannot be revoked.", nil)
		}
	} else {
		s.setStatus(clerkapi.StatusRevoked, e.now().UnixMilli())
	}
	s.revokes++
	return reply{status: http.StatusOK, body: s.view()}
}

func (e *Emulator) handleToken(r *http.Request, rt route, _ keyInfo) reply {
	b := e.readObject(r)
	if b.bad != nil {
		return *b.bad
	}
	var ttl time.Duration
	if raw := b.field("expires_in_seconds"); raw != nil {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return e.paramTypeInvalid("expires_in_seconds", "an integer")
		}
		if n < clerkapi.MinTokenLifetimeSecs || n > clerkapi.MaxTokenLifetimeSecs {
			return e.paramValueInvalid("expires_in_seconds", "expires_in_seconds must be between "+
				strconv.Itoa(clerkapi.MinTokenLifetimeSecs)+" and "+strconv.Itoa(clerkapi.MaxTokenLifetimeSecs))
		}
		ttl = time.Duration(n) * time.Second
	}
	sub, ok := lookup(e, e.st.sessions, rt.sessionID, subjectOf)
	if !ok {
		return e.sessionNotFound(rt.sessionID)
	}
	if sub.status != clerkapi.StatusActive {
		return e.notFound("The session is " + string(sub.status) + "; only active sessions issue tokens.")
	}
	now := e.now()
	var claims map[string]any
	if rt.template != "" {
		t, ok := e.templates[rt.template]
		if !ok {
			return e.notFound("No JWT template was found with name " + text.Truncate(rt.template, 64) + ".")
		}
		if ttl == 0 {
			ttl = t.lifetime
		}
		claims = e.templateClaims(sub, t, now, ttl)
	} else {
		if ttl == 0 {
			ttl = DefaultTokenLifetime
		}
		claims = e.sessionClaims(sub, azp, now, ttl)
	}
	jwt, err := e.signClaims(claims)
	if err != nil {
		return e.statusError(http.StatusInternalServerError)
	}
	return reply{status: http.StatusOK, body: clerkapi.Token{Object: "token", JWT: jwt}}
}

// refreshFields are the body fields RefreshSession accepts; the spec
// forbids any other.
var refreshFields = map[string]bool{
	"expired_token": true, "refresh_token": true, "request_origin": true,
	"request_headers": true, "format": true, "request_originating_ip": true,
}

// handleRefresh answers only what Clerk's description lists for
// RefreshSession, 400 and 401 (besides the answers any path may get: 405,
// 413, 415, 429, 5xx), since clients act on that list: Clerk's SDKs fall
// back to the handshake flow on a 401. A parameter error, 422 on other
// operations, is 400 here with the same code and meta.param_name.
func (e *Emulator) handleRefresh(r *http.Request, rt route, _ keyInfo) reply {
	rep := e.refresh(r, rt)
	if rep.status == http.StatusUnprocessableEntity {
		rep.status = http.StatusBadRequest
	}
	return rep
}

func (e *Emulator) refresh(r *http.Request, rt route) reply {
	b := e.readObject(r)
	for k := range b.fields {
		if !refreshFields[k] {
			b.refuse(e.paramError("form_param_unknown", k, "is unknown", k+" is not a valid parameter for this request"))
		}
	}
	expired := b.required("expired_token")
	refresh := b.required("refresh_token")
	origin := b.required("request_origin")
	format := b.optional("format")
	if format != "" && format != string(clerkapi.FormatToken) && format != string(clerkapi.FormatCookie) {
		b.refuse(e.paramValueInvalid("format", "format must be token or cookie"))
	}
	// Clerk reads request_headers as Record<string, string[]> (its
	// backend SDK turns every header into a one-element list before it
	// sends them): a header whose value is a bare string, a number or an
	// object does not decode.
	if raw := b.field("request_headers"); raw != nil && json.Unmarshal(raw, new(map[string][]string)) != nil {
		b.refuse(e.paramTypeInvalid("request_headers", "an object whose values are lists of strings"))
	}
	ip := b.optional("request_originating_ip")
	if b.bad != nil {
		return *b.bad
	}

	// A session that does not exist has issued no refresh token: the same
	// 401 as a wrong one, not GetSession's 404, which the description does
	// not list for this operation.
	wantRefresh, ok := lookup(e, e.st.sessions, rt.sessionID, func(r *sessionRec) string { return r.refresh })
	if !ok || subtle.ConstantTimeCompare([]byte(refresh), []byte(wantRefresh)) != 1 {
		return e.fail(http.StatusUnauthorized, "refresh_token_not_found", "Refresh token not found",
			"The refresh token is not one issued for session "+text.Truncate(rt.sessionID, 64)+".", nil)
	}
	if err := e.checkExpiredToken(expired, rt.sessionID); err != nil {
		long := "expired_token is not a session token this instance signed."
		if err == errTokenSession {
			long = "expired_token belongs to another session."
		}
		return e.fail(http.StatusUnauthorized, "expired_session_token_invalid", "Expired session token invalid", long, nil)
	}

	now := e.now()
	e.mu.Lock()
	s := e.st.sessions[rt.sessionID] // sessions are never deleted
	if ended(s.s.Status) || s.s.Status == clerkapi.StatusPending {
		status := s.s.Status
		e.mu.Unlock()
		return e.fail(http.StatusUnauthorized, "session_refresh_session_not_active", "Session not active",
			"The session is "+string(status)+" and cannot be refreshed.", nil)
	}
	s.s.LastActiveAt = max(now.UnixMilli(), s.s.LastActiveAt)
	s.s.UpdatedAt = max(now.UnixMilli(), s.s.UpdatedAt)
	if ip != "" && s.s.LatestActivity != nil {
		s.s.LatestActivity.IPAddress = ip
	}
	sub := subjectOf(s)
	e.mu.Unlock()

	jwt, err := e.signClaims(e.sessionClaims(sub, origin, now, DefaultTokenLifetime))
	if err != nil {
		return e.statusError(http.StatusInternalServerError)
	}
	if format == string(clerkapi.FormatCookie) {
		exp := now.Add(DefaultTokenLifetime).UTC().Format(http.TimeFormat)
		return reply{status: http.StatusOK, body: clerkapi.Cookies{Object: "cookies", Cookies: []string{
			"__session=" + jwt + "; Path=/; Expires=" + exp + "; Secure; SameSite=Lax",
			"__client_uat=" + strconv.FormatInt(now.Unix(), 10) + "; Path=/; Max-Age=315360000; Secure; SameSite=Strict",
		}}}
	}
	return reply{status: http.StatusOK, body: clerkapi.Token{Object: "token", JWT: jwt}}
}
