package worker

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestHandBackHeldLogsAfterItsNaks: handBackHeld hands back the held jobs
// of the consumer as it is now, and then says how many others it could not
// hand back: a reader of the warning finds the naks sent, and the jobs
// held no longer, the handed back as the dropped.
func TestHandBackHeldLogsAfterItsNaks(t *testing.T) {
	w, cons, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	var held []*delivery
	for i := range 3 {
		if _, err := js.Publish(ctx, topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
			t.Fatal(err)
		}
		created := cons.CachedInfo().Created
		if i == 0 { // an earlier consumer's: not handed back
			created = created.Add(-time.Hour)
		}
		held = append(held, w.admit(fetchOne(t, cons), created, w.records.created.Load(), func() {}))
	}
	var mu sync.Mutex
	var atWarning []string
	w.cfg.Logger = zerolog.New(io.Discard).Hook(zerolog.HookFunc(func(_ *zerolog.Event, _ zerolog.Level, msg string) {
		if !strings.Contains(msg, "are not handed back") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for i, d := range held {
			d.mu.Lock()
			settled := d.settled
			d.mu.Unlock()
			if i > 0 && !settled {
				atWarning = append(atWarning, fmt.Sprintf("job %d not yet handed back", i))
			}
			if w.inflight.holdsMsg(d.stored()) {
				atWarning = append(atWarning, fmt.Sprintf("job %d still in flight", i))
			}
		}
	}))
	w.handBackHeld(ctx, held)
	mu.Lock()
	defer mu.Unlock()
	if len(atWarning) > 0 {
		t.Errorf("when the warning was written: %s", strings.Join(atWarning, "; "))
	}
	if n := w.inflight.len(); n != 0 {
		t.Errorf("%d jobs in flight after the hand-back, want 0", n)
	}
}
