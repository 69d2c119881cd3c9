package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// letterLookback is how far back a worker's first sweep of the dead
// letters reads: letters stored while no worker ran (a fleet restarted)
// are looked at too.
const letterLookback = 10 * time.Minute

// letterSweep is where the sweep of the dead letters is.
type letterSweep struct {
	since   time.Time // where the first pass starts
	next    uint64    // the first sequence not looked at; 0 until found from since
	upTo    uint64    // the stream's last sequence at the previous pass
	created time.Time // the stream's creation: a new stream starts at 1 again
}

// sweepLetters removes, every SweepInterval, the dead letters whose job
// has a result. store's checks leave such a letter only when its writer
// died between storing it and looking for the result, while the result's
// writer had looked before the letter was there (or a leader answered
// before it had applied the other's record); the sweep catches those.
// Each pass looks at the letters stored before the previous pass, so that
// their writers have had a whole interval to look for themselves.
func (r *records) sweepLetters(ctx context.Context) {
	s := letterSweep{since: time.Now().Add(-letterLookback)}
	for range clock.Ticks(ctx, r.w.cfg.SweepInterval) {
		if err := r.sweepLettersOnce(ctx, &s); err != nil && ctx.Err() == nil {
			r.w.cfg.Logger.Warn().Err(err).Msg("dead-letter sweep stopped; the next one goes on from there")
		}
	}
}

// sweepLettersOnce is one pass.
func (r *records) sweepLettersOnce(ctx context.Context, s *letterSweep) error {
	topo := r.w.cfg.Topology
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	st, err := r.w.js.Stream(cctx, topo.DeadLetterStream)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil // nothing to sweep; the stream is created again with the next record
	case err != nil:
		return fmt.Errorf("read the dead-letter stream's state: %w", err)
	}
	info := st.CachedInfo()
	if !s.created.IsZero() && (!info.Created.Equal(s.created) || info.State.LastSeq < s.upTo) {
		// Deleted and created again: its letters are numbered from 1.
		s.next, s.upTo = 1, 0
	}
	s.created = info.Created
	upTo := s.upTo
	s.upTo = info.State.LastSeq
	for ctx.Err() == nil && (s.next == 0 || s.next <= upTo) {
		req := msgGet{NextFor: topo.Subjects.DeadLetterFilter()}
		if s.next == 0 {
			req.StartTime = &s.since
		} else {
			req.Seq = s.next
		}
		m, err := r.getOnLeader(ctx, topo.DeadLetterStream, req)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			if s.next == 0 {
				// No letter since then: the next ones come after the
				// stream's last sequence.
				s.next = s.upTo + 1
			}
			return nil
		case err != nil:
			return fmt.Errorf("read the dead letters from seq %d: %w", s.next, err)
		case m.Seq > upTo:
			s.next = m.Seq // stored since the previous pass: the next pass's
			return nil
		}
		s.next = m.Seq + 1
		if err := r.sweepLetter(ctx, m); err != nil {
			s.next = m.Seq
			return err
		}
	}
	return nil
}

// sweepLetter removes the dead letter m if its job has a result (a result
// of another job beside it, which only a jobs stream created again can
// cause, leaves it).
func (r *records) sweepLetter(ctx context.Context, m storedMsg) error {
	topo := r.w.cfg.Topology
	result, ok := topo.Subjects.ResultBeside(m.Subject)
	if !ok {
		return nil
	}
	res, err := r.getOnLeader(ctx, topo.ResultsStream, msgGet{LastFor: result})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look for the result beside dead letter seq %d: %w", m.Seq, err)
	case !sameJob(res.digest(), m.digest()):
		return nil
	}
	removed, err := r.removeLetter(ctx, m.Seq, m.Subject)
	if errors.Is(err, errDeleteDenied) {
		// No pass removes it: said once, and the sweep goes on past it.
		r.w.cfg.Logger.Warn().Uint64("dead_letter_seq", m.Seq).Str("dead_letter", text.Line(redact.All(m.Subject), 200)).
			Msg("a dead letter beside its job's result cannot be removed: the dead-letter stream denies deletes " +
				"(deny_delete, set while the workers run); nats stream purge --subject removes it")
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove dead letter seq %d, whose job has a result: %w", m.Seq, err)
	}
	if removed {
		// The subject is whatever was stored on the stream's filter:
		// cleared of secrets, bounded and on one line, as every value a log
		// line takes.
		r.w.cfg.Logger.Warn().Uint64("dead_letter_seq", m.Seq).Str("dead_letter", text.Line(redact.All(m.Subject), 200)).
			Msg("dead letter removed: its job has a result (found by the sweep; a result wins)")
	}
	return nil
}
