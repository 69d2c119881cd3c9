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
// answers with a Result (to reply_to, and stored when it succeeded) or a
// dead letter that keeps the original payload and says in its headers why
// it failed (see DeadLetter). Each job has its own record subject in each
// stream, sessions.results.<tenant>.<op>.<id key>.<generation>.<seq> and
// sessions.dlq.<tenant>.<op>.<id key>.<generation>.<seq> (Subjects.Result,
// Subjects.DeadLetter), which takes one message: a job is never recorded
// twice. Records of the earlier layout, sessions.results.<op> and
// sessions.dlq.<op>, are still read.
package jobs
