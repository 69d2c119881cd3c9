package ratebudget

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEchoesBoundedWhileWritesFail: the watcher keeps every state entry
// it cannot match to an own write (the others' claims) in case it is an own
// write whose answer is late; only an own successful write forgot the old
// ones. A replica whose writes all fail while its watcher works (its user
// may read the bucket but not write it, a misconfigured grant) kept every
// claim of the fleet for as long as it ran: tens a second, without bound.
func TestEchoesBoundedWhileWritesFail(t *testing.T) {
	s := serverWithUsers(t,
		&server.User{Username: "writer", Password: "w"},
		&server.User{Username: "reader", Password: "r", Permissions: &server.Permissions{
			// Everything of JetStream's API (the watcher, direct gets), but
			// no write to the bucket.
			Publish:   &server.SubjectPermission{Allow: []string{"_INBOX.>", "$JS.API.>", "$JS.FC.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(user, pass string) jetstream.KeyValue {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, pass), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		kv, err := js.CreateOrUpdateKeyValue(ctx, BucketConfig(testBucket, 1, jetstream.MemoryStorage))
		if err != nil {
			kv, err = js.KeyValue(ctx, testBucket)
		}
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	kv := open("writer", "w")
	fp := Fingerprint("sk_test_early")
	b, err := New(open("reader", "r"), fp, Limit{N: 1000, Per: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	early := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.fleet.early)
	}
	watched := func() bool {
		e, err := kv.Get(ctx, stateKey(fp))
		if err != nil {
			return false
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		_, ok := b.fleet.early[e.Revision()]
		return ok
	}

	// The others' claims, as they write them.
	const claims = 4 * maxEarly
	for i := range claims {
		data, _ := json.Marshal(state{TAT: time.Now().UnixNano() + int64(i), Granted: uint64(i), Limit: "1000/10s", Interval: int64(10260 * time.Microsecond)})
		if _, err := kv.Put(ctx, stateKey(fp), data); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the last claim watched", watched)
	if n := early(); n > maxEarly {
		t.Errorf("%d entries kept for %d claims of others, more than %d", n, claims, maxEarly)
	}
	eventually(t, 10*time.Second, "the reader in fallback (its writes fail)", func() bool { return b.Stats().Mode == ModeFallback })
}
