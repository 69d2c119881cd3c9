package publishcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// notLockedLine is what to tell of a progress update saying the user of a
// lock_user job is NOT locked, or "". An update comes from an inbox anyone
// allowed under its prefix may publish to, and moves a bar: one of a job
// that did not ask for the lock is no worker's, and a reason is shown only
// in the words a worker uses, so that no other words pass for the
// worker's advice.
func notLockedLine(args jobs.Args, p jobs.Progress) string {
	why := p.Progress.NotLocked
	if ra, ok := args.(*jobs.RevokeAllArgs); !ok || !ra.LockUser || why == "" {
		return ""
	}
	if !jobs.IsNotLockedReason(why) {
		why = "a reason not in the worker's words"
	}
	return "user NOT locked (" + why + "): the sessions are revoked all the same; lock the user in the Clerk dashboard if the account is being taken over"
}

// requestOne publishes one job and waits for its result, showing progress
// updates.
func (a *app) requestOne(ctx context.Context, c *clerkjobs.Client, topo jobs.Topology, spec jobSpec, sf *submitFlags, item *inputJob) error {
	var bar *progress
	shown, shownPages := -1, 0
	toldNotLocked := false
	res, err := c.Request(ctx, item.args,
		clerkjobs.OnSubmitted(func(s clerkjobs.Submitted) {
			item.submitted = &s
			if !a.jsonOut {
				a.reportSubmitted(a.env.Stderr, topo, s) // standard output is the result's
			}
		}),
		clerkjobs.OnProgress(func(p jobs.Progress) {
			if bar == nil {
				max := int64(p.Total)
				if max <= 0 {
					max = -1
				}
				bar = a.newProgress(max, string(spec.op))
			}
			if line := notLockedLine(item.args, p); line != "" && !toldNotLocked {
				// What an operator containing a takeover must act on, on
				// a terminal too: told at the job's end, it came after
				// every session was revoked (for a lock Clerk does not
				// confirm, after every delivery).
				toldNotLocked = true
				bar.interrupt()
				fmt.Fprintln(a.env.Stderr, "progress: "+line)
			}
			bar.set(int64(p.Done), int64(p.Total))
			switch {
			case a.stderrTTY() || a.jsonOut:
			case p.Total == 0 && p.Done == 0:
				// A revoke_all still listing the user's sessions: nothing
				// to count yet ("0/0" read as nothing to do).
				if p.PagesRead > 0 && p.PagesRead != shownPages {
					fmt.Fprintf(a.env.Stderr, "progress: listing the sessions (pages read: %d)\n", p.PagesRead)
					shownPages = p.PagesRead
				}
			case p.Done != shown:
				fmt.Fprintf(a.env.Stderr, "progress: %d/%d\n", p.Done, p.Total)
				shown = p.Done
			}
		}))
	bar.done()
	var failed *clerkjobs.JobError
	switch {
	case errors.As(err, &failed):
		res = failed.Result
	case errors.Is(err, clerkjobs.ErrNoResult) && ctx.Err() != nil:
		return exit(ExitInterrupted, fmt.Errorf("stopped waiting: %s", noResult(topo, spec.op, item)))
	case errors.Is(err, clerkjobs.ErrNoResult) && errors.Is(err, clerkjobs.ErrUnavailable):
		// The connection closed for good after JetStream stored the job.
		var nr *clerkjobs.NoResultError
		errors.As(err, &nr)
		return exit(ExitUnavailable, fmt.Errorf("NATS went while waiting for the result (%v): %s", nr.Err, noResult(topo, spec.op, item)))
	case errors.Is(err, clerkjobs.ErrNoResult) && errors.Is(err, jobs.ErrDuplicateUnverified):
		return exit(ExitTimeout, fmt.Errorf("no result within %s: %s; and this NATS user could not compare it with the job published before under the same id: if that was another job, this one was not queued (publish it again with another --job-id)", sf.timeout, noResult(topo, spec.op, item)))
	case errors.Is(err, clerkjobs.ErrNoResult):
		return exit(ExitTimeout, fmt.Errorf("no result within %s: %s", sf.timeout, noResult(topo, spec.op, item)))
	case errors.Is(err, clerkjobs.ErrSecretLost):
		return exit(ExitTimeout, err) // it says which job, and what to do
	case err != nil:
		return a.submitErr(ctx, err, item, topo, sf)
	}
	if spec.op.Secret() && failed == nil && res.Secret.IsZero() {
		// The same job had been requested before under this id: its secret
		// went to that request's inbox, and the record found holds none.
		// Exiting 0 with no token would pass for success in a script.
		return exit(ExitJobIDReused, fmt.Errorf("%s job %s: %w; it is shown nowhere else: request a new one with another --job-id", spec.op, item.id(), clerkjobs.ErrSecretDeliveredElsewhere))
	}
	rec := res.Reveal() // this command is the requester: the secret is for its user
	clearError(&rec)
	if a.jsonOut {
		if err := printJSON(a.env.Stdout, rec); err != nil {
			return err
		}
	} else {
		printResult(a.env.Stdout, &rec)
	}
	if failed != nil {
		return exit(ExitJobFailed, nil)
	}
	return nil
}

