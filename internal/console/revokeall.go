package console

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// This file is the console's only job publisher: it submits a revoke_all
// job and follows its progress and result on a private inbox. A Go client
// for jobs is being written elsewhere; when it lands it replaces this file
// (submitRevokeAll's callers need only the updates it reports).

// revokeAllUpdate is what submitRevokeAll reports: the acknowledgement,
// then progress, then the result.
type revokeAllUpdate struct {
	Ack      *jetstream.PubAck
	Progress *jobs.Progress
	Result   *jobs.Result
	Summary  *jobs.RevokeAllSummary
}

// submitRevokeAll publishes args (its job id set, its reply_to a new
// inbox) and calls update with the acknowledgement and every reply until
// the result arrives or ctx ends. Publishing the same job id twice within
// the jobs stream's deduplication window runs the job once.
func submitRevokeAll(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, subj jobs.Subjects, args jobs.RevokeAllArgs, update func(revokeAllUpdate)) error {
	args.ReplyTo = nc.NewInbox()
	sub, err := nc.SubscribeSync(args.ReplyTo)
	if err != nil {
		return fmt.Errorf("listen for the revoke_all result: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort
	ack, err := jobs.Publish(ctx, js, subj, &args)
	if err != nil {
		return err
	}
	update(revokeAllUpdate{Ack: ack})
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the result of job %s: %w", args.JobID, err)
		}
		var probe struct {
			JobID   string       `json:"job_id"`
			Outcome jobs.Outcome `json:"outcome"`
		}
		if json.Unmarshal(m.Data, &probe) != nil || probe.JobID != args.JobID {
			continue
		}
		if probe.Outcome == jobs.InProgress {
			var p jobs.Progress
			if json.Unmarshal(m.Data, &p) == nil {
				update(revokeAllUpdate{Progress: &p})
			}
			continue
		}
		var r jobs.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return fmt.Errorf("result of job %s is not a result: %w", args.JobID, err)
		}
		r.Secret = nil // a revoke_all result has none; never keep one
		u := revokeAllUpdate{Result: &r}
		var s jobs.RevokeAllSummary
		if len(r.Result) > 0 && json.Unmarshal(r.Result, &s) == nil {
			u.Summary = &s
		}
		update(u)
		return nil
	}
}
