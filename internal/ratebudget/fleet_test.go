package ratebudget

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// testLimit makes tests that last a few windows, with slots far enough
// apart (107 ms) that a loaded machine's stalls between a Wait and the
// call's arrival stay within what the schedule tolerates (the slack plus
// one interval: 137 ms). Clerk's own 1000/10s tolerates 160 ms; the
// benchmarks run it.
var testLimit = Limit{N: 20, Per: 2 * time.Second}

var modes = []emulator.RateLimitMode{emulator.FixedWindow, emulator.SlidingWindow}

// TestFleetSharesTheLimit: three replicas configured with Clerk's own
// limit, all busy, never draw a 429 and never put more than the limit in
// any window, fixed or sliding, and split it about evenly.
func TestFleetSharesTheLimit(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, testLimit, mode)
			bs, cs := e.budgets(3, 3)
			eventually(t, 15*time.Second, "every replica counts 3 members", func() bool {
				for _, b := range bs {
					if b.Stats().Members != 3 {
						return false
					}
				}
				return true
			})
			eventually(t, 90*time.Second, "60 calls", func() bool { return total(cs...) >= 60 })
			for _, c := range cs {
				c.stop()
			}
			all := total(cs...)
			for i, c := range cs {
				n, _ := c.count(time.Time{})
				if n < all/5 {
					t.Errorf("replica %d made %d of %d calls: not a fair share", i, n, all)
				}
				if errs := c.errors(); len(errs) > 0 {
					t.Errorf("replica %d: %d calls failed, first: %v", i, len(errs), errs[0])
				}
				st := bs[i].Stats()
				if st.Mode != ModeFleet || st.Claims == 0 || st.Granted != uint64(n) || st.Limit != testLimit || st.FleetLimit != testLimit {
					t.Errorf("replica %d stats %+v", i, st)
				}
				t.Logf("replica %d: %d calls, %d claims, %d conflicts, %d wasted, clock ±%v",
					i, n, st.Claims, st.Conflicts, st.Wasted, st.ClockUncertainty)
			}
			e.checkClerk()
		})
	}
}

// TestStoppedReplicaFreesItsShare: when one of three busy replicas stops —
// closed, or killed without a word — the two others soon use the whole
// limit between them.
func TestStoppedReplicaFreesItsShare(t *testing.T) {
	for _, how := range []string{"closed", "killed"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, testLimit, emulator.SlidingWindow)
			a, _ := e.budget("")
			b, _ := e.budget("")
			c, cconn := e.budget("")
			ca, cb, cc := e.load(a, 4), e.load(b, 4), e.load(c, 4)
			eventually(t, 60*time.Second, "30 calls", func() bool { return total(ca, cb, cc) >= 30 })
			cc.stop()
			if how == "closed" {
				c.Close()
			} else {
				cconn.Close() // its heartbeat stays behind, as after SIGKILL
			}
			stopped := time.Now()
			eventually(t, 15*time.Second, "the others count 2 members", func() bool {
				return a.Stats().Members == 2 && b.Stats().Members == 2
			})
			// The others' throughput rises to the whole schedule: some full
			// window after the stop holds at least 80% of what one window
			// of the schedule holds.
			perWindow := int(float64(testLimit.Per) / float64(newSchedule(testLimit, fleetReserve(testLimit)).interval))
			var best int
			eventually(t, 60*time.Second, fmt.Sprintf("a window with %d calls from the two others", perWindow*4/5), func() bool {
				best = bestWindow(stopped, testLimit.Per, ca, cb)
				return best >= perWindow*4/5
			})
			t.Logf("best %v window after the stop: %d calls (schedule: %d)", testLimit.Per, best, perWindow)
			ca.stop()
			cb.stop()
			e.checkClerk()
		})
	}
}

