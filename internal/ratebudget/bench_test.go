package ratebudget

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// BenchmarkWait is the cost of Wait itself: a limit far above what the
// machine can call (1,000,000 per second), callers in parallel. For the
// fleet, claims/call is the JetStream round trips (slot claims, one
// compare-and-swap each) per call; heartbeats (2 per second and member)
// come on top, independent of the calls.
func BenchmarkWait(b *testing.B) {
	high := Limit{N: 1_000_000, Per: time.Second}
	run := func(b *testing.B, bud *Budget) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := bud.Wait(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		st := bud.Stats()
		b.ReportMetric(float64(st.Claims)/float64(st.Granted), "claims/call")
		b.ReportMetric(float64(st.Conflicts)/float64(st.Granted), "conflicts/call")
	}
	b.Run("process", func(b *testing.B) {
		bud, err := NewLocal(high)
		if err != nil {
			b.Fatal(err)
		}
		defer bud.Close()
		run(b, bud)
	})
	b.Run("fleet", func(b *testing.B) {
		e := newBenchEnv(b, high)
		bud, _ := e.budget("")
		run(b, bud)
	})
}

// BenchmarkFleetAtLimit runs replicas at Clerk's limit against the
// emulator (sliding window, real HTTP), each replica busy with 8 callers:
// b.N calls in all. It reports the rate reached as a share of the limit
// (from the first call after the warm-up second to the last), the worst
// sliding window against the limit, the 429s, and per call the slot
// claims (JetStream round trips), their conflicts and the wasted slots.
// Run it with a fixed count: -benchtime=3000x.
func BenchmarkFleetAtLimit(b *testing.B) {
	for _, lim := range []Limit{{N: 1000, Per: 10 * time.Second}, {N: 100, Per: time.Second}} {
		for _, replicas := range []int{1, 3, 5} {
			name := fmt.Sprintf("%dper%v/replicas=%d", lim.N, lim.Per, replicas)
			b.Run(name, func(b *testing.B) {
				e := newBenchEnv(b, lim)
				var cs []*caller
				var bs []*Budget
				for range replicas {
					bud, _ := e.budget("")
					bs = append(bs, bud)
				}
				b.ResetTimer()
				for _, bud := range bs {
					cs = append(cs, e.load(bud, 8))
				}
				for total(cs...) < b.N {
					time.Sleep(10 * time.Millisecond)
				}
				for _, c := range cs {
					c.stop()
				}
				b.StopTimer()
				accepted, throttled := e.clerkCalls()
				worst, _ := worstWindow(accepted, lim.Per)
				var claims, conflicts, wasted, granted uint64
				for _, bud := range bs {
					st := bud.Stats()
					claims, conflicts, wasted, granted = claims+st.Claims, conflicts+st.Conflicts, wasted+st.Wasted, granted+st.Granted
				}
				b.ReportMetric(100*steadyRate(accepted)/(float64(lim.N)/lim.Per.Seconds()), "%limit")
				b.ReportMetric(float64(worst), "worst-window")
				b.ReportMetric(float64(throttled), "429s")
				b.ReportMetric(float64(claims)/float64(granted), "claims/call")
				b.ReportMetric(float64(conflicts)/float64(granted), "conflicts/call")
				b.ReportMetric(float64(wasted)/float64(granted), "wasted/call")
			})
		}
	}
}

// steadyRate is calls per second from one second after the first call to
// the last.
func steadyRate(sorted []time.Time) float64 {
	if len(sorted) < 2 {
		return 0
	}
	from := sorted[0].Add(time.Second)
	i, _ := slices.BinarySearchFunc(sorted, from, time.Time.Compare)
	n := len(sorted) - i
	if n < 2 {
		return 0
	}
	return float64(n-1) / sorted[len(sorted)-1].Sub(sorted[i]).Seconds()
}

// newBenchEnv is newEnv for a benchmark.
func newBenchEnv(b *testing.B, lim Limit) *env {
	return newEnv(b, lim, emulator.SlidingWindow)
}
