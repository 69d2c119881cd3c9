package clustertest

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// TestFleetRateBudget runs three replicas with the same configuration, the
// key's limit, against an emulator enforcing that limit; mid-load one is
// SIGKILLed and another joins. In both of the window forms Clerk might
// count in, the fleet gets no 429 and loses nothing: the replicas share
// one budget in JetStream, and the killed one's share comes back to the
// others.
//
// The limit is small, 20 calls per 2 s, so that slots are 113 ms apart.
// The emulator stamps each call when its handler runs, in this test
// process, which CI runs beside every other package's race-detector tests
// on 2 cores: a stall of that process moves the calls that arrived during
// it later, together. At 200 per 2 s (slots 11 ms apart) a stall of about
// 190 ms put 203 calls in one window and drew ten 429s, although the
// budget had released no window above the limit; at 20 per 2 s it takes a
// stall of about 380 ms.
func TestFleetRateBudget(t *testing.T) {
	const limit, window = 20, 2 * time.Second
	for _, mode := range []emulator.RateLimitMode{emulator.FixedWindow, emulator.SlidingWindow} {
		t.Run(string(mode), func(t *testing.T) {
			s := newSystem(t, "fleet", emulator.WithRateLimit(limit, window), emulator.WithRateLimitMode(mode),
				emulator.WithLatency(20*time.Millisecond, 0))
			n := scale() / 10 // at 8.8 calls/s
			s.publish(n)
			args := []string{"--rate-limit", "20/2s", "--concurrency", "16"}
			s.startWorker("a", args...)
			s.startWorker("b", args...)
			c := s.startWorker("c", args...)
			s.waitProgress(n/3, 2*time.Minute)
			c.kill()
			s.startWorker("d", args...)
			got := s.check(3 * time.Minute)
			calls := s.emu.Emulator.Calls()
			span := calls[len(calls)-1].Time.Sub(calls[0].Time)
			worst := emulator.WorstWindow(calls, window)
			t.Logf("%s: %d calls in %s (%.0f/s against %d per %s), worst %s window %d: %s",
				mode, len(calls), span.Round(time.Millisecond), float64(len(calls))/span.Seconds(), limit, window, window, worst, got)
			if n := s.calls429(); n != 0 {
				t.Errorf("%d × 429 from a fleet sharing the key's limit; want none", n)
			}
			if worst > limit {
				t.Errorf("%d calls within %s somewhere in the run; the limit is %d", worst, window, limit)
			}
		})
	}
}