// TestThrottledPausesTheFleet: a 429 on one replica pauses every replica
// for its Retry-After: none grants a call from the moment it learns of the
// pause until the pause ends, and all resume after it.
func TestThrottledPausesTheFleet(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	bs, cs := e.budgets(3, 3)
	eventually(t, 60*time.Second, "15 calls", func() bool { return total(cs...) >= 15 })
	const retryAfter = 4 * time.Second
	throttled := time.Now()
	bs[0].Throttled(retryAfter)
	until := make([]time.Time, len(bs))
	granted := make([]uint64, len(bs))
	eventually(t, 10*time.Second, "every replica paused", func() bool {
		for i, b := range bs {
			if until[i].IsZero() {
				st := b.Stats()
				until[i], granted[i] = st.PausedUntil, st.Granted
			}
		}
		for _, u := range until {
			if u.IsZero() {
				return false
			}
		}
		return true
	})
	for i, u := range until {
		if d := u.Sub(throttled); d < retryAfter-time.Second || d > retryAfter+time.Second {
			t.Errorf("replica %d paused until %v after the 429, want about %v", i, d, retryAfter)
		}
	}
	// Sample the counts until the pause ends: a count read before a
	// replica's pause ended must not have moved.
	samples := 0
	for {
		for i, b := range bs {
			g := b.Stats().Granted
			if time.Now().Before(until[i]) {
				samples++
				if g != granted[i] {
					t.Fatalf("replica %d granted %d calls during the pause", i, g-granted[i])
				}
			}
		}
		if !time.Now().Before(latest(until...)) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if samples == 0 {
		t.Fatal("no sample fell inside the pause: the machine stalled for the whole pause")
	}
	eventually(t, 30*time.Second, "every replica calls again", func() bool {
		for i, b := range bs {
			if b.Stats().Granted < granted[i]+3 {
				return false
			}
		}
		return true
	})
	// A replica joining after the pause ended reads it in the state, and
	// is not paused by it.
	late, _ := e.budget("")
	cl := e.load(late, 2)
	eventually(t, 30*time.Second, "the late joiner calls", func() bool { return total(cl) >= 3 })
	for _, c := range append(cs, cl) {
		c.stop()
	}
	if st := bs[1].Stats(); st.Pauses != 1 {
		t.Errorf("replica 1 applied %d pauses, want 1", st.Pauses)
	}
	if st := late.Stats(); st.Pauses != 0 || !st.PausedUntil.IsZero() {
		t.Errorf("the late joiner applied a pause that was over: %+v", st)
	}
	e.checkClerk()
}

// TestJoinerDoesNotBurst: a replica joining a fleet that already uses the
// whole limit, with many callers waiting at once, gets slots after the
// others' and never pushes a window over the limit.
func TestJoinerDoesNotBurst(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, testLimit, mode)
			a, _ := e.budget("")
			ca := e.load(a, 8)
			// A full window at the limit first, so the joiner meets a busy
			// schedule.
			eventually(t, 60*time.Second, "a full window", func() bool { return total(ca) >= testLimit.N })
			b, _ := e.budget("")
			cb := e.load(b, 24)
			eventually(t, 60*time.Second, "the joiner's 30 calls", func() bool { return total(cb) >= 30 })
			ca.stop()
			cb.stop()
			e.checkClerk()
		})
	}
}

// TestWorkConserving: a replica alone at work uses the whole limit while
// the others idle; a replica with a trickle of single calls still gets
// them through; two busy replicas then share.
func TestWorkConserving(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	a, _ := e.budget("")
	b, _ := e.budget("")
	c, _ := e.budget("")
	eventually(t, 15*time.Second, "3 members", func() bool { return a.Stats().Members == 3 })
	started := time.Now()
	ca := e.load(a, 6)
	perWindow := int(float64(testLimit.Per) / float64(newSchedule(testLimit, fleetReserve(testLimit)).interval))
	eventually(t, 60*time.Second, "a window where the busy replica alone used 80% of the schedule", func() bool {
		return bestWindow(started, testLimit.Per, ca) >= perWindow*4/5
	})

	// Single calls on b, one at a time.
	cb := e.load(b, 1)
	eventually(t, 60*time.Second, "5 single calls through the busy fleet", func() bool { return total(cb) >= 5 })
	cb.stop()

	// b busy too: both get a share.
	both := time.Now()
	cb2 := e.load(b, 6)
	eventually(t, 60*time.Second, "both busy replicas get a third of a window", func() bool {
		return bestWindow(both, testLimit.Per, cb2) >= perWindow/3 && bestWindow(both, testLimit.Per, ca) >= perWindow/3
	})
	ca.stop()
	cb2.stop()
	if st := c.Stats(); st.Granted != 0 || st.Claims != 0 {
		t.Errorf("the idle replica claimed: %+v", st)
	}
	e.checkClerk()
}

