// Package emulator is an in-memory Clerk Backend API for the seven Sessions
// operations, locking and unlocking users, and GET /v1/jwks. It is to
// package clerkapi what
// net/http/httptest is to net/http: tests and demos run against it instead
// of api.clerk.com, and Clerk's official Go SDK works against it unchanged.
//
// # Use
//
// A test starts a server, creates data through Go calls, and points a
// client at Server.URL, which includes /v1:
//
//	srv := emulator.NewServer()
//	defer srv.Close()
//	user := srv.Emulator.CreateUser()
//	ids := srv.Emulator.CreateSessions(user, 3)
//	c, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
//	_, err := c.RevokeSession(ctx, ids[0])
//
// An Emulator is also a plain http.Handler, to mount anywhere (dropped
// connections then need a server that supports hijacking). The command
// github.com/clerkjobs/clerkjobs/cmd/clerk-emulator serves one for demos.
//
// # The Clerk API
//
// Paths, methods, bodies and answers follow Clerk's OpenAPI description
// (bapi 2026-05-12):
//
//	GET  /v1/sessions                                  GetSessionList
//	POST /v1/sessions                                  createSession
//	GET  /v1/sessions/{session_id}                     GetSession
//	POST /v1/sessions/{session_id}/refresh             RefreshSession
//	POST /v1/sessions/{session_id}/revoke              RevokeSession
//	POST /v1/sessions/{session_id}/tokens              CreateSessionToken
//	POST /v1/sessions/{session_id}/tokens/{template}   CreateSessionTokenFromTemplate
//	POST /v1/users/{user_id}/lock                      LockUser
//	POST /v1/users/{user_id}/unlock                    UnlockUser
//	GET  /v1/jwks                                      GetJWKS
//
// Every /v1 call needs "Authorization: Bearer <secret key>" (GET /v1/jwks
// too, as on Clerk): a missing or malformed header is 401
// authorization_header_format_invalid, an unknown key 401
// clerk_key_invalid. The API version may be given in the Clerk-API-Version
// header or the __clerk_api_version query parameter, not both (400
// api_version_invalid); known versions are 2021-02-05, 2024-10-01,
// 2025-04-10, 2025-11-10 and 2026-05-12, and none at all is accepted.
//
// Every error answer, from the API, the control API or an injected fault
// (but a gateway's, see Faults), is application/json in Clerk's shape,
// with a Clerk-Trace-Id header repeating the trace id:
//
//	{"errors":[{"message":"…","long_message":"…","code":"…","meta":{}}],"meta":{},"clerk_trace_id":"…"}
//
// Unknown paths are 404 resource_not_found; a known path with another
// method is 405 method_not_allowed. Bodies over 1 MiB are 413
// request_body_too_large; a non-JSON Content-Type with a body is 415
// unsupported_content_type; malformed JSON is 400 request_body_invalid.
// Parameter errors are 422 (400 from RefreshSession, see below) with
// form_param_missing, form_param_value_invalid, form_param_format_invalid,
// form_param_type_invalid or form_param_unknown and meta.param_name.
//
// Sessions are JSON objects with every field of Clerk's Session schema:
// object "session", Unix-millisecond timestamps (expire_at 7 days and
// abandon_at 30 days after created_at), a latest_activity object, actor
// null and tasks null. Session ids are sess_ followed by 27 base62
// characters, user ids user_…, client ids client_…; each session created
// here has its own client.
//
// # Decisions where Clerk's behaviour is not documented
//
//   - GetSessionList without client_id and user_id is 400
//     missing_query_parameter (Clerk deprecated the unfiltered list in
//     2024). An unknown user or client is an empty list, not 404. Sessions
//     come newest first; limit is 1..500 (default 10) and offset ≥ 0, else
//     422. paginated=true answers {"data":[…],"total_count":N}, as the
//     official SDKs expect, while the spec only describes the bare array
//     that other calls get.
//   - Revoking a session that is already revoked, ended, expired, removed,
//     abandoned or replaced answers 200 with the session unchanged: revoke
//     is idempotent, so a retried revoke does not fail. RevokeCount counts
//     every such 200, which lets tests detect duplicate revokes.
//     WithStrictRevoke makes it 400 session_not_active instead. Pending
//     sessions can be revoked.
//   - Tokens (both token operations) are issued for active sessions only;
//     any other status is 404 resource_not_found, as if the session were
//     gone, with a long_message naming the status. The spec lists no other
//     error for these operations.
//   - RefreshSession answers only the statuses Clerk's description lists
//     for it, 400 and 401 (besides 405, 413, 415, 429 and 5xx, which any
//     path may answer): it checks the body (400 with the parameter codes
//     above, which are 422 elsewhere), then answers 401 with:
//     refresh_token_not_found when refresh_token is not the one issued for
//     the session (see RefreshToken), or the session does not exist (not
//     404); expired_session_token_invalid when expired_token is not
//     a token this emulator signed for this session (its expiry does not
//     matter); session_refresh_session_not_active when the session is not
//     active. These codes are the ones clerkapi classifies as Permanent.
//     request_headers must map each header to a list of strings, as
//     Clerk reads it (Record<string, string[]>, as Clerk's backend SDK
//     sends it): any other value, a bare string included, is 400
//     form_param_type_invalid.
//     format "cookie" answers {"object":"cookies","cookies":["__session=…",
//     "__client_uat=…"]}.
//   - createSession needs an existing user (404 resource_not_found
//     otherwise) who is not locked (see Locked users). With an sk_live_
//     key, the emulated instance is a production one and createSession is
//     400 request_invalid_for_environment, as on Clerk.
//   - Session expiry over time is not modelled: statuses change only
//     through the API and SetSessionStatus.
//   - Clerk's description of GetSessionList says that old and inactive
//     sessions are periodically cleaned up and no longer listed. Here that
//     happens only when a test calls CleanUpSession (or POST
//     /_emulator/sessions/{id}/clean_up): the session leaves
//     the listing and total_count (the sessions after it move up a place,
//     so a client paging by offset meanwhile skips one), while its own
//     paths answer as before, which Clerk does not document.
//
// # Locked users
//
// POST /v1/users/{id}/lock locks a user for the instance's lockout
// duration: DefaultLockoutDuration (one hour, Clerk's default) unless
// WithLockoutDuration sets another or IndefiniteLockout (until unlocked).
// The answer is Clerk's User object, valid against its schema: locked
// true and lockout_expires_in_seconds counting down by the emulator's clock
// (WithClock), rounded up, null for an indefinite lock; when the lockout
// has passed the user is unlocked on their own (locked false, null). POST
// /v1/users/{id}/unlock ends the lock at once. An unknown user is 404
// resource_not_found. Users created here have no names, email addresses,
// factors or metadata; last_sign_in_at is the created_at of their newest
// session, verification_attempts_remaining is null.
//
// While the lock holds, every sign-in is refused: createSession and POST
// /_emulator/users/{id}/sessions answer 403 user_locked with
// meta.lockout_expires_in_seconds (as on the User), and CreateSessions
// creates nothing. Sessions that existed before the lock stay active and
// keep working (refresh, tokens, revoke): a lock only stops sign-ins.
// Inspect a lock with LockedUntil, User, LockCount or GET
// /_emulator/users/{id}.
//
// Where Clerk's behaviour is not documented: Clerk's description of
// createSession lists no refusal for a locked user, so the answer follows
// Clerk's frontend API, whose SDKs recognise a locked account by the code
// user_locked and read the time left from meta.lockout_expires_in_seconds;
// the status is 403. Locking a locked user locks them again for a new full
// duration (LockCount counts both); unlocking a user who is not locked
// answers 200 and changes nothing.
//
// # Tokens
//
// Tokens are RS256 JWTs with a kid header naming the key GET /v1/jwks
// serves. Session tokens carry iss (DefaultIssuer), sub (the user id), sid,
// azp, iat, nbf, exp and v; their default lifetime is 60 s and
// expires_in_seconds (30..315360000) overrides it. Template tokens (see
// WithTemplate) carry the template's claims under azp, exp, iat, iss,
// jti, nbf and sub. The official SDK's jwt.Verify accepts both.
//
// # Faults
//
// Faults (WithFaults, SetFaults, PUT /_emulator/faults) add latency and
// jitter, answer a fraction of calls 500, 502 or 503 with Clerk's errors
// body, have a gateway in front of Clerk answer a fraction of calls (after
// handling them) 502 or 504 with an HTML page of its own and a Via header
// naming GatewayVia (GatewayErrorRate: what a client must not mistake for
// Clerk's answer nor quote), drop a fraction of connections before or
// after handling them, or reject the secret key.
// WithRateLimit adds Clerk's 429 too_many_requests with Retry-After, per
// secret key, counted in fixed windows (each starts with the first call
// after the previous one ended) or, with WithRateLimitMode(SlidingWindow),
// in a sliding window (no interval of the window's length holds more than
// the limit): Clerk does not say which it uses, so a client that must
// never draw a 429 is tested against both. FailSession makes every call about one session fail with a
// chosen status; the error code suits the status: 400
// malformed_request_parameters, 401 authentication_invalid, 403
// authorization_invalid, 404 resource_not_found, 409 resource_locked, 422
// form_param_value_invalid, 429 too_many_requests, 500
// internal_clerk_error, 502 bad_gateway, 503 service_unavailable, 504
// gateway_timeout, other statuses emulated_failure. 429 and 503 carry
// Retry-After: 1. FailUser does the same for the calls about one user
// (lock, unlock).
//
// Every API call is logged (Calls) with its status, operation, session or
// user id and any fault, including failed and dropped ones.
//
// # Control API
//
// The same controls are served over HTTP under /_emulator/, outside
// Clerk's namespace and WITHOUT authentication: bind the emulator to
// 127.0.0.1 (the default). Bodies and answers are JSON; errors use Clerk's
// errors body; unknown body fields are 400.
//
//	GET    /_emulator/health                    {"status":"ok"}
//	POST   /_emulator/users                     201 {"id":"user_…"}
//	POST   /_emulator/users/{id}/sessions       {"count":N} (default 1) → 201 {"session_ids":["sess_…",…]}, oldest first; an unknown user id is created; a locked user's is 403 user_locked
//	GET    /_emulator/users/{id}                {"user":{Clerk's User},"locked_until":"2026-…Z" (null unless a lock holds and ends),"lock_count":N,"fail_status":S}
//	PUT    /_emulator/users/{id}/failure        {"status":503} (0 clears) → {"status":503}
//	POST   /_emulator/seed                      {"users":N,"sessions_per_user":M} → 201 {"user_ids":[…]}
//	GET    /_emulator/sessions/{id}             {"session":{…},"refresh_token":"…","session_token":"…","revoke_count":N,"fail_status":S}
//	PUT    /_emulator/sessions/{id}/status      {"status":"ended"} → the session
//	PUT    /_emulator/sessions/{id}/failure     {"status":503} (0 clears) → {"status":503}
//	POST   /_emulator/sessions/{id}/clean_up    → the session, no longer listed (CleanUpSession); 422 for an active or pending one
//	GET    /_emulator/calls                     {"calls":[{"time","method","path","status","op","session_id","duration":"1.2ms","fault"},…]}
//	DELETE /_emulator/calls                     204
//	GET    /_emulator/faults                    {"error_rate":0,"gateway_error_rate":0,"drop_rate":0,"drop_after_rate":0,"latency":"0s","jitter":"0s","reject_key":false}
//	PUT    /_emulator/faults                    the same object (absent fields are zero) → the faults now in effect
//	GET    /_emulator/rate_limit                {"requests":N,"window":"10s","mode":"fixed"} (requests 0: no limit)
//	PUT    /_emulator/rate_limit                {"requests":N,"window":"10s","mode":"sliding"} → the same (mode absent: unchanged)
//
// For example, with the command running:
//
//	curl -s -X POST localhost:8090/_emulator/users
//	curl -s -X POST localhost:8090/_emulator/users/user_…/sessions -d '{"count":3}'
//	curl -s -H 'Authorization: Bearer sk_test_emulator' 'localhost:8090/v1/sessions?user_id=user_…'
//	curl -s -X PUT localhost:8090/_emulator/faults -d '{"error_rate":0.2,"latency":"150ms"}'
//	curl -s -H 'Authorization: Bearer sk_test_emulator' -H 'Content-Type: application/json' \
//	     -X POST localhost:8090/v1/sessions/sess_…/revoke
//
// Clerk API bodies must be JSON: curl -d without a JSON Content-Type
// sends a form, which the emulator answers 415 (the control API does not
// check the Content-Type).
//
// # Performance
//
// Sessions are indexed by id, by user and by client, each list in creation
// order, so no call scans all sessions: an unfiltered page costs O(limit)
// even for a user with 10,000 sessions. Reads share a sync.RWMutex; the
// call log, randomness, faults and rate limiter have their own locks. The
// call log keeps the newest WithCallLogLimit calls.
package emulator
