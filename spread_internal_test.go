package clerkjobs

import (
	"testing"
	"time"
)

// TestSpreadUnlocksRequestsPublishedTogether: the record lookups of
// Requests published together came in lock step (1,000 Requests: 2,000
// direct gets in the same instant at 1, 3, 7, 17 s…). Each interval is now
// made up to half as long again at random: never shorter, never more than
// half longer, and not the same for all.
func TestSpreadUnlocksRequestsPublishedTogether(t *testing.T) {
	for _, d := range []time.Duration{lookFirst, lookEvery} {
		seen := map[time.Duration]bool{}
		for range 1000 {
			got := spread(d)
			if got < d || got >= d+d/2 {
				t.Fatalf("spread(%v) = %v, want in [%v, %v)", d, got, d, d+d/2)
			}
			seen[got] = true
		}
		if len(seen) < 100 {
			t.Errorf("spread(%v) gave %d distinct intervals in 1,000 draws: Requests published together still look in lock step", d, len(seen))
		}
	}
}
