package ratebudget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// rewriteState replaces the shared state with what change makes of it, as
// a member that does not follow the protocol would, and returns the state
// it replaced, the revision it wrote and when the replaced state was
// stored. A change that returns false skips this state for the next.
func rewriteState(t *testing.T, kv jetstream.KeyValue, fp string, change func(st *state, created time.Time) bool) (state, uint64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		en, err := kv.Get(ctx, stateKey(fp))
		if err != nil {
			t.Fatalf("read the state: %v", err)
		}
		var before state
		if err := json.Unmarshal(en.Value(), &before); err != nil {
			t.Fatal(err)
		}
		st := before
		if !change(&st, en.Created()) {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		data, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := kv.Update(ctx, stateKey(fp), data, en.Revision())
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // a replica claimed meanwhile
		}
		if err != nil {
			t.Fatalf("rewrite the state: %v", err)
		}
		return before, rev
	}
	t.Fatal("could not rewrite the state within 30s")
	return state{}, 0
}

// syncBuffer is a log sink the budgets' goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFarStateIsGarbage: a state whose pause or TAT lies further ahead
// than any member writes (a member with a broken clock, a foreign writer)
// does not stall the fleet. Before, a pause a day ahead paused every
// replica for a day (the max pause bounded only the replica's own 429s),
// and a TAT an hour ahead held every slot for an hour; deleting the entry
// did not lift a pause already applied.
func TestFarStateIsGarbage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(st *state, created time.Time)
	}{
		{"pause a day ahead", func(st *state, c time.Time) { st.PauseUntil = c.Add(24 * time.Hour).UnixNano() }},
		{"TAT an hour ahead", func(st *state, c time.Time) { st.TAT = c.Add(time.Hour).UnixNano() }},
		{"pause and TAT past the max pause", func(st *state, c time.Time) {
			st.PauseUntil = c.Add(DefaultMaxPause + 2*readTolerance).UnixNano()
			st.TAT = st.PauseUntil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testLimit, emulator.SlidingWindow)
			var logs syncBuffer
			a, _ := e.budget("", WithLogger(zerolog.New(&logs)))
			b, _ := e.budget("")
			ca, cb := e.load(a, 2), e.load(b, 2)
			eventually(t, 60*time.Second, "10 calls", func() bool { return total(ca, cb) >= 10 })
			_, kv := e.bucket(e.nats.ClientURL())
			rewriteState(t, kv, e.fp, func(st *state, c time.Time) bool { tc.change(st, c); return true })
			at := time.Now()
			eventually(t, 60*time.Second, "5 calls from each replica after the rewrite", func() bool { return eachAfter(5, at, ca, cb) })
			for i, r := range []*Budget{a, b} {
				if p := r.Stats().PausedUntil; p.After(time.Now().Add(DefaultMaxPause)) {
					t.Errorf("replica %d paused until %v from now, beyond the max pause", i, time.Until(p).Round(time.Second))
				}
			}
			ca.stop()
			cb.stop()
			if n := strings.Count(logs.String(), "starting afresh"); n != 1 || !strings.Contains(logs.String(), e.fp) {
				t.Errorf("want the garbage logged once, naming the budget's fingerprint; got %d lines: %s", n, logs.String())
			}
			e.checkClerk()
		})
	}
}

// TestStateGoingBack: a state rewritten with a TAT in the past (but not 0,
// which marks a fresh state) while replicas hold slots up to the TAT before
// it: no replica claims a slot before that TAT, where others' slots may
// lie. Before, the next claim started at the server's now, among slots
// already held.
func TestStateGoingBack(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	a, _ := e.budget("")
	b, _ := e.budget("")
	ca, cb := e.load(a, 3), e.load(b, 3)
	eventually(t, 60*time.Second, "10 calls", func() bool { return total(ca, cb) >= 10 })

	_, kv := e.bucket(e.nats.ClientURL())
	w, err := kv.Watch(context.Background(), stateKey(e.fp), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	// Rewrite a state whose slots reach well past its write (more than a
	// claim's lead), so that a claim from the server's now would fall
	// among them.
	before, rewritten := rewriteState(t, kv, e.fp, func(st *state, c time.Time) bool {
		if st.TAT-c.UnixNano() < int64(200*time.Millisecond) {
			return false
		}
		st.TAT = 1
		return true
	})
	at := time.Now()
	eventually(t, 60*time.Second, "5 calls from each replica after the rewrite", func() bool { return eachAfter(5, at, ca, cb) })
	ca.stop()
	cb.stop()

	// The first slot of every claim after the rewrite: its TAT less the
	// slots it granted.
	granted, seen := before.Granted, 0
	for {
		var en jetstream.KeyValueEntry
		select {
		case en = <-w.Updates():
		case <-time.After(5 * time.Second):
			t.Fatal("the watcher brought no more states")
		}
		if en == nil || en.Revision() <= rewritten {
			continue
		}
		var st state
		if err := json.Unmarshal(en.Value(), &st); err != nil {
			t.Fatal(err)
		}
		k := st.Granted - granted
		if st.Granted < granted {
			k = st.Granted // counted afresh
		}
		granted = st.Granted
		if k > 0 {
			if first := st.TAT - int64(k)*st.Interval; first < before.TAT {
				t.Fatalf("revision %d claimed %d slots from %v before the TAT the rewrite replaced", en.Revision(), k, time.Duration(before.TAT-first))
			}
			if seen++; seen == 5 {
				break
			}
		}
	}
	e.checkClerk()
}
