package jobs

import (
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream's codes for a message refused for want of room. The stream
// refuses with 10077 ("store failed") and the store's words; the other
// three are the storage of the account or the server.
const (
	codeStoreFailed          jetstream.ErrorCode = 10077
	codeStorageExceeded      jetstream.ErrorCode = 10047 // insufficient storage resources available
	codeInsufficient         jetstream.ErrorCode = 10023 // insufficient resources
	codeAccountLimitExceeded jetstream.ErrorCode = 10002 // resource limits exceeded for account
)

// StreamFull reports whether err is JetStream refusing a message because
// the stream is full (for the jobs stream: Topology.JobsMaxBytes is
// reached). The message was not stored, and no stored one was evicted:
// publishing it again once the stream has room is safe.
func StreamFull(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != codeStoreFailed {
		return false
	}
	// nats-server's words (ErrMaxBytes, ErrMaxMsgs, ErrMaxMsgsPerSubject)
	// for a stream that refuses new messages because a limit is reached.
	// Under the same code it says other things too ("message too large"),
	// which are no lack of room.
	d := strings.ToLower(api.Description)
	for _, w := range []string{"maximum bytes exceeded", "maximum messages exceeded", "maximum messages per subject exceeded"} {
		if strings.Contains(d, w) {
			return true
		}
	}
	return false
}

// StorageFull reports whether err is JetStream refusing a message because
// the account's or the server's JetStream storage is used up
// (max_file_store, max_mem_store, the account's limits, a full disk). The
// message was not stored.
func StorageFull(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode {
	case codeStorageExceeded, codeInsufficient, codeAccountLimitExceeded:
		return true
	}
	return false
}
