// Package clerkapi is a typed client for the Sessions endpoints of Clerk's
// Backend API (https://clerk.com/docs/reference/backend-api).
//
// It covers the seven session operations: list, create, get, refresh,
// revoke, create token and create token from a JWT template. Every call
// takes a context, validates its input before sending anything, and
// returns either a typed answer or an error that says what went wrong.
//
// The client never retries. Retry policy belongs to the caller, and the
// client gives it what it needs: every non-2xx answer is an *Error carrying
// the HTTP status, Clerk's error codes, the trace id and Retry-After, and
// [ClassOf] sorts any error into one of three classes:
//
//   - [Retryable]: 429, 409 resource_locked, 5xx, network errors, timeouts.
//     Trying again later may succeed.
//   - [Permanent]: the request itself is wrong (400, 404, 422, refresh
//     validation failures). Trying again cannot succeed.
//   - [Systemic]: Clerk rejects the secret key or the key lacks rights. No
//     request is to blame; nothing will succeed until the key is fixed.
//
// The secret key never appears in an error, a log line or the formatted
// value of a [Client].
//
// The sibling package [github.com/clerkjobs/clerkjobs/clerkapi/emulator]
// is to this package what net/http/httptest is to net/http: an in-memory
// Clerk that tests and demos run against.
package clerkapi
