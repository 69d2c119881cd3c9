package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestGivenUpStreamCreatedAgainStores: the given-up stream deleted while
// the workers run is created again by the next sweep (keptAdvisories.read).
// A sweep that found it missing while its deletion was still under way
// created it at once, and NATS (2.15) took that stream and left it unable
// to store (see recreate): every advisory published to it then went
// unanswered, lost, the stream never made again since it was not missing.
// Consumers on the stream (an operator's) make the deletion last long
// enough for the sweep to land in it: about one round in two did, without
// the wait for the deletion to end.
func TestGivenUpStreamCreatedAgainStores(t *testing.T) {
	t.Parallel() // a server of its own
	w, _, js := readConsumer(t)
	ctx := t.Context()
	topo := w.cfg.Topology
	name := topo.GivenUpStream()
	kept := &keptAdvisories{w: w}
	for round := 1; round <= 8; round++ {
		for c := range 120 {
			if _, err := js.CreateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: fmt.Sprint("operator", c), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
				t.Fatal(err)
			}
		}
		deleted := make(chan error, 1)
		go func() { deleted <- js.DeleteStream(ctx, name) }()
		// The sweep comes as the stream leaves the API.
		for {
			_, err := js.Stream(ctx, name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		kept.read(ctx)
		if err := <-deleted; err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Publish(pctx, topo.MaxDeliveriesSubject(), fmt.Appendf(nil, `{"stream_seq":%d,"deliveries":5}`, round))
		cancel()
		if err != nil {
			t.Fatalf("round %d: the given-up stream the sweep created again stores nothing: %v", round, err)
		}
	}
}
