package publishcli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

func (a *app) dlqReplayCommand() *cobra.Command {
	var sel selection
	var dryRun bool
	var rateFlag string
	cmd := &cobra.Command{
		Use:   "replay [SEQ...]",
		Short: "Send dead letters back to the jobs stream",
		Long: `Republishes each selected dead letter's original job to its original subject and
deletes the dead letter once JetStream has acknowledged the job. The job gets a
new Nats-Msg-Id, replay-<stream creation>-<dead-letter seq>-<replay count>, so the jobs stream does
not mistake it for the original, and headers Replay-Count and Replay-Of.

Safe to interrupt and run again: an entry whose job was acknowledged but whose
dead letter was not deleted yet gets the same message id again, and the jobs
stream drops it as a duplicate if the re-run comes within its deduplication window
(2 minutes by default); another job found under that id keeps the dead letter.
Replay stops at the first error.

Entries that cannot succeed are skipped and stay in the queue (` + "`dlq show`" + ` says
why, by the same rule): refresh jobs whose secrets were redacted, bodies that are
not a valid job for their subject, jobs from no job subject, jobs that have a
result (they succeeded: purge those letters). A letter whose job ran again since
(an earlier replay's, or published again: a newer record of the same job) is
removed without sending it. When no worker
answers, replay says so: the jobs wait in the jobs stream until one runs.

Sequences given with filters are replayed only while their letters match the
filters: give the job id dlq list showed with a sequence, and a letter that took
that sequence since (the dead-letter stream created again) is kept. Sequences
alone are taken as they are; each letter replayed is named (job id, op, class,
when it was stored, its error) so you can see it was the one meant.`,
		Example: `  publish dlq replay 42 43
  publish dlq replay 42 --job-id incident-7-sess_2abc
  publish dlq replay --class exhausted --since 2h --dry-run
  publish dlq replay --class exhausted,max_deliveries --rate 20
  publish dlq replay --all --json`,
	}
	sel.define(cmd.Flags(), true)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be replayed, change nothing")
	cmd.Flags().StringVar(&rateFlag, "rate", "", "at most this many jobs per second (20, 20/s, 600/m); default: no limit")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		f, err := sel.filter(a.now(), args)
		if err != nil {
			return err
		}
		perSec, err := dlq.ParseRate(rateFlag)
		if err != nil {
			return usagef("--rate %v", err)
		}
		if err := sel.check(f); err != nil {
			return err
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		seqs, chosen, err := selectSeqs(ctx, q, f)
		if err != nil {
			return err
		}
		if len(seqs) == 0 {
			return a.summary(dlq.ReplayReport{DryRun: dryRun}, "no dead letters match: nothing to replay")
		}
		// Sequences alone have nothing to check their letters against:
		// each letter replayed is named, so that the operator sees whether
		// it is the one meant, and only the letter read here is replayed
		// (not another that takes its sequence during a long --rate run).
		var named map[uint64]dlq.Entry
		if sel.bareSeqs(f) {
			if _, named, err = chosenEntries(ctx, q, dlq.Filter{Seqs: seqs}); err != nil {
				return err
			}
		}
		a.warnNoWorker(ctx, q.Topology(), dryRun)
		desc := "replaying"
		if dryRun {
			desc = "checking"
		}
		bar := a.newProgress(int64(len(seqs)), desc)
		opts := []dlq.Option{dlq.WithRate(perSec), dlq.WithProgress(func(o dlq.EntryReport) {
			bar.add(1)
			e, isNamed := named[o.Seq]
			switch {
			case a.jsonOut:
				_ = printJSON(a.env.Stdout, o)
			case isNamed && (o.Status == dlq.StatusWouldReplay || o.Status == dlq.StatusReplayed):
				fmt.Fprintf(a.env.Stdout, "%s %s, to %s\n", strings.ReplaceAll(string(o.Status), "_", " "), a.letterText(e), text.Terminal(dash(shownHeader(jobs.HeaderSubject, o.Subject))))
			case dryRun && o.Status == dlq.StatusWouldReplay:
				fmt.Fprintln(a.env.Stdout, text.Terminal(fmt.Sprintf("would replay %d: job %s (%s) to %s", o.Seq,
					dash(shownHeader(jobs.HeaderJobID, o.JobID)), dash(string(o.Op)), dash(shownHeader(jobs.HeaderSubject, o.Subject)))))
			}
		})}
		if dryRun {
			opts = append(opts, dlq.WithDryRun())
		}
		switch {
		case chosen != nil:
			opts = append(opts, dlq.WithExpect(stillChosen(chosen)))
		case named != nil:
			opts = append(opts, dlq.WithExpect(stillChosen(named)))
		case sel.hasFilter(): // sequences with filters: checked as each is replayed
			opts = append(opts, dlq.WithExpect(stillMatches(f)))
		}
		rep, rerr := q.Replay(ctx, seqs, opts...)
		bar.done()
		if err := a.summary(rep, replayText(rep)); err != nil {
			return err
		}
		return actionEnd(ctx, rerr, "replayed", rep.Replayed, rep.NotAttempted, rep.Skipped > 0 && !dryRun)
	})
	return cmd
}

