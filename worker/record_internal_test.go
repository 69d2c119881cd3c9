package worker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRecordErrorReason: what /readyz and the log say of a record JetStream
// did not store, for each refusal an operator can act on. JetStream's
// "insufficient resources" (10023: the account's or the server's storage
// limit reached) was shown as the server's bare words.
func TestRecordErrorReason(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"stream full", &jetstream.APIError{ErrorCode: 10077, Description: "maximum bytes exceeded"}, "it is full"},
		{"storage", &jetstream.APIError{ErrorCode: 10047, Description: "insufficient storage resources available"}, "it is full"},
		{"account or server limit", &jetstream.APIError{ErrorCode: 10023, Description: "insufficient resources"}, "JetStream storage limit"},
		{"no stream", jetstream.ErrNoStreamResponse, "does not exist"},
		{"no answer", context.DeadlineExceeded, "did not confirm in time"},
		{"timeout", nats.ErrTimeout, "did not confirm in time"},
		{"other", errors.New("something else\nsecond line"), "something else"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &recordError{stream: "SESSION_RESULTS", kind: kindResult, err: c.err}
			if got := e.reason(); !strings.Contains(got, c.want) {
				t.Errorf("reason %q, want it to say %q", got, c.want)
			}
		})
	}
}
