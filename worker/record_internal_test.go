package worker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

// TestRecordErrorReason: what /readyz and the log say of a record JetStream
// did not store, for each refusal an operator can act on. JetStream's
// "insufficient resources" (10023: the account's or the server's storage
// limit reached) was shown as the server's bare words.
func TestRecordErrorReason(t *testing.T) {
	full := &jetstream.APIError{ErrorCode: 10077, Description: "maximum bytes exceeded"}
	cases := []struct {
		name string
		kind recordKind
		err  error
		want string
	}{
		{"results stream full", kindResult, full, "it is full (raise --results-max-bytes"},
		{"dead-letter stream full", kindDeadLetter, full, "it is full (raise --dlq-max-bytes"},
		{"storage", kindResult, &jetstream.APIError{ErrorCode: 10047, Description: "insufficient storage resources available"}, "it is full"},
		{"account or server limit", kindResult, &jetstream.APIError{ErrorCode: 10023, Description: "insufficient resources"}, "JetStream storage limit"},
		{"no stream", kindResult, jetstream.ErrNoStreamResponse, "does not exist"},
		{"no answer", kindResult, context.DeadlineExceeded, "did not confirm in time"},
		{"timeout", kindResult, nats.ErrTimeout, "did not confirm in time"},
		{"other", kindResult, errors.New("something else\nsecond line"), "something else"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &recordError{stream: "SESSION_X", kind: c.kind, err: c.err}
			if got := e.reason(); !strings.Contains(got, c.want) {
				t.Errorf("reason %q, want it to say %q", got, c.want)
			}
		})
	}
}

// TestHealAnswersItsLastTryBetweenTries: between two tries to create what
// the worker owns (two seconds apart), heal answers what the last try did.
// It answered nil, so a record refused meanwhile said its stream "could
// not be created" without why, and that reason replaced the one that
// said why (JetStream's refusal, the cap and the limit to raise) in the
// worker's log and on /readyz.
func TestHealAnswersItsLastTryBetweenTries(t *testing.T) {
	// Room for the jobs stream's cap, not for the results stream's beside it.
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: t.TempDir(), MaxStore: 1<<30 + 128<<20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	w := newEmulatedWorker(t, srv.Conn)
	first := w.records.heal(t.Context())
	if first == nil || !strings.Contains(first.Error(), "--results-max-bytes") {
		t.Fatalf("heal on a server without room for the results cap: %v; want jobs.Ensure's refusal", first)
	}
	if again := w.records.heal(t.Context()); again == nil || again.Error() != first.Error() {
		t.Errorf("heal right after a failed one: %v; want the same error, %v", again, first)
	}
}

// TestHealKeepsNoTryItsCallerEnded: a try to heal whose caller's context
// ended (a job cancelled by the shutdown, a record's deadline) was kept
// for two seconds, and every caller meanwhile was told of a context that
// was not its own, in place of why its record was refused.
func TestHealKeepsNoTryItsCallerEnded(t *testing.T) {
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	w := newEmulatedWorker(t, srv.Conn)
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.records.heal(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("heal with an ended context: %v; want context.Canceled", err)
	}
	if err := w.records.heal(t.Context()); err != nil {
		t.Errorf("heal right after a caller's ended try, on a server with room: %v; want nil", err)
	}
}

// TestRecordErrorReasonSaysWhyNotCreated: a record stream found missing
// and not created again says why (jobs.Ensure's error: JetStream's refusal
// and what to raise), on one line, bounded, with secret shapes taken out.
// The reason dropped it.
func TestRecordErrorReasonSaysWhyNotCreated(t *testing.T) {
	key := "sk_" + "live_" + strings.Repeat("A1b2", 10)
	recreate := errors.New("create or update stream SESSION_DLQ: insufficient storage resources available;\nraise max_file_store " + key + strings.Repeat(" and more", 500))
	e := &recordError{stream: "SESSION_DLQ", kind: kindDeadLetter, err: jetstream.ErrNoStreamResponse, recreate: recreate}
	got := e.reason()
	for _, want := range []string{"could not be created", "insufficient storage resources available", "raise max_file_store"} {
		if !strings.Contains(got, want) {
			t.Errorf("reason %q, want it to say %q", got, want)
		}
	}
	if strings.Contains(got, key) || strings.Contains(got, "\n") || len(got) > 1200 {
		t.Errorf("reason of %d bytes %q: want one line, at most 1200 bytes, without the key", len(got), got)
	}
}