// TestBucketRecreated: the bucket deleted by hand while a replica calls is
// created again, as at start, and the replica calls on without outside
// help. Before, every operation failed for good: the replica fell back to
// what it held, then to nothing.
func TestBucketRecreated(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	_, js := e.connect(e.nats.ClientURL())
	cfg := BucketConfig(testBucket, 1, jetstream.FileStorage)
	var recreated atomic.Int32
	recreate := func(ctx context.Context) error {
		recreated.Add(1)
		_, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	}
	a, _ := e.budget("", WithRecreate(recreate))
	b, _ := e.budget("", WithRecreate(recreate))
	ca, cb := e.load(a, 2), e.load(b, 2)
	eventually(t, 60*time.Second, "10 calls", func() bool { return total(ca, cb) >= 10 })
	if err := js.DeleteKeyValue(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	eventually(t, 60*time.Second, "5 calls from each replica after the deletion", func() bool { return eachAfter(5, deleted, ca, cb) })
	ca.stop()
	cb.stop()
	if recreated.Load() == 0 {
		t.Error("the calls resumed, but nobody recreated the bucket")
	}
	for i, r := range []*Budget{a, b} {
		if st := r.Stats(); st.Mode != ModeFleet {
			t.Errorf("replica %d in mode %s, want %s", i, st.Mode, ModeFleet)
		}
	}
	e.checkClerk()
}

// TestMixedLimitsRunAtTheStricter: two replicas sharing a key, one
// configured with ten times the limit of the other (as `--rate-limit
// 1000/10s` beside `100/10s`), against a Clerk enforcing the stricter one:
// no 429 and no window above it, and the replica configured faster says
// so once. Before, each claim was spaced by its claimer's own interval, so
// the fast replica ran the key at its own limit, silently.
func TestMixedLimitsRunAtTheStricter(t *testing.T) {
	fast := Limit{N: 10 * testLimit.N, Per: testLimit.Per}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, testLimit, mode) // the emulator enforces the stricter limit
			var strictLogs, fastLogs syncBuffer
			s, _ := e.budget("", WithLogger(zerolog.New(&strictLogs)))
			_, kv := e.bucket(e.nats.ClientURL())
			f, err := New(kv, e.fp, fast, WithLogger(zerolog.New(&fastLogs)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(f.Close)
			// Both configured before either calls, as in a deployed fleet
			// whose replicas were started with different flags.
			eventually(t, 15*time.Second, "both replicas count 2 members", func() bool {
				return s.Stats().Members == 2 && f.Stats().Members == 2
			})
			cs, cf := e.load(s, 3), e.load(f, 3)
			eventually(t, 90*time.Second, "2 windows' calls", func() bool { return total(cs, cf) >= 2*testLimit.N })
			cs.stop()
			cf.stop()
			e.checkClerk()
			if st := f.Stats(); st.Limit != fast || st.FleetLimit != testLimit {
				t.Errorf("fast replica: Limit %v, FleetLimit %v; want %v, %v", st.Limit, st.FleetLimit, fast, testLimit)
			}
			if st := s.Stats(); st.FleetLimit != testLimit {
				t.Errorf("strict replica: FleetLimit %v, want %v", st.FleetLimit, testLimit)
			}
			// What `publish status` shows: the limit the fleet runs at, and
			// that the replicas are configured apart.
			sts, err := ReadStatus(context.Background(), kv)
			if err != nil || len(sts) != 1 || sts[0].FleetLimit != testLimit || !slices.Equal(sts[0].Limits, []Limit{testLimit, fast}) {
				t.Errorf("ReadStatus: %+v, %v; want fleet limit %v of limits %v, %v", sts, err, testLimit, testLimit, fast)
			}
			logs := fastLogs.String()
			if n := strings.Count(logs, "stricter rate limit"); n != 1 ||
				!strings.Contains(logs, `"limit":"`+fast.String()+`"`) || !strings.Contains(logs, `"fleet_limit":"`+testLimit.String()+`"`) {
				t.Errorf("want one warning naming both limits from the fast replica; got %d: %s", n, logs)
			}
			if strings.Contains(logs, emulator.DefaultSecretKey) {
				t.Error("the warning quotes the secret key")
			}
			if l := strictLogs.String(); l != "" {
				t.Errorf("the strict replica logged: %s", l)
			}
		})
	}
}