// selectSeqs resolves a replay selection to sequences, and the letters a
// filter chose under them (nil for sequences given, returned as they are:
// Replay reports those not in the queue, and those that no longer match
// the filters given with them, see stillMatches). A replay paced by --rate
// runs for a while: the letters chosen are replayed only if still there,
// not others that took their sequences since (see stillChosen).
func selectSeqs(ctx context.Context, q *dlq.Queue, f dlq.Filter) ([]uint64, map[uint64]dlq.Entry, error) {
	if len(f.Seqs) > 0 {
		var seqs []uint64 // each once, as Replay takes them
		for _, s := range f.Seqs {
			if !slices.Contains(seqs, s) {
				seqs = append(seqs, s)
			}
		}
		return seqs, nil, nil
	}
	return chosenEntries(ctx, q, f)
}

// chosenEntries reads the dead letters f selects, without their payloads:
// their sequences, and the letters under them (see stillChosen).
func chosenEntries(ctx context.Context, q *dlq.Queue, f dlq.Filter) ([]uint64, map[uint64]dlq.Entry, error) {
	var seqs []uint64
	chosen := map[uint64]dlq.Entry{}
	for e, err := range q.Entries(ctx, f, dlq.WithoutPayload()) {
		if err != nil {
			return nil, nil, streamErr(err, q.Topology().DeadLetterStream)
		}
		seqs = append(seqs, e.Seq)
		chosen[e.Seq] = e
	}
	return seqs, chosen, nil
}

// warnNoWorker says on standard error when no worker answers: replayed
// jobs would wait until one runs, and a replay that seems to do nothing is
// worse than one that says why.
func (a *app) warnNoWorker(ctx context.Context, topo jobs.Topology, dryRun bool) {
	// One answer is enough, so a generous wait costs only when none comes.
	workers, err := a.pingWorkers(ctx, a.nc, 2*time.Second, 1)
	would := ""
	if dryRun {
		would = "would "
	}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		fmt.Fprintf(a.env.Stderr, "publish: could not ask whether a worker runs: %s\n", text.TerminalLines(err.Error()))
	case len(workers) == 0:
		fmt.Fprintf(a.env.Stderr, "publish: no worker answered (%s): the replayed jobs %swait in %s until one runs; `publish status` lists the workers\n",
			workerPingSubject, would, topo.JobsStream)
	}
}

// replayText is a replay's summary for a person: its problems, then its
// counts.
func replayText(rep dlq.ReplayReport) string {
	lines, _ := capped(rep.Problems, func(dlq.EntryReport) bool { return true }, func(p dlq.EntryReport) string {
		return fmt.Sprintf("%s %d (job %s, %s): %s", p.Status, p.Seq, dash(p.JobID), dash(string(p.Op)), text.Terminal(p.Reason))
	}, "... and %d more (--json lists them all)")
	verb := "replayed"
	if rep.DryRun {
		verb = "would replay"
	}
	s := fmt.Sprintf("%s %d", verb, rep.Replayed)
	if rep.Duplicates > 0 {
		s += fmt.Sprintf(" (%d had been republished by an interrupted run and were only removed from the queue)", rep.Duplicates)
	}
	s += fmt.Sprintf(", skipped %d, failed %d", rep.Skipped, rep.Failed)
	if rep.NotAttempted > 0 {
		s += fmt.Sprintf(", not attempted %d", rep.NotAttempted)
	}
	return strings.Join(append(lines, s), "\n")
}
