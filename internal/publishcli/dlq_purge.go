package publishcli

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clerkjobs/clerkjobs/dlq"
)

func (a *app) dlqPurgeCommand() *cobra.Command {
	var sel selection
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:   "purge [SEQ...]",
		Short: "Delete dead letters for good",
		Long: `Deletes the selected dead letters. It shows how many it selected and asks you to
type "yes" first; without a terminal to ask on, it refuses unless --yes is given.
Only the dead letters selected before the confirmation are deleted, never ones
that arrive meanwhile. Sequences given with filters are purged only while their
letters match the filters (give the job id dlq list showed with a sequence).`,
		Example: `  publish dlq purge 42
  publish dlq purge 42 --job-id incident-7-sess_2abc
  publish dlq purge --class invalid --until 24h
  publish dlq purge --op token --class permanent --yes`,
	}
	sel.define(cmd.Flags(), true)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be purged, change nothing")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		f, err := sel.filter(a.now(), args)
		if err != nil {
			return err
		}
		if err := sel.check(f); err != nil {
			return err
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		// Read what is selected, so the confirmation says what goes.
		var seqs, mismatched []uint64
		var chosen map[uint64]dlq.Entry
		present := 0
		if len(f.Seqs) > 0 && sel.hasFilter() {
			// Sequences with filters: each read as it is, so that one whose
			// letter no longer matches (see stillMatches) is named and
			// kept, not taken for one that is gone.
			all, entries, err := chosenEntries(ctx, q, dlq.Filter{Seqs: f.Seqs})
			if err != nil {
				return err
			}
			present, chosen = len(all), map[uint64]dlq.Entry{}
			for _, s := range all {
				if f.Match(entries[s]) {
					seqs, chosen[s] = append(seqs, s), entries[s]
				} else {
					mismatched = append(mismatched, s)
				}
			}
		} else {
			if seqs, chosen, err = chosenEntries(ctx, q, f); err != nil {
				return err
			}
			present = len(seqs)
		}
		byKind := map[string]int{}
		for _, e := range chosen {
			byKind[dash(string(e.Op))+"/"+dash(string(e.DeadLetter.Error.Class))]++
		}
		if missing := len(slices.Compact(slices.Sorted(slices.Values(f.Seqs)))) - present; len(f.Seqs) > 0 && missing > 0 {
			fmt.Fprintf(a.env.Stderr, "%d of the given sequences are not in the dead-letter queue\n", missing)
		}
		if len(mismatched) > 0 {
			fmt.Fprintf(a.env.Stderr, "kept %s (%s): %v\n", plural(len(mismatched), "dead letter", "dead letters"), seqList(mismatched), errNoLongerMatches)
		}
		if len(seqs) == 0 {
			if err := a.summary(dlq.PurgeReport{Skipped: len(mismatched)}, "no dead letters match: nothing to purge"); err != nil {
				return err
			}
			return actionEnd(ctx, nil, "purged", 0, 0, len(mismatched) > 0 && !dryRun)
		}
		what := fmt.Sprintf("%s (%s)", plural(len(seqs), "dead letter", "dead letters"), kinds(byKind))
		if dryRun {
			if a.jsonOut {
				return printJSON(a.env.Stdout, map[string]any{"would_purge": seqs})
			}
			fmt.Fprintf(a.env.Stdout, "would purge %s: %s\n", what, seqList(seqs))
			return nil
		}
		if !yes {
			if !a.env.IsTerminal(a.env.Stdin) {
				return usagef("refusing to purge %s without confirmation: standard input is not a terminal to ask on; add --yes", what)
			}
			fmt.Fprintf(a.env.Stderr, "This deletes %s for good.\nType yes to purge them: ", what)
			answer, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
			if err != nil {
				fmt.Fprintln(a.env.Stderr) // end the prompt's line
			}
			if strings.TrimSpace(answer) != "yes" {
				return usagef("not confirmed: nothing was purged")
			}
		}
		bar := a.newProgress(int64(len(seqs)), "purging")
		rep, perr := q.Purge(ctx, seqs, dlq.WithProgress(func(dlq.EntryReport) { bar.add(1) }), dlq.WithExpect(stillChosen(chosen)))
		bar.done()
		s := fmt.Sprintf("purged %d", rep.Purged)
		if rep.NotFound > 0 {
			s += fmt.Sprintf(" (%d were gone already)", rep.NotFound)
		}
		if rep.Skipped > 0 {
			s += fmt.Sprintf(", kept %d that are no longer the dead letters selected (the dead-letter stream was created again): list them again", rep.Skipped)
		}
		if len(mismatched) > 0 {
			s += fmt.Sprintf(", kept %d that do not match the filters given with their sequences", len(mismatched))
		}
		rep.Skipped += len(mismatched)
		if rep.NotAttempted > 0 {
			s += fmt.Sprintf(", not attempted %d", rep.NotAttempted)
		}
		if err := a.summary(rep, s); err != nil {
			return err
		}
		return actionEnd(ctx, perr, "purged", rep.Purged, rep.NotAttempted, rep.Skipped > 0)
	})
	return cmd
}

// stillChosen accepts a dead letter for a purge or a replay only if it is
// the one selected under its sequence (same subject, stored at the same
// time). A purge's confirmation may take the operator minutes, a replay
// paced by --rate hours, and sequences name letters only within one
// stream: one deleted and created again meanwhile numbers new letters from
// 1, and those were never selected.
func stillChosen(chosen map[uint64]dlq.Entry) func(dlq.Entry) error {
	return func(e dlq.Entry) error {
		if c, ok := chosen[e.Seq]; !ok || c.Subject != e.Subject || !c.Time.Equal(e.Time) {
			return errors.New("not the dead letter selected under this sequence (the dead-letter stream was created again since): left as it is")
		}
		return nil
	}
}
