package jobs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	codeInvalidStream  jetstream.ErrorCode = 10052 // a stream configuration refused, the reason in the description
	codeAckPendingOver jetstream.ErrorCode = 10121 // consumer max ack pending exceeds system limit of N
	codeMaxStreams     jetstream.ErrorCode = 10027 // maximum number of streams reached
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

// overServerLimit says what to do when JetStream refused a stream or
// consumer whose setting is over a limit of the server's JetStream
// configuration (jetstream { limits { … } }); "" for any other error. The
// server's words name neither the worker's setting nor the server's.
// name and window are the refused stream's (or bucket's) and its duplicate
// window; dedup names the worker's setting of it, "" when it has none (a
// fixed window). buckets is the key-value buckets' window, fixed by NATS:
// lowering the worker's setting below it does not do.
func overServerLimit(name string, window time.Duration, dedup string, buckets time.Duration, err error) string {
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != codeInvalidStream || !strings.Contains(api.Description, "duplicates window can not be larger then server limit") {
		return ""
	}
	if dedup == "" {
		why := "a job's one record relies on it"
		if strings.HasPrefix(name, "bucket ") {
			why = "by NATS"
		}
		return fmt.Sprintf("; %s remembers ids for %s, fixed (%s), and the workers' key-value buckets for %s: "+
			"raise the server's jetstream { limits { duplicate_window } } to %s or more", name, window, why, buckets, max(window, buckets))
	}
	return fmt.Sprintf("; its duplicate window, %s, is %s: lower it to the server's jetstream { limits { duplicate_window } } or less, or raise that limit "+
		"(the workers' key-value buckets need it at %s or more, whatever %s is: NATS fixes their window)",
		window, dedup, buckets, dedup)
}

// bucketsWindow is the longest duplicate window NATS gives the key-value
// buckets of kvs (see kvStreamConfig): a server's duplicate_window limit
// below it refuses them.
func bucketsWindow(kvs ...jetstream.KeyValueConfig) time.Duration {
	var w time.Duration
	for _, kv := range kvs {
		w = max(w, kvStreamConfig(kv).Duplicates)
	}
	return w
}

// ackPendingOverServerLimit is overServerLimit for the consumer's
// max_ack_pending.
func ackPendingOverServerLimit(maxAckPending int, err error) string {
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != codeAckPendingOver {
		return ""
	}
	return fmt.Sprintf("; the jobs in flight over all workers, max_ack_pending %d, are --max-ack-pending (WORKER_MAX_ACK_PENDING): "+
		"lower it to that limit or less (and each worker's --concurrency to it or less), or raise the limit "+
		"(the server's jetstream { limits { max_ack_pending } }, or the account's JetStream max_ack_pending)", maxAckPending)
}

// overAccountLimit says what to do when the account's JetStream limits
// leave no room for one more stream; "" for any other error. The workers
// need six (the jobs, results, dead-letter and given-up streams and two
// key-value buckets).
func overAccountLimit(err error) string {
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != codeMaxStreams {
		return ""
	}
	return "; the workers need six streams in this account (the jobs, results, dead-letter and given-up streams, and two key-value buckets): " +
		"raise the account's JetStream max_streams (deploy/README.md), or delete streams it no longer uses"
}
