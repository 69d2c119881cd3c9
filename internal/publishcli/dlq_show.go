package publishcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

func (a *app) dlqShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter: why it failed, its history, and its payload",
		Long: `Shows a dead letter: its failure, the history of failed attempts, its headers and
the original job body, and whether ` + "`dlq replay`" + ` would send it again. Secret
fields (tokens, refresh tokens, request headers) are shown redacted, even if one
was stored in the clear. A sequence that is not in the queue exits with status 1.`,
		Example: `  publish dlq show 42
  publish dlq show 42 --json | jq .history`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		seq, err := parseSeq(args[0])
		if err != nil {
			return err
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		e, err := q.Get(ctx, seq)
		if errors.Is(err, dlq.ErrNotFound) {
			return exit(ExitNotFound, fmt.Errorf("%w; `publish dlq list` shows the dead letters there are", err))
		}
		if err != nil {
			return streamErr(err, q.Topology().DeadLetterStream)
		}
		payload := safePayload(e)
		why := replayCheck(ctx, q, e)
		if a.jsonOut {
			j := toJSON(q, e)
			j.Replayable, j.NotReplayable = why == nil, ""
			if why != nil {
				j.NotReplayable = why.Error()
			}
			j.Headers = make(map[string][]string, len(e.Header))
			for k, vs := range e.Header {
				for _, v := range vs {
					// A name is cleared too, as the text view does: a
					// header's name is anyone's text.
					name := redact.Text(k)
					j.Headers[name] = append(j.Headers[name], shownHeader(k, v))
				}
			}
			switch {
			case json.Valid(payload):
				j.Payload = payload
			case payload == nil && len(e.Payload) > 0:
				j.PayloadText = "[REDACTED: not JSON, may hold secrets]"
			default:
				j.PayloadText = string(payload)
			}
			return printJSON(a.env.Stdout, j)
		}
		showEntry(a.env.Stdout, e, payload, why, a.env.Location)
		return nil
	})
	return cmd
}

// replayCheck is the rule replay applies to e, the letter's job's result
// included: a results stream that cannot be read is not held against the
// letter here (the replay itself then keeps it, and says why).
func replayCheck(ctx context.Context, q *dlq.Queue, e dlq.Entry) error {
	if err := q.CheckReplay(e); err != nil {
		return err
	}
	if err := q.CheckResult(ctx, e); errors.Is(err, dlq.ErrNotReplayable) {
		return err
	}
	return nil
}

// showEntry prints a dead letter for a person; notReplayable is why it
// cannot be replayed (nil: it can). Every value from the dead letter is
// escaped for the terminal.
func showEntry(w io.Writer, e dlq.Entry, payload []byte, notReplayable error, loc *time.Location) {
	d := shownTexts(e)
	// Cleared of secret shapes too, as --wait does: a letter stored by a
	// worker from before it cleared Clerk's text, or written some other
	// way, may quote a key or a token.
	t := func(s string) string { return text.Terminal(redact.All(s)) }
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("dead letter", "%d on %s, stored %s (%s)", e.Seq, t(e.Subject), e.Time.In(loc).Format(time.RFC3339), ago(time.Now(), e.Time))
	if e.HeaderErr != nil {
		row("warning", "%s", t(e.HeaderErr.Error()))
	}
	if parent := e.Header.Get(jobs.HeaderParentJob); parent != "" {
		// A session a revoke_all could not revoke, dead-lettered as its own
		// revoke job: its stream sequence is the revoke_all's.
		row("job", "%s (%s, a session of revoke_all job %s)", dash(d.JobID), dash(string(e.Op)), t(parent))
	} else {
		row("job", "%s (%s, from %s seq %d)", dash(d.JobID), dash(string(e.Op)), dash(d.Subject), d.StreamSeq)
	}
	row("class", "%s", dash(string(d.Error.Class)))
	row("error", "%s", dash(d.Error.Message))
	clerkRows(row, d.Error, t)
	row("attempts", "%s", runText(e.Op, d.Attempts, d.Deliveries))
	if !d.FirstFailure.IsZero() {
		row("failures", "first %s, last %s", d.FirstFailure.In(loc).Format(time.RFC3339), d.LastFailure.In(loc).Format(time.RFC3339))
	}
	if d.Worker != "" {
		row("worker", "%s", t(d.Worker))
	}
	row("replays", "%d", d.Replays)
	if notReplayable != nil {
		row("replayable", "no: %s", t(notReplayable.Error()))
	} else {
		row("replayable", "yes: publish dlq replay %d", e.Seq)
	}
	tw.Flush()
	if len(d.History) > 0 {
		fmt.Fprintln(w, "\nhistory:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  AT\tSTATUS\tCODE\tTRACE\tERROR")
		for _, h := range d.History {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", h.At.In(loc).Format(time.RFC3339), dash(statusOrEmpty(h.Status)), dash(h.Code), dash(h.TraceID), t(h.Error))
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nheaders:")
	for _, k := range slices.Sorted(maps.Keys(e.Header)) {
		for _, v := range e.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", t(k), text.Terminal(shownHeader(k, v)))
		}
	}
	fmt.Fprintf(w, "\npayload (%d bytes):\n", e.Size)
	// Indenting grows with the square of the nesting depth: a hostile
	// job's arrays nested thousands deep are printed as stored instead.
	indented, ok := text.IndentJSON(payload, "  ", "  ", text.IndentLimit(len(payload)))
	switch {
	case payload == nil && len(e.Payload) > 0:
		fmt.Fprintln(w, "  [REDACTED: not JSON, may hold secrets]")
	case ok:
		// Valid JSON holds no raw control character, but may hold other
		// characters that act on a terminal (U+202E, DEL).
		fmt.Fprintf(w, "  %s\n", text.TerminalLines(string(indented)))
	default:
		fmt.Fprintf(w, "  %q\n", payload)
	}
}

// shownTexts is e's dead letter with each text its headers gave (the job
// id, the error, Clerk's code and message, the trace id, the field, the
// worker, the redacted names, the history's failures) as shownHeader
// prints the header it came from, so that show never prints above a
// header what the header's line hides.
func shownTexts(e dlq.Entry) jobs.DeadLetter {
	d := e.DeadLetter.MapHeaderTexts(shownHeader)
	if raw := e.Header.Get(jobs.HeaderRedacted); raw != "" {
		if shown := shownHeader(jobs.HeaderRedacted, raw); shown != raw {
			d.Redacted = []string{shown}
		}
	}
	return d
}

// shownHeader is a dead letter's header value as show prints it, as text
// and as JSON. Whether it may hold a secret is jobs.ShowHeader's judgement,
// the console's too; show then prints what is left of it redacted in place
// (a Dlq-History whose member was redacted, a URL's password as xxxxx), or
// only its length when nothing of it may be shown (a header named for a
// secret, a refresh token's field named beside a value shaped like
// nothing, a value too long to judge), as the console does.
func shownHeader(name, v string) string {
	shown, secret := jobs.ShowHeader(name, v)
	if secret && shown == "" {
		return jobs.HiddenHeader(v)
	}
	return shown
}
