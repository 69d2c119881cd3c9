package testenv

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// FillStream makes the stream refuse every message after the one it holds:
// a JetStream error answered to the next publish ("maximum messages
// exceeded"), without a server fault.
func FillStream(t testing.TB, js jetstream.JetStream, stream string) {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

// RecreateStream deletes a stream and creates it again as it was, empty:
// its sequences start at 1 again, as after an operator's mistake.
func RecreateStream(t testing.TB, js jetstream.JetStream, name string) {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if err := js.DeleteStream(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}
