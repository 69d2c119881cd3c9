// Package clerkjobs is the Go client for services that publish Clerk
// session jobs to the clerkjobs worker and need the answer: a session
// revoked, a session token, a revoke_all summary. It is built on the
// *nats.Conn a service already has:
//
//	c, err := clerkjobs.NewClient(nc)
//	tok, err := c.SessionToken(ctx, "sess_123", nil)
//	var failed *clerkjobs.JobError
//	switch {
//	case errors.As(err, &failed): // the job failed: failed.Class says what to do
//	case errors.Is(err, clerkjobs.ErrNoResult): // accepted, may still run: Wait later
//	case err != nil: // invalid job (jobs.ErrInvalid), NATS unavailable (ErrUnavailable)
//	}
//	useToken(tok.JWT())
//
// Submit publishes a job and returns once JetStream has stored it; Request
// also waits for its answer on a private inbox; Wait finds what became of a
// job submitted earlier (by this process before a restart, or by anyone
// else of the same tenant) in the results and dead-letter streams. Every
// rule of talking to the worker lives here once:
//
//   - the job is checked against its schema before anything is published,
//     and published with a Nats-Msg-Id naming it, so a retried publish is
//     deduplicated; a publish JetStream deduplicated against a different job
//     that used the same id is an error matching jobs.ErrJobIDReused, and
//     the same job published twice stays harmless;
//   - the inbox is subscribed (and the subscription confirmed by the
//     server) before the job is published, so no answer can come first;
//   - a job that was published before answers the inbox of its first
//     request: Request then waits for its record instead;
//   - progress updates of long jobs go to a callback, and messages on the
//     inbox that are not this job's answer are skipped;
//   - a failure is a *JobError carrying its class, Clerk's status, code and
//     trace id, and the dead letter's sequence;
//   - the secret answer of a token or refresh job is a Secret (or a Token),
//     which prints as [REDACTED] whatever the verb, and is revealed only by
//     asking for it.
//
// A service that NATS confines to its own subjects and inboxes (see
// deploy/README.md, "Tenants") uses WithTenant: its jobs are published on
// its tenant's subjects, its inboxes are made under _INBOX.<tenant>, and
// Wait reads only its own records. The service's connection must make its
// inboxes there too (nats.CustomInboxPrefix), since JetStream's
// acknowledgements are replies as well.
//
// Package clerkjobstest runs the whole system (NATS with JetStream, the
// Clerk emulator, a worker) inside a test, with a Client for it.
package clerkjobs