// clearError clears a failure's texts of anything shaped like a secret:
// they are the worker's or Clerk's (or a proxy's) words, and --json shows
// them as the text output does. The secret this command asked for is in
// the record's own field, untouched.
func clearError(r *jobs.Result) {
	if r.Error != nil {
		c := r.Error.Redacted()
		r.Error = &c
	}
}

// noResult says where the result of a job that was accepted will be.
func noResult(topo jobs.Topology, op jobs.Op, item *inputJob) string {
	s := fmt.Sprintf("job %s was accepted", item.id())
	if sub := item.submitted; sub != nil {
		s += fmt.Sprintf(" (stream %s, seq %d)", sub.Stream, sub.Seq)
		if sub.Duplicate {
			s += " before, by an earlier request whose inbox its answer goes to,"
		}
	}
	s += fmt.Sprintf(" and may still run: a success is stored on %s, a failure in the dead-letter queue (publish dlq list --job-id %s)", topo.Subjects.ResultsOf(op)[0], item.id())
	if op.Secret() {
		s += "; its answer was meant for this command only and will not be shown anywhere: request a new one"
	}
	return s
}

// printResult shows a result to a person.
func printResult(w io.Writer, r *jobs.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// Everything shown comes from elsewhere (ids, Clerk's text): printed
	// with control characters escaped, so it cannot act on the terminal.
	row := func(k, format string, a ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", k, text.Terminal(fmt.Sprintf(format, a...)))
	}
	row("job", "%s", r.JobID)
	row("op", "%s", r.Op)
	row("outcome", "%s", r.Outcome)
	calls := r.ClerkCalls
	if calls == 0 && r.Op != jobs.OpRevokeAll {
		calls = r.Attempts // a worker from before clerk_calls
	}
	run := plural(calls, "Clerk call", "Clerk calls") + ", " + plural(r.Deliveries, "delivery", "deliveries")
	if r.DurationMS > 0 {
		run += fmt.Sprintf(", %s", time.Duration(r.DurationMS*float64(time.Millisecond)).Round(time.Millisecond))
	}
	if r.Worker != "" {
		run += ", worker " + r.Worker
	}
	row("run", "%s", run)
	if e := r.Error; e != nil {
		// The error's text is the worker's or Clerk's (or a proxy's, or a
		// forger's): cleared of anything shaped like a secret. The secret
		// this command asked for is shown below, never in these rows.
		row("error", "%s: %s", e.Class, redact.Text(e.Message))
		clerkRows(row, *e, func(s string) string { return redact.Text(s) })
		row("next", "it is in the dead-letter queue: publish dlq list --job-id %s", r.JobID)
	}
	if r.AlreadyRevoked {
		row("note", "the session was no longer active: nothing changed")
	}
	if r.Op == jobs.OpRevokeAll {
		describeRevokeAll(row, r.Result)
	} else {
		describeClerk(row, r.Result)
	}
	describeSecret(row, r.Secret)
	tw.Flush()
}

