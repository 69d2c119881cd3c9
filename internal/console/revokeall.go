package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
// job that did not succeed is reported as a result (its class and error
// shown) and returned as an error too: the action failed, and its page,
// the actions list and the log line that ends it say so.
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
	if r.Outcome != jobs.Succeeded {
		why := string(r.Outcome)
		if e := r.Error; e != nil {
			why = fmt.Sprintf("%s, %s: %s", r.Outcome, e.Class, e.Message)
		}
		return fmt.Errorf("the revoke_all job %s did not succeed (%s)", args.JobID, scrub(why))
	}
	return nil
}
