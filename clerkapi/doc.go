// Package clerkapi is a typed client for the Sessions endpoints of Clerk's
// Backend API (https://clerk.com/docs/reference/backend-api), and for
// locking users.
//
// It covers the seven session operations (list, create, get, refresh,
// revoke, create token and create token from a JWT template), grouped in
// the [Sessions] interface, and the two user operations LockUser and
// UnlockUser, grouped in [Users]. Every call takes a context, validates its
// input before sending anything, and returns either a typed answer or an
// error that says what went wrong.
//
// The client never retries. Retry policy belongs to the caller, and the
// client gives it what it needs: every non-2xx answer is an *Error carrying
// the HTTP status, Clerk's error codes, the trace id and Retry-After, and
// [ClassOf] sorts any error into one of three classes:
//
//   - [Retryable]: 429, 409 resource_locked, 5xx, network errors, timeouts,
//     a 2xx whose body is not the object asked for. Trying again later may
//     succeed.
//   - [Permanent]: the request itself is wrong (400, 404, 422, refresh
//     validation failures). Trying again cannot succeed. Also a
//     createSession or RefreshSession answered 2xx without the whole
//     answer (a body that is not one, or that broke off), sent whole
//     and never answered (the connection dropped, timed out or was
//     cancelled first), or answered 502 or 504 by a gateway in front of
//     Clerk, or 520 or 524 by a CDN (without Clerk's error body):
//     [ErrUnconfirmed]. Clerk may have carried it out,
//     and sent again a create could create a second session, a refresh
//     would use its spent refresh token again.
//   - [Systemic]: Clerk rejects the secret key or the key lacks rights, or
//     the API version sent (400 api_version_invalid: a version Clerk has
//     retired, or a wrong WithAPIVersion), or the base URL answers with a
//     redirect (never followed: Clerk's API does not redirect). No request
//     is to blame; nothing will succeed until the key, the version or the
//     base URL is fixed.
//
// 401 and 403 are Systemic but for three refusals that concern one request
// and not the key, which are Permanent: RefreshSession's 401s about the
// tokens it was given, a 403 to LockUser or UnlockUser (the instance's
// settings do not allow locking), and any answer with the code user_locked
// (a sign-in, such as createSession, for a locked user). Treating those as
// Systemic would make a caller stop every call over one that cannot
// succeed.
//
// # Locking a user
//
// A locked user cannot sign in until the lock ends, after the instance's
// lockout duration (one hour by default) or on UnlockUser; sessions that
// already exist stay active. To contain an account takeover, lock the user
// first and then revoke their sessions: no new session can appear while
// they are revoked. [User.LockedUntil] tells when the lock ends, since it
// ends on its own.
//
// The secret key never appears in an error, a log line or the formatted
// value of a [Client].
//
// The sibling package [github.com/clerkjobs/clerkjobs/clerkapi/emulator]
// is to this package what net/http/httptest is to net/http: an in-memory
// Clerk that tests and demos run against.
package clerkapi
