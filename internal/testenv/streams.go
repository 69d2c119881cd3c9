package testenv

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
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

// FillJobsStream caps topo's jobs stream at 1 MiB and fills it until it
// refuses any job (FillToMaxBytes); it returns how many messages it holds.
// A worker running on topo would take them: pause its consumer first, or
// start it with the same cap (its start sets the cap back).
func FillJobsStream(t testing.TB, js jetstream.JetStream, topo jobs.Topology) int {
	t.Helper()
	cfg := topo.JobsStreamConfig()
	cfg.MaxBytes = 1 << 20
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return FillToMaxBytes(t, js, topo.Subjects.Job(jobs.OpRevoke))
}

// FillToMaxBytes publishes messages on subject until the stream that
// captures it refuses one for its byte cap (jobs.StreamFull), large ones
// first, then small ones until not even one of those fits, so that any
// job is refused after it. It returns how many the stream took; the
// stream must have a cap of a few MiB at most.
func FillToMaxBytes(t testing.TB, js jetstream.JetStream, subject string) int {
	t.Helper()
	return fillUntil(t, js, subject, jobs.StreamFull, "has it a byte cap?")
}

// FillStorage publishes messages on subject, as FillToMaxBytes does, until
// JetStream's storage refuses one (jobs.StorageFull: the account's or the
// server's limit), so that any job is refused after it by any stream of
// the account. It returns how many the stream of subject took; that
// stream must have no cap below the storage left, and the account or the
// server a limit of a few MiB at most.
func FillStorage(t testing.TB, js jetstream.JetStream, subject string) int {
	t.Helper()
	return fillUntil(t, js, subject, jobs.StorageFull, "has the account or the server a JetStream storage limit?")
}

// fillUntil publishes messages on subject, of 60 KiB, then of 16 bytes,
// each kind until full says that one was refused for want of room.
func fillUntil(t testing.TB, js jetstream.JetStream, subject string, full func(error) bool, hint string) int {
	t.Helper()
	n := 0
	for _, size := range []int{60 << 10, 16} {
		for {
			m := nats.NewMsg(subject)
			m.Data = bytes.Repeat([]byte{'x'}, size)
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("fill-%d", n))
			_, err := js.PublishMsg(t.Context(), m)
			if full(err) {
				break
			}
			if err != nil {
				t.Fatalf("filling the stream of %s, message %d: %v", subject, n, err)
			}
			if n++; n > 100_000 {
				t.Fatalf("the stream of %s took %d messages without refusing one: %s", subject, n, hint)
			}
		}
	}
	return n
}
