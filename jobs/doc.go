// Package jobs is the contract between the services that submit Clerk
// session jobs and the worker that runs them: the job types, the NATS
// subjects and JetStream streams they travel on, the JSON Schemas every job
// is checked against, the result message, and the dead-letter record.
//
// A job is a typed value (RevokeArgs, TokenArgs, ...) published as JSON to
// its own subject:
//
//	sessions.revoke          {"session_id":"sess_123"}
//	sessions.token.request   {"session_id":"sess_123","reply_to":"_INBOX.x"}
//
// Any NATS client can publish one; Go code can use Publish, which checks
// the job against its schema first and sets Nats-Msg-Id so that a retried
// publish is deduplicated. The worker decodes each message with Decode and
// answers with a Result on sessions.results.<op> (and to reply_to), or a
// dead letter on sessions.dlq.<op> that keeps the original payload and says
// in its headers why it failed (see DeadLetter).
package jobs