// clerkRows shows what Clerk said of a failure, and where, each text
// through clean.
func clerkRows(row func(k, format string, a ...any), e jobs.ErrorInfo, clean func(string) string) {
	if e.HTTPStatus != 0 || e.ClerkCode != "" {
		status := ""
		if e.HTTPStatus != 0 {
			status = fmt.Sprintf("HTTP %d", e.HTTPStatus)
		}
		row("clerk", "%s", clean(strings.TrimSpace(fmt.Sprintf("%s %s %s", status, e.ClerkCode, e.ClerkMessage))))
	}
	if e.TraceID != "" {
		row("trace", "%s", clean(e.TraceID))
	}
	if e.Field != "" {
		row("field", "%s", clean(e.Field))
	}
}

type session struct {
	Object string `json:"object"`
	ID     string `json:"id"`
	Status string `json:"status"`
	UserID string `json:"user_id"`
}

func (s session) String() string {
	return fmt.Sprintf("%s  %s  user %s", s.ID, s.Status, s.UserID)
}

// describeClerk shows the Clerk answer: sessions in a line each, anything
// else as indented JSON.
func describeClerk(row func(k, format string, a ...any), raw json.RawMessage) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var s session
	if json.Unmarshal(raw, &s) == nil && s.Object == "session" {
		row("session", "%s", s)
		return
	}
	var list struct {
		Data       []session `json:"data"`
		TotalCount *int      `json:"total_count"`
	}
	if json.Unmarshal(raw, &list) == nil && list.Data != nil {
		n := fmt.Sprint(len(list.Data))
		if list.TotalCount != nil {
			n += fmt.Sprintf(" of %d", *list.TotalCount)
		}
		row("sessions", "%s", n)
		for _, s := range list.Data {
			row("", "%s", s)
		}
		return
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return
	}
	rows(row, "result", strings.Split(buf.String(), "\n"))
}

// rows shows values a row each, the first under key.
func rows(row func(k, format string, a ...any), key string, values []string) {
	for _, v := range values {
		row(key, "%s", v)
		key = ""
	}
}

// describeSecret shows the secret answer of a token or refresh job: this
// command is its requester.
func describeSecret(row func(k, format string, a ...any), raw json.RawMessage) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var s struct {
		Object  string   `json:"object"`
		JWT     string   `json:"jwt"`
		Cookies []string `json:"cookies"`
	}
	switch {
	case json.Unmarshal(raw, &s) != nil:
	case s.JWT != "":
		row("token", "%s", s.JWT)
		return
	case len(s.Cookies) > 0:
		rows(row, "cookies", s.Cookies)
		return
	}
	row("secret", "%s", string(raw))
}

// describeRevokeAll shows a revoke_all summary.
func describeRevokeAll(row func(k, format string, a ...any), raw json.RawMessage) {
	var s jobs.RevokeAllSummary
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		describeClerk(row, raw)
		return
	}
	row("revoked", "%d sessions of %s (%d had ended already, %d kept as asked)", s.Revoked, s.UserID, s.AlreadyGone, s.Excepted)
	// The lock asked for (--lock): whether the user is locked, and until
	// when, is what an operator containing a takeover needs next.
	switch {
	case s.Locked && s.LockedUntil != nil:
		row("locked", "until %s (it ends on its own; unlock sooner in the Clerk dashboard)", s.LockedUntil.UTC().Format(time.RFC3339))
	case s.Locked:
		row("locked", "with no end (unlock in the Clerk dashboard)")
	}
	if s.Remaining > 0 {
		row("active", "%d sessions still, created as fast as they were revoked: lock the user (--lock)", s.Remaining)
	}
	if s.Failed > 0 {
		row("failed", "%d, each dead-lettered as its own revoke job: %s", s.Failed, strings.Join(s.FailedSessionIDs, ", "))
	}
}
