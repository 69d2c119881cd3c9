package jobs

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestCheckTakesTheServersRequestBatchLimit: a server configured with a
// JetStream limit on pull requests (jetstream { limits { max_request_batch:
// N } }) gives every pull consumer created or updated without max_batch
// that limit as its max_batch. Check compared the consumer's max_batch with
// 0 and reported a drift a worker's start "sets back", which no start can:
// the server puts its limit back at every update. Each worker's start and
// each topology watch then warned of a change nobody made.
func TestCheckTakesTheServersRequestBatchLimit(t *testing.T) {
	for _, limit := range []int{256, 4} { // above the workers' largest pull, and below
		t.Run(strconv.Itoa(limit), func(t *testing.T) { testCheckTakesTheServersRequestBatchLimit(t, limit) })
	}
}

func testCheckTakesTheServersRequestBatchLimit(t *testing.T, limit int) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(),
		JetStreamLimits: server.JSLimitOpts{MaxRequestBatch: limit},
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	top := DefaultTopology()
	ensureTopology(t, js, top)
	ensureTopology(t, js, top) // a second start "sets it back"
	drifts, err := top.Check(testContext(t), js)
	if err != nil || len(drifts) != 0 {
		t.Fatalf("Check after Ensure on a server limiting pull batches = %v, %v; want no drift", drifts, err)
	}
}
