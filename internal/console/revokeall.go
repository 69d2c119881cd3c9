package console

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// revokeAllUpdate is what submitRevokeAll reports: the acknowledgement,
// then progress, then the result.
type revokeAllUpdate struct {
	Ack      *clerkjobs.Submitted
	Progress *jobs.Progress
	Result   *clerkjobs.Result
	Summary  *jobs.RevokeAllSummary
}

// submitRevokeAll requests a revoke_all job through the Go client and
// reports its acknowledgement, every progress update and its result. A
// job that failed is reported as a result (its class and error shown), not
// as an error of the console's.
func submitRevokeAll(ctx context.Context, c *clerkjobs.Client, args jobs.RevokeAllArgs, update func(revokeAllUpdate)) error {
	r, err := c.Request(ctx, &args,
		clerkjobs.OnSubmitted(func(s clerkjobs.Submitted) { update(revokeAllUpdate{Ack: &s}) }),
		clerkjobs.OnProgress(func(p jobs.Progress) { update(revokeAllUpdate{Progress: &p}) }))
	var je *clerkjobs.JobError
	if errors.As(err, &je) && je.Result != nil {
		r, err = je.Result, nil
	}
	if err != nil {
		return err
	}
	u := revokeAllUpdate{Result: r}
	var s jobs.RevokeAllSummary
	if r.Outcome == jobs.Succeeded && json.Unmarshal(r.Result, &s) == nil {
		u.Summary = &s
	}
	update(u)
	return nil
}
