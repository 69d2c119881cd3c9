// Package streamuse says how much of its byte cap a stream holds, in the
// same words and against the same threshold wherever an operator reads it:
// the jobs stream's in the worker's status, publish status and the
// console, the results stream's in publish status and the console. Both refuse new
// messages once full (jobs.StreamFull, discard new), so the time to act is
// before: NearlyFull says when.
package streamuse

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/text"
)

// NearlyFullPercent is the share of its cap, in percent, from which a
// stream is nearly full and its readers warn of it.
const NearlyFullPercent = 80

// The worker's settings of the jobs and results streams' caps.
const (
	JobsMaxBytesSetting    = "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES)"
	ResultsMaxBytesSetting = "--results-max-bytes (WORKER_RESULTS_MAX_BYTES)"
)

// Use is a stream's size against its cap.
type Use struct {
	Bytes uint64
	// MaxBytes is the stream's cap; none when it is not positive
	// (JetStream says -1).
	MaxBytes int64
	Messages uint64
}

// Of is the use info reports: its state's bytes and messages, its
// configuration's max_bytes.
func Of(info *jetstream.StreamInfo) Use {
	return Use{Bytes: info.State.Bytes, MaxBytes: info.Config.MaxBytes, Messages: info.State.Msgs}
}

// Capped reports whether the stream has a byte cap.
func (u Use) Capped() bool { return u.MaxBytes > 0 }

// Percent is the share of the cap the stream holds, rounded down, so that
// a stream shown at 80% is one warned of and one at 79% is not; 0 without
// a cap. It is over 100 when the cap was lowered below what the stream
// held.
func (u Use) Percent() uint64 {
	if !u.Capped() {
		return 0
	}
	hi, lo := bits.Mul64(u.Bytes, 100)
	if hi >= uint64(u.MaxBytes) {
		return math.MaxUint64 // cannot be stored; kept from a division panic
	}
	q, _ := bits.Div64(hi, lo, uint64(u.MaxBytes))
	return q
}

// NearlyFull reports whether the stream holds NearlyFullPercent of its cap
// or more.
func (u Use) NearlyFull() bool { return u.Capped() && u.Percent() >= NearlyFullPercent }

// Text says the use in words, counting the messages as one or many:
// "12.3 MiB of 256.0 MiB (4%), 1,234 jobs", or "12.3 MiB (no cap), 1,234
// jobs".
func (u Use) Text(one, many string) string {
	noun := many
	if u.Messages == 1 {
		noun = one
	}
	count := text.GroupDigits(strconv.FormatUint(u.Messages, 10)) + " " + noun
	if !u.Capped() {
		return fmt.Sprintf("%s (no cap), %s", text.Bytes(u.Bytes), count)
	}
	return fmt.Sprintf("%s of %s (%d%%), %s", text.Bytes(u.Bytes), text.Bytes(uint64(u.MaxBytes)), u.Percent(), count)
}

// JobsWarning says, when u is the jobs stream's use and it is nearly full,
// what a full one does and which setting raises its cap; "" otherwise.
func (u Use) JobsWarning() string {
	if !u.NearlyFull() {
		return ""
	}
	return fmt.Sprintf("the jobs stream is %d%% full: once full it refuses new jobs (their publishers are told; no stored job is dropped); "+
		"let the workers work off the backlog, or raise its cap with the workers' %s", u.Percent(), JobsMaxBytesSetting)
}

// ResultsWarning says, when u is the results stream's use and it is nearly
// full, what a full one does and what makes room; "" otherwise.
func (u Use) ResultsWarning() string {
	if !u.NearlyFull() {
		return ""
	}
	return fmt.Sprintf("the results stream is %d%% full: once full it refuses new results, and the workers keep the jobs that succeed (not ready) until older results age out; "+
		"raise its cap with the workers' %s, or keep results for less time (--results-max-age)", u.Percent(), ResultsMaxBytesSetting)
}
