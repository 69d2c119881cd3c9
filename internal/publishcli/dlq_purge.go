package publishcli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
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
letters match the filters (give the job id dlq list showed with a sequence).
Sequences alone are taken as they are; each letter is named (job id, op, class,
when it was stored, its error) before you confirm and once purged.`,
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
		// Sequences with filters: each read as it is, so that one whose
		// letter no longer matches (see stillMatches) is named and kept,
		// not taken for one that is gone.
		seqsFiltered, read := len(f.Seqs) > 0 && sel.hasFilter(), f
		if seqsFiltered {
			read = dlq.Filter{Seqs: f.Seqs}
		}
		all, present, err := chosenEntries(ctx, q, read)
		if err != nil {
			return err
		}
		var seqs, mismatched []uint64
		chosen := map[uint64]dlq.Entry{}
		for _, s := range all {
			if seqsFiltered && !f.Match(present[s]) {
				mismatched = append(mismatched, s)
			} else {
				seqs, chosen[s] = append(seqs, s), present[s]
			}
		}
		byKind := map[string]int{}
		for _, e := range chosen {
			byKind[dash(string(e.Op))+"/"+dash(string(e.DeadLetter.Error.Class))]++
		}
		var gone []uint64
		for _, s := range slices.Compact(slices.Sorted(slices.Values(f.Seqs))) {
			if _, ok := present[s]; !ok {
				gone = append(gone, s)
			}
		}
		if len(gone) > 0 {
			fmt.Fprintln(a.env.Stderr, a.goneText(ctx, q, gone))
		}
		if len(mismatched) > 0 {
			fmt.Fprintf(a.env.Stderr, "kept %s (%s): %v\n", plural(len(mismatched), "dead letter", "dead letters"), seqList(mismatched), errNoLongerMatches)
		}
		if len(seqs) == 0 {
			s := "no dead letters match: nothing to purge"
			if len(f.Seqs) > 0 && len(mismatched) == 0 {
				s = "nothing to purge: the dead letters given are not in the queue"
			}
			if err := a.summary(dlq.PurgeReport{NotFound: len(gone), Skipped: len(mismatched)}, s); err != nil {
				return err
			}
			return actionEnd(ctx, nil, "purged", 0, 0, len(mismatched) > 0 && !dryRun)
		}
		what := fmt.Sprintf("%s (%s)", plural(len(seqs), "dead letter", "dead letters"), kinds(byKind))
		// Sequences alone are taken as they are: name each letter, so that
		// the operator sees whether it is the one meant.
		bare := sel.bareSeqs(f) && !a.jsonOut
		if dryRun {
			if a.jsonOut {
				return printJSON(a.env.Stdout, map[string]any{"would_purge": seqs})
			}
			if bare {
				for _, s := range seqs {
					fmt.Fprintf(a.env.Stdout, "would purge %s\n", a.letterText(chosen[s]))
				}
			}
			fmt.Fprintf(a.env.Stdout, "would purge %s: %s\n", what, seqList(seqs))
			return nil
		}
		if !yes {
			if !a.env.IsTerminal(a.env.Stdin) {
				return usagef("refusing to purge %s without confirmation: standard input is not a terminal to ask on; add --yes", what)
			}
			if bare {
				for _, s := range seqs {
					fmt.Fprintln(a.env.Stderr, a.letterText(chosen[s]))
				}
			}
			fmt.Fprintf(a.env.Stderr, "This deletes %s for good.\nType yes to purge them: ", what)
			answer, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
			if err != nil {
				fmt.Fprintln(a.env.Stderr) // end the prompt's line
			}
			if strings.TrimSpace(answer) != "yes" {
				return invalidf("not confirmed: nothing was purged")
			}
		}
		bar := a.newProgress(int64(len(seqs)), "purging")
		rep, perr := q.Purge(ctx, seqs, dlq.WithProgress(func(o dlq.EntryReport) {
			bar.add(1)
			if bare && o.Status == dlq.StatusPurged {
				fmt.Fprintf(a.env.Stdout, "purged %s\n", a.letterText(chosen[o.Seq]))
			}
		}), dlq.WithExpect(stillChosen(chosen)))
		bar.done()
		rep.NotFound += len(gone)
		s := fmt.Sprintf("purged %d", rep.Purged)
		switch {
		case rep.NotFound == 1:
			s += " (1 was gone already)"
		case rep.NotFound > 1:
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

// goneText names the sequences given to a purge that are not in the queue.
// Purging a letter that is gone already leaves the queue as asked: the
// purge still exits 0 (run again after an interruption, it must), but says
// which were gone, and which are past the stream's last sequence (a
// mistyped number, most likely: the letter meant is still there).
func (a *app) goneText(ctx context.Context, q *dlq.Queue, gone []uint64) string {
	if t := q.Topology().Subjects.Tenant; t != "" {
		// Another tenant's letter is not this one's to name.
		return fmt.Sprintf("not in the dead-letter queue of tenant %s, nothing to purge there: %s (gone already: replayed, purged or expired; or another tenant's)", t, seqList(gone))
	}
	last := uint64(math.MaxUint64) // unknown: every one is said gone
	if _, _, js, err := a.jetStream(); err == nil {
		if s, err := js.Stream(ctx, q.Topology().DeadLetterStream); err == nil {
			last = s.CachedInfo().State.LastSeq
		}
	}
	var before, never []uint64
	for _, s := range gone {
		if s <= last {
			before = append(before, s)
		} else {
			never = append(never, s)
		}
	}
	// "dead letter 42 is", "dead letters 42 43 are".
	name := func(seqs []uint64, one, many string) string {
		if len(seqs) == 1 {
			return one + " " + seqList(seqs) + " is"
		}
		return many + " " + seqList(seqs) + " are"
	}
	var lines []string
	if len(before) > 0 {
		lines = append(lines, name(before, "dead letter", "dead letters")+" gone already (replayed, purged or expired): nothing to purge there")
	}
	if len(never) > 0 {
		lines = append(lines, fmt.Sprintf("%s past the last of the dead-letter stream (%d): never in it (a mistyped number? the letter meant is still there) or in one deleted since; nothing purged there",
			name(never, "sequence", "sequences"), last))
	}
	return strings.Join(lines, "\n")
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
