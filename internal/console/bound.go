package console

import (
	"errors"
	"fmt"
	"time"

	"github.com/clerkjobs/clerkjobs/dlq"
)

// Replay and purge act on sequences, and JetStream deletes by sequence
// with no condition on what is stored there. A dead-letter stream deleted
// and created again numbers its letters from 1 again, so a plan's
// sequence may name a letter no page ever showed. The dlq library
// therefore reads each letter just before acting on it and asks expect
// (dlq.WithExpect) whether it is the letter the plan bound (plan.Seen).

// expect refuses a dead letter that is not the one p chose for its
// sequence.
func (p *plan) expect(e dlq.Entry) error {
	want, ok := p.Seen[e.Seq]
	if !ok {
		return errors.New("it was not in the dead-letter queue when this was planned, so which letter was meant is unknown: nothing done")
	}
	if got := seenOf(e); got != want {
		return fmt.Errorf("sequence %d now holds another dead letter (job %s, stored %s) than the one planned (job %s, stored %s): the dead-letter stream was recreated? nothing done",
			e.Seq, got.JobID, time.Unix(0, got.At).UTC().Format(time.RFC3339Nano), want.JobID, time.Unix(0, want.At).UTC().Format(time.RFC3339Nano))
	}
	return nil
}
