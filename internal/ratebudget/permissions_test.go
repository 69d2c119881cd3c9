package ratebudget

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The grants a worker's NATS user needs for its rate budget in bucket
// RATE_BUDGET, and an operator's for ReadStatus: deploy/nats/accounts.conf
// copies them (with the bucket's real name). Inboxes (_INBOX.>) are granted
// there already.
var (
	workerBudgetGrants = []string{
		"$JS.API.INFO", // nats.go asks it before creating a bucket
		"$JS.API.STREAM.INFO.KV_RATE_BUDGET", "$JS.API.STREAM.CREATE.KV_RATE_BUDGET", "$JS.API.STREAM.UPDATE.KV_RATE_BUDGET",
		"$KV.RATE_BUDGET.>", // claims, pauses, heartbeats
		"$JS.API.DIRECT.GET.KV_RATE_BUDGET.>",
		// The watcher: an ordered consumer, its flow control (under load),
		// its deletion when it stops.
		"$JS.API.CONSUMER.CREATE.KV_RATE_BUDGET.>", "$JS.FC.KV_RATE_BUDGET.>", "$JS.API.CONSUMER.DELETE.KV_RATE_BUDGET.>",
	}
	opsBudgetGrants = []string{
		"$JS.API.STREAM.INFO.KV_RATE_BUDGET",
		"$JS.API.CONSUMER.CREATE.KV_RATE_BUDGET.>", "$JS.FC.KV_RATE_BUDGET.>", "$JS.API.CONSUMER.DELETE.KV_RATE_BUDGET.>",
	}
)

// TestPermissions runs a fleet budget as a user with only
// workerBudgetGrants (and inboxes), and ReadStatus as one with only
// opsBudgetGrants: no permission error, and both work.
func TestPermissions(t *testing.T) {
	perm := func(pub []string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: append([]string{"_INBOX.>"}, pub...)},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}
	}
	s := serverWithUsers(t,
		&server.User{Username: "worker", Password: "w", Permissions: perm(workerBudgetGrants)},
		&server.User{Username: "ops", Password: "o", Permissions: perm(opsBudgetGrants)})

	var mu sync.Mutex
	var denied []string
	var conns []*nats.Conn
	connect := func(user, pass string) jetstream.JetStream {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, pass),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if strings.Contains(err.Error(), "Permissions Violation") {
					mu.Lock()
					denied = append(denied, user+": "+err.Error())
					mu.Unlock()
				}
			}))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	kv, err := connect("worker", "w").CreateOrUpdateKeyValue(ctx, BucketConfig("RATE_BUDGET", 1, jetstream.FileStorage))
	if err != nil {
		t.Fatalf("create the bucket as the worker: %v", err)
	}
	b, err := New(kv, Fingerprint("sk_test_permissions"), Limit{N: 200, Per: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := b.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b.Throttled(time.Second)
	eventually(t, 10*time.Second, "the pause written", func() bool {
		e, err := kv.Get(ctx, stateKey(Fingerprint("sk_test_permissions")))
		return err == nil && strings.Contains(string(e.Value()), "pause_until")
	})
	st := b.Stats()
	b.Close()
	if st.Mode != ModeFleet || st.Claims == 0 || st.Granted != 20 {
		t.Errorf("worker's budget: %+v", st)
	}

	opsKV, err := connect("ops", "o").KeyValue(ctx, "RATE_BUDGET")
	if err != nil {
		t.Fatalf("open the bucket as ops: %v", err)
	}
	statuses, err := ReadStatus(ctx, opsKV)
	if err != nil || len(statuses) != 1 || statuses[0].Granted == 0 {
		t.Errorf("ReadStatus as ops: %+v, %v", statuses, err)
	}
	for _, nc := range conns {
		if err := nc.Flush(); err != nil { // the server reports a denial before this round trip ends
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range denied {
		t.Error(d)
	}
}

// serverWithUsers starts a JetStream server (stopped at cleanup) whose
// clients log in as one of users.
func serverWithUsers(t *testing.T, users ...*server.User) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: users,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}
