// Package worker runs Clerk session jobs from NATS JetStream.
//
// A Worker pulls jobs from the shared durable consumer, runs each through a
// chain of small middleware around the job handlers, and settles it:
//
//	fetch ─▶ decode+validate ─▶ circuit ─▶ retry ─▶ handler ─▶ settle
//	                                                  │           │
//	                              rate limit + Retry-After     result ─▶ ack
//	                              (shared by every call)       dead letter ─▶ ack
//	                                                           nak with delay
//
// What happens to a job is decided by the class of its error (see
// clerkapi.ClassOf):
//
//   - none: the result is stored (and sent to reply_to), then the job is acked.
//   - retryable: retried with exponential backoff and jitter within the
//     delivery, the delivery kept alive meanwhile; then naked with a growing
//     delay; on the last delivery, dead-lettered as "exhausted".
//   - permanent, or an invalid message: dead-lettered at once.
//   - systemic (Clerk rejects the key): no job is blamed. The circuit opens,
//     the worker stops fetching, holds the jobs it has (still kept alive),
//     and probes Clerk until the key is accepted again.
//
// A record (result or dead letter) is always confirmed by JetStream before
// the job is acked, on a subject of the job's own that takes one message,
// so a crash at any point means a redelivery, never a loss, and a
// redelivery never stores a second result or dead letter; a dead letter
// beside the job's result is removed (see docs/semantics.md). A job
// JetStream stops delivering (max deliveries reached without the worker
// settling it) is caught from the MAX_DELIVERIES advisory and by a
// periodic sweep, copied to the dead-letter stream as "max_deliveries",
// and only then deleted.
package worker
