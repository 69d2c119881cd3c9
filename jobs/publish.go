package jobs

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/clerkjobs/clerkjobs/internal/tracing"
)

// NewMessage checks a job against its schema and builds the message to
// publish: body, subject, and a Nats-Msg-Id naming the job (MsgID), so that
// publishing it again (a retry after a lost acknowledgement) is deduplicated
// by the jobs stream. A job without an id gets a fresh one, written into a.
func NewMessage(subj Subjects, a Args) (*nats.Msg, error) {
	c := a.CommonFields()
	if c.JobID == "" {
		c.JobID = nuid.Next()
	}
	body, err := Encode(a)
	if err != nil {
		return nil, fmt.Errorf("encode %s job: %w", a.Op(), err)
	}
	if _, err := Decode(a.Op(), body); err != nil { // Validate, on the body sent
		return nil, err
	}
	m := nats.NewMsg(subj.Job(a.Op()))
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, MsgID(subj.Tenant, c.JobID))
	return m, nil
}

// MsgID is the Nats-Msg-Id of a job: its id, prefixed with "<tenant>:" for
// a tenant's job. The jobs stream deduplicates on it, and it is one window
// for every tenant: the prefix keeps two tenants' "incident-77" apart.
func MsgID(tenant, jobID string) string {
	if tenant == "" {
		return jobID
	}
	return tenant + ":" + jobID
}

// Publish sends a job to the jobs stream and waits for JetStream to store
// it. It returns the acknowledgement, whose Sequence identifies the job in
// the stream (and Duplicate tells that it was already there: a retried
// publish of the same job). When JetStream deduplicated it against a
// different job that used the same id, the job was not queued, and Publish
// returns a *DuplicateError matching ErrJobIDReused; when the job stored
// under the id could not be compared (it ran already, and its record is
// not where this publisher's would be: another tenant may have taken the
// id), one matching ErrDuplicateUnverified, as this job may not have been
// queued either. Both come with the acknowledgement (see CheckDuplicate).
func Publish(ctx context.Context, js jetstream.JetStream, subj Subjects, a Args) (*jetstream.PubAck, error) {
	m, err := NewMessage(subj, a)
	if err != nil {
		return nil, err
	}
	// A span in ctx makes the job its child ("send <subject>"), and the
	// worker's delivery span the child of that: traces run from the
	// publisher to Clerk and back.
	ctx, span := tracing.StartSend(ctx, m)
	defer span.End()
	tracing.Inject(ctx, m)
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("publish %s job %s to %s: %w", a.Op(), a.CommonFields().JobID, m.Subject, err)
	}
	return ack, CheckDuplicate(ctx, js, subj, m, ack)
}
