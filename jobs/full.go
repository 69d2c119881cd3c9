package jobs

import (
	"errors"
	"fmt"
	"slices"
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

// JetStream's codes for a stream it will not create or update because the
// room its max_bytes would reserve is not there.
const (
	codeMemoryExceeded jetstream.ErrorCode = 10028 // insufficient memory resources available
	codeMaxStreamBytes jetstream.ErrorCode = 10122 // stream max bytes exceeds account limit max stream bytes
	codeNoPeers        jetstream.ErrorCode = 10005 // no suitable peers for placement (clustered), with the reasons
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
	return slices.ContainsFunc([]string{"maximum bytes exceeded", "maximum messages exceeded", "maximum messages per subject exceeded"},
		func(w string) bool { return strings.Contains(d, w) })
}

// perSubjectFull reports whether err is a stream refusing a message as one
// more on its subject than it keeps (MaxMsgsPerSubject).
func perSubjectFull(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == codeStoreFailed && strings.Contains(strings.ToLower(api.Description), "maximum messages per subject exceeded")
}

// StorageFull reports whether err is JetStream refusing a message because
// the account's or the server's JetStream storage is used up
// (max_file_store, max_mem_store, the account's limits, a full disk). The
// message was not stored.
func StorageFull(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && slices.Contains([]jetstream.ErrorCode{codeStorageExceeded, codeInsufficient, codeAccountLimitExceeded}, api.ErrorCode)
}

// noRoomForCap says what to do when JetStream refused to create or update
// cfg, a stream with a byte cap, because the cap it reserves (against the
// server's max_file_store or max_memory_store, or the account's JetStream
// limits) does not fit; "" for any other error. An operator whose server
// was sized before the jobs stream had a cap meets this on upgrading, and
// the server's words name neither the cap nor the setting.
func noRoomForCap(cfg jetstream.StreamConfig, setting string, err error) string {
	var api *jetstream.APIError
	if cfg.MaxBytes <= 0 || setting == "" || !errors.As(err, &api) {
		return ""
	}
	switch {
	case api.ErrorCode == codeStorageExceeded, api.ErrorCode == codeMemoryExceeded, api.ErrorCode == codeMaxStreamBytes,
		api.ErrorCode == codeNoPeers && strings.Contains(api.Description, "insufficient storage"):
	default:
		return ""
	}
	limit := "max_file_store"
	if cfg.Storage == jetstream.MemoryStorage {
		limit = "max_memory_store"
	}
	return fmt.Sprintf("; JetStream reserves the stream's cap, max_bytes %d (%s), when it creates or updates the stream, and the room left by the server's %s or the account's JetStream limits (max_file or max_mem, disk_max_stream_bytes or mem_max_stream_bytes), beside what other capped streams reserve, is less: raise those limits (deploy/README.md), or lower %s",
		cfg.MaxBytes, setting, limit, setting)
}
