package console

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/clerkjobs/clerkjobs/dlq"
)

// Replay and purge act on sequences, and JetStream deletes by sequence
// with no condition on what is stored there. A dead-letter stream deleted
// and created again numbers its letters from 1 again, so a plan's
// sequence may name a letter no page ever showed. The console therefore
// hands the dlq library one sequence at a time, each only after reading
// it and finding the letter the plan bound (plan.Seen).

// checkSeen reads seq and reports whether it is the letter p chose. A
// letter that is gone is let through: the library reports it as gone, as
// it would without the check.
func checkSeen(ctx context.Context, q *dlq.Queue, p *plan, seq uint64) (dlq.EntryReport, bool, error) {
	out := dlq.EntryReport{Seq: seq, Status: dlq.StatusSkipped}
	want, ok := p.Seen[seq]
	if !ok {
		out.Reason = "it was not in the dead-letter queue when this was planned, so which letter was meant is unknown: nothing done"
		return out, false, nil
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	e, err := q.Get(gctx, seq)
	cancel()
	switch {
	case errors.Is(err, dlq.ErrNotFound):
		return out, true, nil
	case err != nil:
		out.Status, out.Reason = dlq.StatusFailed, fmt.Sprintf("could not read it: %v", err)
		return out, false, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	if got := seenOf(e); got != want {
		out.JobID, out.Op = e.DeadLetter.JobID, e.Op
		out.Reason = fmt.Sprintf("sequence %d now holds another dead letter (job %s, stored %s) than the one planned (job %s, stored %s): the dead-letter stream was recreated? nothing done",
			seq, got.JobID, time.Unix(0, got.At).UTC().Format(time.RFC3339Nano), want.JobID, time.Unix(0, want.At).UTC().Format(time.RFC3339Nano))
		return out, false, nil
	}
	return out, true, nil
}

// progressFunc is told about each sequence done; refused is true when the
// console refused it (not the letter planned), so it was not touched.
type progressFunc func(o dlq.EntryReport, refused bool)

// replayBound replays (or dry-runs) p's sequences that still hold the
// letters p chose, at most perSecond a second (0: no limit), and reports
// like dlq.Queue.Replay, with the others skipped.
func replayBound(ctx context.Context, q *dlq.Queue, p *plan, dryRun bool, perSecond float64, progress progressFunc) (dlq.ReplayReport, error) {
	rep := dlq.ReplayReport{DryRun: dryRun}
	var lim *rate.Limiter
	if perSecond > 0 && !dryRun {
		lim = rate.NewLimiter(rate.Limit(perSecond), 1)
	}
	opts := []dlq.Option{dlq.WithProgress(func(o dlq.EntryReport) { progress(o, false) })}
	if dryRun {
		opts = append(opts, dlq.WithDryRun())
	}
	for i, seq := range p.Seqs {
		if err := ctx.Err(); err != nil {
			rep.NotAttempted += len(p.Seqs) - i
			return rep, err
		}
		out, ok, err := checkSeen(ctx, q, p, seq)
		if !ok {
			if err != nil {
				rep.Failed++
				rep.NotAttempted += len(p.Seqs) - i - 1
			} else {
				rep.Skipped++
			}
			rep.Problems = append(rep.Problems, out)
			progress(out, true)
			if err != nil {
				return rep, err
			}
			continue
		}
		if err := pace(ctx, lim); err != nil {
			rep.NotAttempted += len(p.Seqs) - i
			return rep, err
		}
		one, err := q.Replay(ctx, []uint64{seq}, opts...)
		rep.Replayed += one.Replayed
		rep.Duplicates += one.Duplicates
		rep.Skipped += one.Skipped
		rep.Failed += one.Failed
		rep.NotAttempted += one.NotAttempted
		rep.Problems = append(rep.Problems, one.Problems...)
		if err != nil {
			rep.NotAttempted += len(p.Seqs) - i - 1
			return rep, err
		}
	}
	return rep, nil
}

// purgeBound purges p's sequences that still hold the letters p chose and
// reports like dlq.Queue.Purge; the others are counted as not found, with
// the reason in Problems.
func purgeBound(ctx context.Context, q *dlq.Queue, p *plan, progress progressFunc) (dlq.PurgeReport, error) {
	var rep dlq.PurgeReport
	for i, seq := range p.Seqs {
		if err := ctx.Err(); err != nil {
			rep.NotAttempted += len(p.Seqs) - i
			return rep, err
		}
		out, ok, err := checkSeen(ctx, q, p, seq)
		if !ok {
			if err != nil {
				rep.Failed++
				rep.NotAttempted += len(p.Seqs) - i - 1
			} else {
				rep.NotFound++
			}
			rep.Problems = append(rep.Problems, out)
			progress(out, true)
			if err != nil {
				return rep, err
			}
			continue
		}
		one, err := q.Purge(ctx, []uint64{seq}, dlq.WithProgress(func(o dlq.EntryReport) { progress(o, false) }))
		rep.Purged += one.Purged
		rep.NotFound += one.NotFound
		rep.Failed += one.Failed
		rep.Problems = append(rep.Problems, one.Problems...)
		if err != nil {
			rep.NotAttempted += len(p.Seqs) - i - 1
			return rep, err
		}
	}
	return rep, nil
}

// pace waits for lim (nil: no limit) until ctx ends. Unlike
// rate.Limiter.Wait, it fails only when ctx really ends, with ctx's
// error, so a stop is told from a failure (as in the dlq library).
func pace(ctx context.Context, lim *rate.Limiter) error {
	if lim == nil {
		return nil
	}
	r := lim.Reserve()
	t := time.NewTimer(r.Delay())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}
