package publishcli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

func (a *app) dlqListCommand() *cobra.Command {
	var sel selection
	var limit int
	cmd := &cobra.Command{
		Use:   "list [SEQ...]",
		Short: "List dead letters",
		Long: `Lists dead letters, oldest first: a table on a terminal, NDJSON (one object per
dead letter) when standard output is not a terminal or with --json.`,
		Example: `  publish dlq list
  publish dlq list --op revoke,token --class exhausted --since 2h
  publish dlq list --code rate_limit_exceeded --json | jq .job_id
  publish dlq list --job-id incident-42-sess_2abc`,
	}
	sel.define(cmd.Flags(), false)
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if limit < 0 {
			return usagef("--limit %d: want a count of dead letters to show, or 0 for all", limit)
		}
		f, err := sel.filter(a.now(), args)
		if err != nil {
			return err
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		table := a.env.IsTerminal(a.env.Stdout) && !a.jsonOut
		var tw *tabwriter.Writer
		var opts []dlq.Option
		if table {
			tw = tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tOP\tCLASS\tSTATUS\tCODE\tJOB ID\tREPLAYS\tERROR")
			// The table shows headers only; JSON says whether each entry
			// can be replayed, which takes its payload.
			opts = append(opts, dlq.WithoutPayload())
		}
		n, malformed := 0, 0
		now := a.now()
		for e, err := range q.Entries(ctx, f, opts...) {
			if err != nil {
				return streamErr(err, q.Topology().DeadLetterStream)
			}
			n++
			if e.HeaderErr != nil {
				malformed++
			}
			if !table {
				if err := printJSON(a.env.Stdout, toJSON(q, e)); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(tw, listRow(e, now))
				if n%1000 == 0 {
					tw.Flush()
				}
			}
			if limit > 0 && n >= limit {
				break
			}
		}
		if table {
			tw.Flush()
			switch {
			case n == 0:
				fmt.Fprintln(a.env.Stderr, "no dead letters match")
			case limit > 0 && n >= limit:
				fmt.Fprintf(a.env.Stderr, "%s shown (--limit %d)\n", plural(n, "dead letter", "dead letters"), limit)
			default:
				fmt.Fprintf(a.env.Stderr, "%s\n", plural(n, "dead letter", "dead letters"))
			}
			if malformed > 0 {
				fmt.Fprintf(a.env.Stderr, "%d with missing or malformed headers (class marked ?): inspect them with `publish dlq show SEQ`\n", malformed)
			}
		}
		return nil
	})
	return cmd
}

// listRow is e as a row of dlq list's table, its columns apart by tabs. Its
// texts are printed as their headers are (shownTexts), judged before they
// are cut: a secret cut in two is no longer seen.
func listRow(e dlq.Entry, now time.Time) string {
	d := shownTexts(e)
	class := dash(string(d.Error.Class))
	if e.HeaderErr != nil {
		class += "?"
	}
	t := text.Terminal // each column apart: the tabs between them stay
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s", e.Seq, e.Time.In(now.Location()).Format("2006-01-02 15:04:05")+" ("+ago(now, e.Time)+")",
		t(dash(string(e.Op))), t(class), dash(statusOrEmpty(d.Error.HTTPStatus)), t(dash(d.Error.ClerkCode)), t(dash(d.JobID)), d.Replays,
		t(text.Truncate(d.Error.Message, 60)))
}
