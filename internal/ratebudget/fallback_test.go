package ratebudget

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// withFallback shortens the fallback lease and its margin, so that a test
// sees replicas old enough for a trickle share and leases that run out,
// and sets the reserve, so that a small limit (slots far apart: see
// testLimit) has one to share.
func withFallback(lease, margin time.Duration, reserve int) Option {
	return func(o *options) { o.lease, o.leaseMargin, o.reserve = lease, margin, reserve }
}

// TestFallback cuts replicas off JetStream (a TCP proxy that drops their
// connections and refuses new ones): one replica alone, then all of them.
// A cut replica spends the slots it holds, then its share of the reserve
// (1 call per window here: a reserve of 3 among 3 members), and nothing
// once its lease has run out; the others go on at the shared schedule;
// Clerk never sees a 429 nor a window over the limit; every replica is back
// in the fleet once the connection returns.
func TestFallback(t *testing.T) {
	limit := Limit{N: 20, Per: 2 * time.Second}
	const reserve = 3 // one call per window for each of 3 replicas
	const lease, margin = 8 * time.Second, time.Second
	for _, tc := range []struct {
		name string
		cut  []int
	}{
		{"one replica partitioned", []int{2}},
		{"JetStream unreachable for all", []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, limit, emulator.SlidingWindow)
			var bs []*Budget
			var cs []*caller
			var ps []*proxy
			for range 3 {
				p := newProxy(t, e.nats.Addr().String())
				b, _ := e.budget(p.url(), withFallback(lease, margin, reserve))
				bs, cs, ps = append(bs, b), append(cs, e.load(b, 3)), append(ps, p)
			}
			sched := newSchedule(limit, reserve)
			eventually(t, 30*time.Second, "every replica old enough for a trickle share", func() bool {
				for _, b := range bs {
					b.mu.Lock()
					old := !b.fleet.joined.IsZero() && time.Since(b.fleet.joined) > lease+margin
					b.mu.Unlock()
					if !old {
						return false
					}
				}
				return total(cs...) >= 20
			})

			before := make([]uint64, 3)
			for _, i := range tc.cut {
				ps[i].cut()
			}
			for _, i := range tc.cut {
				eventually(t, 15*time.Second, "the cut replica in fallback", func() bool {
					st := bs[i].Stats()
					before[i] = st.Granted
					return st.Mode == ModeFallback
				})
			}
			// What a cut replica held is spent (or too late) within the
			// horizon; after that only its trickle: one call per window
			// (plus slack and one interval).
			time.Sleep(horizon + sched.grace)
			trickleFrom := time.Now()
			for _, i := range tc.cut {
				before[i] = bs[i].Stats().Granted
			}
			eventually(t, 20*time.Second, "a trickle call on every cut replica", func() bool {
				for _, i := range tc.cut {
					if bs[i].Stats().Granted == before[i] {
						return false
					}
				}
				return true
			})
			for _, i := range tc.cut {
				st := bs[i].Stats()
				got := st.Granted - before[i]
				bound := uint64(math.Ceil(float64(time.Since(trickleFrom))/float64(sched.span+sched.interval))) + 1
				if got > bound {
					t.Errorf("replica %d granted %d calls in fallback, its trickle allows %d", i, got, bound)
				}
				if st.Mode != ModeFallback {
					t.Errorf("replica %d: mode %s", i, st.Mode)
				}
			}
			if len(tc.cut) < 3 {
				if st := bs[0].Stats(); st.Mode != ModeFleet {
					t.Errorf("a replica still connected is in %s", st.Mode)
				}
			}

			// Once the lease has run out, a cut replica grants nothing.
			for _, i := range tc.cut {
				b := bs[i]
				b.mu.Lock()
				expires := b.fleet.lastOK.Add(lease)
				b.mu.Unlock()
				time.Sleep(time.Until(expires.Add(horizon)))
				g := b.Stats().Granted
				time.Sleep(sched.span)
				if again := b.Stats().Granted; again != g {
					t.Errorf("replica %d granted %d calls after its lease ran out", i, again-g)
				}
			}

			for _, i := range tc.cut {
				ps[i].restore()
			}
			for _, i := range tc.cut {
				g := bs[i].Stats().Granted
				eventually(t, 30*time.Second, "the replica back in the fleet, calling", func() bool {
					st := bs[i].Stats()
					return st.Mode == ModeFleet && st.Granted >= g+3
				})
			}
			for _, c := range cs {
				c.stop()
			}
			e.checkClerk()
		})
	}
}

// TestBlindReplicaTricklesNothing: a replica whose watcher is down (here:
// its NATS user may not create the watcher's consumer) sees no other
// member. Cut off JetStream, it took itself for the only member and
// trickled the whole reserve, beside the others' shares. A replica that
// could not watch at its last success now trickles nothing.
func TestBlindReplicaTricklesNothing(t *testing.T) {
	limit := Limit{N: 20, Per: 2 * time.Second}
	const reserve = 4 // two calls per window for each of 2 replicas
	const lease, margin = 8 * time.Second, time.Second
	s := serverWithUsers(t,
		&server.User{Username: "full", Password: "f"},
		&server.User{Username: "blind", Password: "b", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.>"}},
		}})
	clerk := emulator.NewServer(emulator.WithRateLimit(limit.N, limit.Per), emulator.WithRateLimitMode(emulator.SlidingWindow))
	t.Cleanup(clerk.Close)
	e := &env{t: t, nats: s, clerk: clerk, limit: limit, fp: Fingerprint(emulator.DefaultSecretKey)}
	addr := s.Addr().String()
	_, js := e.connect("nats://full:f@" + addr)
	if _, err := js.CreateOrUpdateKeyValue(t.Context(), BucketConfig(testBucket, 1, jetstream.FileStorage)); err != nil {
		t.Fatal(err)
	}

	seeing, _ := e.budget("nats://full:f@"+addr, withFallback(lease, margin, reserve))
	p := newProxy(t, addr)
	blind, _ := e.budget(strings.Replace(p.url(), "nats://", "nats://blind:b@", 1), withFallback(lease, margin, reserve))
	cs := []*caller{e.load(seeing, 3), e.load(blind, 3)}
	eventually(t, 40*time.Second, "both replicas old enough for a trickle share, the seeing one counting 2", func() bool {
		blind.mu.Lock()
		old := !blind.fleet.joined.IsZero() && time.Since(blind.fleet.joined) > lease+margin
		blind.mu.Unlock()
		return old && seeing.Stats().Members == 2 && eachAfter(3, time.Time{}, cs...)
	})

	p.cut()
	eventually(t, 15*time.Second, "the blind replica in fallback", func() bool { return blind.Stats().Mode == ModeFallback })
	sched := newSchedule(limit, reserve)
	time.Sleep(horizon + sched.grace) // what it held is spent
	before := blind.Stats().Granted
	time.Sleep(3 * (sched.span + sched.interval))
	if got := blind.Stats().Granted - before; got != 0 {
		t.Errorf("the blind replica granted %d calls in fallback: it cannot know how many share the reserve", got)
	}
	for _, c := range cs {
		c.stop()
	}
	e.checkClerk()
}
