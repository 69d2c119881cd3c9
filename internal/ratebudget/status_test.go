package ratebudget

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// TestReadStatus: the bucket shows each key's budget: its limit, members,
// calls per second and pause; keys with different fingerprints are apart.
func TestReadStatus(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	bs, cs := e.budgets(2, 3)
	_, kv := e.bucket(e.nats.ClientURL())
	other, err := New(kv, Fingerprint("sk_test_another_instance"), Limit{N: 1000, Per: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "20 calls", func() bool { return total(cs...) >= 20 })
	bs[0].Throttled(3 * time.Second)

	var got []Status
	eventually(t, 15*time.Second, "status of both keys, 2 members and a pause for the busy one", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err = ReadStatus(ctx, kv)
		if err != nil {
			t.Fatalf("ReadStatus: %v", err)
		}
		for _, s := range got {
			if s.Fingerprint == e.fp && s.Members == 2 && s.CallsPerSecond > 0 && !s.PausedUntil.IsZero() {
				return len(got) == 2
			}
		}
		return false
	})
	if got[0].Fingerprint > got[1].Fingerprint {
		t.Errorf("not ordered by fingerprint: %+v", got)
	}
	for _, s := range got {
		want := testLimit
		if s.Fingerprint != e.fp {
			want = Limit{N: 1000, Per: 10 * time.Second}
		}
		if s.Limit != want || s.Granted == 0 || s.Updated.IsZero() || s.Members == 0 {
			t.Errorf("status %+v, want limit %s", s, want)
		}
		if s.Fingerprint == e.fp && (s.CallsPerSecond > 1.5*float64(testLimit.N)/testLimit.Per.Seconds()) {
			t.Errorf("%.1f calls/s reported for a limit of %s", s.CallsPerSecond, testLimit)
		}
	}
	for _, c := range cs {
		c.stop()
	}
}

// TestReadStatusBoundsTheLimits: heartbeats are any writer's; a flood of
// them with different limits shows the strictest few, not a screenful.
func TestReadStatusBoundsTheLimits(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	_, kv := e.bucket(e.nats.ClientURL())
	for i := range 3 * maxShownLimits {
		hb, _ := json.Marshal(heartbeat{Limit: Limit{N: 100 + i, Per: 10 * time.Second}.String()})
		if _, err := kv.Put(t.Context(), memberKey(e.fp, fmt.Sprintf("m%d", i)), hb); err != nil {
			t.Fatal(err)
		}
	}
	sts, err := ReadStatus(t.Context(), kv)
	if err != nil || len(sts) != 1 {
		t.Fatalf("ReadStatus: %+v, %v", sts, err)
	}
	if got := sts[0]; len(got.Limits) != maxShownLimits || got.FleetLimit != (Limit{N: 100, Per: 10 * time.Second}) || got.Members != 3*maxShownLimits {
		t.Errorf("%d limits (want %d), fleet limit %v (want 100/10s), %d members", len(got.Limits), maxShownLimits, got.FleetLimit, got.Members)
	}
}

// TestReadStatusOnTheServersClock: heartbeats carry the server's time, and
// were judged live by the reader's clock. A reader whose clock ran 5 s
// ahead of the server saw no replica at all (the worker's warning that it
// stays outside a fleet of its key then never came), one running behind
// counted replicas dead for as long. They are judged by the server's clock.
func TestReadStatusOnTheServersClock(t *testing.T) {
	e := newEnv(t, testLimit, emulator.SlidingWindow)
	_, kv := e.bucket(e.nats.ClientURL())
	if _, err := kv.Put(t.Context(), memberKey(e.fp, "dead"), []byte(`{"rate":1,"mode":"fleet"}`)); err != nil {
		t.Fatal(err)
	}
	died := time.Now()
	b, _ := e.budget("")
	if err := b.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(died.Add(memberTTL + time.Second)))
	for _, skew := range []time.Duration{5 * time.Second, -time.Minute} {
		sts, err := readStatus(t.Context(), kv, func() time.Time { return time.Now().Add(skew) })
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) != 1 || sts[0].Members != 1 {
			t.Errorf("reader's clock %v off the server's: %+v, want 1 member", skew, sts)
		}
	}
}