// TestMembersBounded: member entries nobody refreshes (killed replicas,
// whose expiry by the bucket's TTL sends no delete, or a foreign writer's
// flood) leave a replica's member map once older than the lease, and never
// grow it past maxMembers; claims go on meanwhile. Before, every entry
// ever seen stayed in the map, walked on every claim.
func TestMembersBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries int
		warned  int // warnings about ignored members
	}{
		{"a few dead replicas", 20, 0},
		{"a flood of foreign entries", 2 * maxMembers, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testLimit, emulator.SlidingWindow)
			var logs syncBuffer
			// A short lease, so entries are old enough to forget in seconds.
			a, _ := e.budget("", WithLogger(zerolog.New(&logs)), withFallback(time.Second, 500*time.Millisecond, -1))
			ca := e.load(a, 2)
			eventually(t, 60*time.Second, "5 calls", func() bool { return total(ca) >= 5 })
			tracked := func() int {
				a.mu.Lock()
				defer a.mu.Unlock()
				return len(a.fleet.members)
			}

			_, kv := e.bucket(e.nats.ClientURL())
			hb := []byte(`{"rate":5,"busy":true,"mode":"fleet"}`)
			most := 0
			for i := range tc.entries {
				if _, err := kv.Put(context.Background(), memberKey(e.fp, fmt.Sprintf("dead%04d", i)), hb); err != nil {
					t.Fatal(err)
				}
				most = max(most, tracked())
			}
			written := time.Now()
			eventually(t, 15*time.Second, "the entries forgotten", func() bool {
				most = max(most, tracked())
				return tracked() == 1 && a.Stats().Members == 1
			})
			if most > maxMembers {
				t.Errorf("tracked %d members, more than %d", most, maxMembers)
			}
			eventually(t, 60*time.Second, "5 calls after the entries", func() bool {
				_, n := ca.count(written)
				return n >= 5
			})
			ca.stop()
			if n := strings.Count(logs.String(), "members share this rate budget"); n != tc.warned {
				t.Errorf("%d warnings about ignored members, want %d: %s", n, tc.warned, logs.String())
			}
			t.Logf("%d entries written: at most %d tracked", tc.entries, most)
			e.checkClerk()
		})
	}
}

// TestSlowCallerWastesNoSlots: a replica whose callers come back slower
// than the schedule's interval (one caller, Clerk answering in 100 ms, at
// 1000/10s: a call every 100 ms, slots 10 ms apart) claims only the slots
// it uses. Before, a claim added a quarter second of the recent rate in
// slots an interval apart, which the caller reached later than the grace:
// about two slots of three were wasted, taken from the fleet's schedule
// for nothing, so that eight such replicas made 65 calls per second where
// 80 were asked and 97 allowed.
func TestSlowCallerWastesNoSlots(t *testing.T) {
	limit := Limit{N: 1000, Per: 10 * time.Second}
	e := newEnv(t, limit, emulator.SlidingWindow)
	slow := emulator.NewServer(emulator.WithLatency(100*time.Millisecond, 0))
	t.Cleanup(slow.Close)
	c, err := clerkapi.New(clerkapi.WithBaseURL(slow.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.budget("")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 30 {
		if err := b.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: "user_ratebudget"}); err != nil {
			t.Fatal(err)
		}
	}
	st := b.Stats()
	t.Logf("granted %d, wasted %d, claims %d", st.Granted, st.Wasted, st.Claims)
	if st.Wasted > st.Granted/5 {
		t.Errorf("%d slots wasted for %d calls: claimed for a rate the caller could not reach", st.Wasted, st.Granted)
	}
}
