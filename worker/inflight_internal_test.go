package worker

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func heldDelivery(seq uint64, at time.Time) *delivery {
	return &delivery{meta: &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, Timestamp: at}}
}

// TestInflightHoldsMsg: the index holdsMsg reads follows every add and
// remove, a message held by two deliveries (a consumer created again)
// included, and a remove of a delivery already removed (a nak after a
// park) does not forget the other.
func TestInflightHoldsMsg(t *testing.T) {
	f := &inflight{ds: map[*delivery]struct{}{}}
	at := time.Unix(1700000000, 123)
	a, b, other := heldDelivery(7, at), heldDelivery(7, at), heldDelivery(7, at.Add(time.Second))
	id := a.stored()
	f.add(a)
	f.add(a)
	f.add(b)
	f.add(other)
	f.remove(a)
	f.remove(a)
	if !f.holdsMsg(id) {
		t.Fatal("a message still held by one delivery is not held")
	}
	f.remove(b)
	if f.holdsMsg(id) {
		t.Fatal("a message no delivery holds is held")
	}
	if !f.holdsMsg(other.stored()) {
		t.Fatal("another message at the same sequence is not held")
	}
	f.remove(other)
	if len(f.byMsg) != 0 || f.len() != 0 {
		t.Fatalf("left behind: %d indexed, %d held", len(f.byMsg), f.len())
	}
}

// BenchmarkInflightHoldsMsg: the check made for every job taken, with
// the deliveries a worker of concurrency 16, 256 and 1024 holds (and its
// prefetch).
func BenchmarkInflightHoldsMsg(b *testing.B) {
	for _, n := range []int{20, 320, 1280} {
		b.Run("held="+strconv.Itoa(n), func(b *testing.B) {
			f := &inflight{ds: map[*delivery]struct{}{}}
			now := time.Now()
			for i := range n {
				f.add(heldDelivery(uint64(i+1), now))
			}
			id := msgIdentity{uint64(n + 5), now.UnixNano()}
			for b.Loop() {
				f.holdsMsg(id)
			}
		})
	}
}
