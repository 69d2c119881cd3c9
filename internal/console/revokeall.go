package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// revokeAllUpdate is what a revoke_all task has heard of its job: the
// acknowledgement, then progress, then the result.
type revokeAllUpdate struct {
	Ack      *clerkjobs.Submitted
	Progress *jobs.Progress
	Result   *clerkjobs.Result
	Summary  *jobs.RevokeAllSummary
}

// revokeAll requests the plan's revoke_all job through the Go client and
// keeps its acknowledgement, every progress update and its result. A job
// that did not succeed is kept as a result (its class and error shown)
// and returned as an error too: the action failed, and its page, the
// actions list and the log line that ends it say so.
func (t *task) revokeAll(ctx context.Context, c *clerkjobs.Client) error {
	args := *t.Plan.RevokeAll
	r, err := c.Request(ctx, &args,
		clerkjobs.OnSubmitted(func(s clerkjobs.Submitted) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.Bulk.Ack = &s
		}),
		clerkjobs.OnProgress(func(p jobs.Progress) {
			t.mu.Lock()
			defer t.mu.Unlock()
			// From the job's reply subject, which others may publish to:
			// of a job planned without the lock, no worker says it, and a
			// reason is shown only in a worker's words; once said, it
			// stands until the result, matched to the job's sequence,
			// says the user locked (a later delivery's lock that took):
			// not an update without it, nor one saying locked, which
			// anyone may send to take the warning away.
			why := p.Progress.NotLocked
			if why != "" && !jobs.IsNotLockedReason(why) {
				why = "a reason not in the worker's words"
			}
			if why == "" && t.Bulk.Progress != nil {
				why = t.Bulk.Progress.Progress.NotLocked
			}
			if !args.LockUser {
				why = ""
			}
			p.Progress.NotLocked = why
			t.Bulk.Progress = &p
			t.Total, t.Done = p.Total, p.Done
		}))
	var je *clerkjobs.JobError
	if errors.As(err, &je) && je.Result != nil {
		r, err = je.Result, nil
	}
	if err != nil {
		return err
	}
	var s jobs.RevokeAllSummary
	t.mu.Lock()
	t.Bulk.Result = r
	if r.Outcome == jobs.Succeeded && json.Unmarshal(r.Result, &s) == nil {
		t.Bulk.Summary = &s
		t.Done = s.Revoked + s.AlreadyGone + s.Failed
		t.Total = t.Done
		if s.Locked && t.Bulk.Progress != nil && t.Bulk.Progress.Progress.NotLocked != "" {
			// The result, matched to the job's sequence, has the last
			// word: a later delivery's lock took, and the progress that
			// said so may have been dropped (a full inbox) or outrun by
			// another sender's. A copy: the page may hold the old one.
			p := *t.Bulk.Progress
			p.Progress.NotLocked = ""
			t.Bulk.Progress = &p
		}
	}
	t.mu.Unlock()
	if r.Outcome != jobs.Succeeded {
		why := string(r.Outcome)
		if e := r.Error; e != nil {
			why = fmt.Sprintf("%s, %s: %s", r.Outcome, e.Class, e.Message)
		}
		return fmt.Errorf("the revoke_all job %s did not succeed (%s)", args.JobID, scrub(why))
	}
	return nil
}
