package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

// startJetStream runs a real embedded NATS server with JetStream for one
// test and returns a JetStream context on it. Everything is torn down by
// t.Cleanup.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	return embedded.StartTest(t).JetStream
}

// testContext is a context bounded well below the test timeout, so a hung
// server call fails the test with a message instead of a panic dump.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ensureTopology creates the default topology's streams on js.
func ensureTopology(t *testing.T, js jetstream.JetStream, top Topology) {
	t.Helper()
	if _, err := top.Ensure(testContext(t), js); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

// streamMsgs is how many messages a stream holds now.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(testContext(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(testContext(t))
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info.State.Msgs
}
