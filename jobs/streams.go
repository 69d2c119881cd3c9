package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// Topology names the streams and the consumer the worker uses, and how
// they are configured. Publishers and operators' tools read the same
// Topology, so all of them agree on names. The zero value is not usable:
// start from DefaultTopology.
type Topology struct {
	Subjects         Subjects
	JobsStream       string
	ResultsStream    string
	DeadLetterStream string
	// Consumer is the durable consumer every worker process shares. Its
	// jobs stream's given-up stream (GivenUpStream) keeps the consumer's
	// max-deliveries advisories.
	Consumer string
	// ProgressBucket is the key-value bucket where revoke_all jobs keep
	// their progress, so a redelivered job resumes instead of starting over.
	ProgressBucket string
	// ProgressTTL bounds how long a job's progress is kept.
	ProgressTTL time.Duration
	// RateBucket is the key-value bucket where the workers sharing a Clerk
	// key share its rate budget (see docs/rate-limit.md).
	RateBucket string
	// Replicas of every stream: 1 on a single server, 3 on a cluster.
	Replicas int
	// Storage of every stream; file storage survives restarts.
	Storage jetstream.StorageType
	// DedupWindow is how long a Nats-Msg-Id is remembered by the jobs
	// stream: a job published twice with the same id within it runs once.
	DedupWindow time.Duration
	// JobsMaxBytes caps the jobs stream, so that publishers (a tenant, a
	// runaway batch) cannot fill the server's storage, which the results
	// and dead letters share. When it is full a new job is refused, its
	// publisher told so (nothing stored: publishing it again later is
	// safe); no job already stored is ever evicted.
	JobsMaxBytes int64
	// ResultsMaxAge bounds how long results are kept.
	ResultsMaxAge time.Duration
	// ResultsMaxBytes caps the results stream. JetStream counts what every
	// stream of the account stores against its storage limit: results
	// without a cap (a flood of large list answers, or a day of them at
	// Clerk's rate) would fill it, and then every stream refuses, the jobs
	// stream included. When it is full a new result is refused (never an
	// older one evicted): the worker keeps the job and is not ready.
	ResultsMaxBytes int64
	// DeadLetterMaxAge bounds how long dead letters are kept (0: forever).
	DeadLetterMaxAge time.Duration
	// DeadLetterMaxBytes caps the dead-letter stream. When it is full new
	// dead letters are refused (never older ones evicted), and the worker
	// stops acking the jobs it cannot dead-letter.
	DeadLetterMaxBytes int64
	// MaxDeliver is the delivery budget of a job: on its last delivery a job
	// still failing with retryable errors is dead-lettered as exhausted.
	// The consumer's own MaxDeliver is BackstopMargin higher, so that
	// JetStream gives up on a job (class max_deliveries) only when no worker
	// could settle it, never while a worker is on its last delivery.
	MaxDeliver int
	// AckWait is how long a delivery may go without an ack or a progress
	// signal before JetStream redelivers it.
	AckWait time.Duration
	// MaxAckPending bounds the jobs delivered and not yet acked, over all
	// worker processes.
	MaxAckPending int
}

// DefaultTopology is the topology the worker uses unless configured.
func DefaultTopology() Topology {
	return Topology{
		Subjects:           Subjects{Prefix: DefaultPrefix},
		JobsStream:         "SESSION_JOBS",
		ResultsStream:      "SESSION_RESULTS",
		DeadLetterStream:   "SESSION_DLQ",
		Consumer:           "session-worker",
		ProgressBucket:     "SESSION_BULK_PROGRESS",
		ProgressTTL:        7 * 24 * time.Hour,
		RateBucket:         "SESSION_RATE_BUDGET",
		Replicas:           1,
		Storage:            jetstream.FileStorage,
		DedupWindow:        2 * time.Minute,
		JobsMaxBytes:       DefaultJobsMaxBytes,
		ResultsMaxAge:      24 * time.Hour,
		ResultsMaxBytes:    DefaultResultsMaxBytes,
		DeadLetterMaxAge:   90 * 24 * time.Hour,
		DeadLetterMaxBytes: 1 << 30,
		MaxDeliver:         5,
		AckWait:            30 * time.Second,
		MaxAckPending:      1000,
	}
}

// DefaultJobsMaxBytes is the jobs stream's default size, 256 MiB. The
// backlog the README and BENCHMARKS promise, 100,000 jobs of about 200
// bytes, takes 30 to 40 MB with the headers (message id, trace context)
// and JetStream's per-message overhead: the cap holds more than six such
// backlogs (hours of work at Clerk's rate limit), or about 4,000 jobs of
// the largest size (MaxJobBytes), while a publisher that goes on queueing
// is stopped at the cap rather than at a full disk. JetStream reserves the
// cap, with the dead-letter stream's 1 GiB, against the server's
// max_file_store (deploy/README.md): a larger default would stop a worker
// on a small server, the embedded one included (75% of the free disk),
// from creating its streams at all.
const DefaultJobsMaxBytes = 256 << 20

// DefaultResultsMaxBytes is the results stream's default size, 2 GiB. A
// result takes about 1.4 KB stored (a revoke's; a list of 500 sessions
// about 310 KB): the cap holds the default day of results up to about 17
// jobs a second, a day at Clerk's production rate (100 a second) needing
// about 12 GB. Reserved with the jobs and dead-letter caps, it fits the
// shipped servers' max_file_store (cluster.conf's 4GB the smallest).
const DefaultResultsMaxBytes = 2 << 30

// minStreamBytes is the smallest size allowed for a stream with a byte
// cap: more than a job of MaxJobBytes with its headers, or a dead letter.
const minStreamBytes = 1 << 20

// minDedupWindow is the shortest duplicates window JetStream takes: it
// refuses a stream with a shorter one ("duplicates window needs to be >=
// 100ms", checkStreamCfg in nats-server's stream.go).
const minDedupWindow = 100 * time.Millisecond

// maxStreamBytesTotal is the most the byte caps of the worker's streams may
// add up to: JetStream reserves every stream's cap against the server's
// max_file_store (or max_memory_store), an int64 of bytes, adding them up
// (reserveStreamResources and checkBytesLimits in nats-server's
// jetstream.go), so no server can take caps beyond it together; the
// worker would start and never be ready.
const maxStreamBytesTotal = math.MaxInt64

// BackstopMargin is how many deliveries beyond the worker's budget
// (Topology.MaxDeliver) JetStream makes before it gives up on a job. A
// delivery can be spent without any worker seeing it (a pull request that
// expired as the message went out, a worker killed mid-job); the margin
// keeps those from turning a job the worker would settle into a
// max_deliveries dead letter.
const BackstopMargin = 2

// minRecordAge is the shortest time results and dead letters may be kept.
// A redelivered job looks for its record before it runs again (a worker
// that crashed after storing it, an acknowledgement lost): the record must
// outlive every redelivery, which comes within MaxDeliver × (nak delay max +
// ack wait), minutes with the defaults.
const minRecordAge = time.Hour

// recordDedupWindow is the deduplication window of the results and
// dead-letter streams. One subject per job makes a second record
// impossible; a record's Nats-Msg-Id names the delivery that wrote it, so
// that a worker asking again after a lost acknowledgement learns the record
// is its own. That takes seconds: a minute keeps the server's bookkeeping
// small.
const recordDedupWindow = time.Minute

// Validate reports the first setting that cannot work, by name.
func (t Topology) Validate() error {
	if err := t.Subjects.Validate(); err != nil {
		return err
	}
	// JetStream refuses stream and consumer names over 255 bytes, and a
	// bucket's stream is its name after "KV_": said here, before anything
	// is created, rather than by the server halfway through. A stream
	// takes one byte less: the file store deletes one by first renaming
	// its directory to "." + name, which at 255 bytes is too long a file
	// name; the server still answers that the stream is deleted, and one
	// created again under the name opens the old messages.
	const maxName, maxStream = 255, 255 - len(".")
	const maxBucket = maxStream - len("KV_")
	for _, n := range []struct {
		setting, v string
		max        int
		why        string
	}{
		{"jobs stream", t.JobsStream, maxStream - len(givenUpSuffix), fmt.Sprintf(" (%d, less the %d bytes of %s, which name its given-up stream after it)", maxStream, len(givenUpSuffix), givenUpSuffix)},
		{"results stream", t.ResultsStream, maxStream, ""},
		{"dead-letter stream", t.DeadLetterStream, maxStream, ""}, {"consumer", t.Consumer, maxName, ""},
		{"progress bucket", t.ProgressBucket, maxBucket, ""}, {"rate-budget bucket", t.RateBucket, maxBucket, ""},
	} {
		if n.v == "" {
			return fmt.Errorf("%s name is empty", n.setting)
		}
		if len(n.v) > n.max {
			return fmt.Errorf("%s name is %d bytes: JetStream takes at most %d%s", n.setting, len(n.v), n.max, n.why)
		}
		if strings.ContainsFunc(n.v, func(r rune) bool { return r <= ' ' || strings.ContainsRune(".*>/\\", r) }) {
			return fmt.Errorf("%s name %q: must not contain spaces, '.', '*', '>', '/' or '\\'", n.setting, n.v)
		}
	}
	if t.JobsStream == t.ResultsStream || t.JobsStream == t.DeadLetterStream || t.ResultsStream == t.DeadLetterStream {
		return errors.New("the jobs, results and dead-letter streams need three different names")
	}
	if g := t.GivenUpStream(); g == t.ResultsStream || g == t.DeadLetterStream {
		return fmt.Errorf("the results or dead-letter stream is named %s, the name of the jobs stream's given-up stream (the jobs stream's name and %s): name it otherwise", g, givenUpSuffix)
	}
	switch {
	case t.Replicas < 1 || t.Replicas > 5:
		return fmt.Errorf("replicas %d: must be 1 to 5 (3 on a three-node cluster)", t.Replicas)
	case t.DedupWindow < minDedupWindow:
		return fmt.Errorf("dedup window %s: must be at least %s (JetStream refuses a shorter duplicates window)", t.DedupWindow, minDedupWindow)
	case t.ResultsMaxAge < minRecordAge:
		return fmt.Errorf("results max age %s: must be at least %s, so that a redelivered job finds its result and is not run again", t.ResultsMaxAge, minRecordAge)
	case t.DeadLetterMaxAge < 0 || (t.DeadLetterMaxAge > 0 && t.DeadLetterMaxAge < minRecordAge):
		return fmt.Errorf("dead-letter max age %s: must be 0 (forever) or at least %s, so that a redelivered job finds its dead letter", t.DeadLetterMaxAge, minRecordAge)
	case t.JobsMaxBytes < minStreamBytes:
		return fmt.Errorf("jobs max bytes %d: must be at least 1 MiB (the jobs stream's cap; unlimited is not allowed: publishers could fill the server's storage)", t.JobsMaxBytes)
	case t.ResultsMaxBytes < minStreamBytes:
		return fmt.Errorf("results max bytes %d: must be at least 1 MiB (the results stream's cap; unlimited is not allowed: results could fill the storage every stream shares)", t.ResultsMaxBytes)
	case t.DeadLetterMaxBytes < minStreamBytes:
		return fmt.Errorf("dead-letter max bytes %d: must be at least 1 MiB", t.DeadLetterMaxBytes)
	case t.ProgressTTL <= 0:
		return fmt.Errorf("progress TTL %s: must be positive", t.ProgressTTL)
	case t.MaxDeliver < 1 || t.MaxDeliver > math.MaxInt-BackstopMargin:
		// The consumer's max_deliver is MaxDeliver + BackstopMargin, an int
		// in JetStream too (ConsumerConfig.MaxDeliver in nats-server's
		// consumer.go): past the top it wraps negative, which JetStream
		// reads as unlimited, and no job would ever be given up on.
		return fmt.Errorf("max deliveries %d: must be 1 to %d (the consumer's max_deliver is %d more)", t.MaxDeliver, math.MaxInt-BackstopMargin, BackstopMargin)
	case t.AckWait < time.Second || t.AckWait > 10*time.Minute:
		return fmt.Errorf("ack wait %s: must be 1s to 10m", t.AckWait)
	case t.MaxAckPending < 1:
		return fmt.Errorf("max ack pending %d: must be at least 1", t.MaxAckPending)
	}
	return t.checkCapsTotal()
}

// checkCapsTotal refuses byte caps that add up beyond maxStreamBytesTotal
// (with the given-up stream's fixed GivenUpMaxBytes), naming the largest:
// it is the one set too high.
func (t Topology) checkCapsTotal() error {
	caps := []struct {
		setting string
		v       int64
	}{{"jobs max bytes", t.JobsMaxBytes}, {"results max bytes", t.ResultsMaxBytes}, {"dead-letter max bytes", t.DeadLetterMaxBytes}}
	largest, others := 0, int64(GivenUpMaxBytes)
	for i := 1; i < len(caps); i++ {
		if caps[i].v > caps[largest].v {
			largest = i
		}
	}
	for i, c := range caps {
		if i != largest { // added saturating: two caps may each be near the top
			others += min(c.v, maxStreamBytesTotal-others)
		}
	}
	if c := caps[largest]; c.v > maxStreamBytesTotal-others {
		return fmt.Errorf("%s %d: must be at most %d: JetStream reserves the caps of the jobs, results and dead-letter streams and the given-up stream's %d bytes together "+
			"against the server's max_file_store (or max_memory_store), at most %d bytes; set each cap to what the server's storage holds",
			c.setting, c.v, maxStreamBytesTotal-others, GivenUpMaxBytes, int64(maxStreamBytesTotal))
	}
	return nil
}

// MaxJobMessageBytes is the largest message the jobs stream stores (its
// max_msg_size): a job of MaxJobBytes with 4 KiB of headers (its message
// id, trace context and baggage). A tenant's account under deploy/nats
// takes no larger message either (its max_payload).
const MaxJobMessageBytes = MaxJobBytes + 4096

// OverMaxPayload says what to do with a job whose message NATS refused to
// send for its size (nats.ErrMaxPayload). maxPayload is what the
// connection reports (nats.Conn.MaxPayload): the server's max_payload, or
// its account's when the account has one (a tenant's under deploy/nats,
// equal to MaxJobMessageBytes). size is the refused message's, body and
// headers. Raising max_payload helps only while it is below the jobs
// stream's own limit and the message fits that limit: the stream refuses
// a larger one anyway, and the operator would raise it for nothing.
func OverMaxPayload(maxPayload int64, size int) string {
	limits := fmt.Sprintf("a job's message must fit both what this connection takes in one message (max_payload %d bytes: the NATS server's, or its account's) and the jobs stream's max message size (%d bytes: a body of at most %d bytes with %d of headers)",
		maxPayload, MaxJobMessageBytes, MaxJobBytes, MaxJobMessageBytes-MaxJobBytes)
	if maxPayload < MaxJobMessageBytes && size <= MaxJobMessageBytes {
		return fmt.Sprintf("%s: send a smaller job, or raise max_payload (the server's, or the account's) to %d", limits, MaxJobMessageBytes)
	}
	return limits + ": raising max_payload would not help, as the jobs stream would refuse the job too; send it with less trace baggage in its context, or a smaller job"
}

// JobsStreamConfig is the jobs stream: a work queue, so a job is removed
// once acked. It is capped at JobsMaxBytes and refuses new jobs when full
// (DiscardNew): a job is either stored or refused, never evicted.
//
// There is no per-tenant share (MaxMsgsPerSubject with
// DiscardNewPerSubject): JetStream counts it per subject, not per tenant,
// and a tenant may publish on as many subjects as there are op tokens
// (sessions.tenant.<tenant>.*, mistyped ones included, which the stream
// keeps to dead-letter), so it would bound no tenant; and it counts
// messages, not bytes, so a count that leaves room for the 100,000-job
// backlog of jobs outside tenants lets one tenant's large jobs fill the
// stream all the same.
func (t Topology) JobsStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.JobsStream,
		Description: "Clerk session jobs waiting to run",
		Subjects:    t.Subjects.JobFilters(),
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     t.Storage,
		Replicas:    t.Replicas,
		Duplicates:  t.DedupWindow,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    t.JobsMaxBytes,
		MaxMsgSize:  MaxJobMessageBytes,
	}
}

// ErrStoredAsRecord is returned when JetStream stored a job in one of the
// record streams instead of the jobs stream: the publisher's subject prefix
// lies under the worker's record subjects (sessions.results, say). The job
// was NOT queued, and no worker will run it.
var ErrStoredAsRecord = errors.New("published where a record stream takes it, not the jobs stream")

// CheckQueued says whether JetStream's answer to a job published under t,
// its acknowledgement or its refusal, shows the job went to a record
// stream rather than one workers take jobs from (ErrStoredAsRecord): stored
// there, or refused there as a second message on its subject, which only
// the record streams refuse.
func (t Topology) CheckQueued(ack *jetstream.PubAck, err error) error {
	switch {
	case ack != nil && (ack.Stream == t.ResultsStream || ack.Stream == t.DeadLetterStream):
		return fmt.Errorf("the record stream %s stored it at seq %d, not the jobs stream %s, so the job was NOT queued and no worker will run it (%w); the subject prefix %q is not the worker's --subject-prefix",
			ack.Stream, ack.Sequence, t.JobsStream, ErrStoredAsRecord, t.Subjects.prefix())
	case ack == nil && perSubjectFull(err):
		return fmt.Errorf("a record stream refused it, as a second message on its subject (%w), so the job was NOT queued and no worker will run it (%w); the subject prefix %q is not the worker's --subject-prefix",
			err, ErrStoredAsRecord, t.Subjects.prefix())
	}
	return nil
}

// ResultsStreamConfig is the results stream: successes, kept ResultsMaxAge.
// Each job's result has a subject of its own (Subjects.Result), and the
// stream keeps one message per subject and refuses a second: a job is
// recorded once, whatever the timing, by construction.
func (t Topology) ResultsStreamConfig() jetstream.StreamConfig {
	c := t.recordStream(t.ResultsStream, "Results of Clerk session jobs that succeeded", t.Subjects.ResultFilter(), t.ResultsMaxAge)
	c.MaxBytes = t.ResultsMaxBytes
	return c
}

// DeadLetterStreamConfig is the dead-letter stream. Like the results stream
// it keeps one record per job's subject; it also refuses new messages when
// full, so nothing in it is ever evicted silently: the worker sees the
// refusal and keeps the job.
func (t Topology) DeadLetterStreamConfig() jetstream.StreamConfig {
	c := t.recordStream(t.DeadLetterStream, "Clerk session jobs that could not succeed", t.Subjects.DeadLetterFilter(), t.DeadLetterMaxAge)
	c.MaxBytes = t.DeadLetterMaxBytes
	return c
}

// recordStream is a stream of records: one message per subject, a second
// refused rather than replacing the first, read with direct gets.
func (t Topology) recordStream(name, description, filter string, maxAge time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:                 name,
		Description:          description,
		Subjects:             []string{filter},
		Retention:            jetstream.LimitsPolicy,
		Storage:              t.Storage,
		Replicas:             t.Replicas,
		MaxAge:               maxAge,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Duplicates:           recordDedupWindow,
		AllowDirect:          true,
	}
}

// ProgressBucketConfig is the key-value bucket of revoke_all progress.
func (t Topology) ProgressBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      t.ProgressBucket,
		Description: "Progress of revoke_all jobs, so a redelivered job resumes",
		TTL:         t.ProgressTTL,
		Storage:     t.Storage,
		Replicas:    t.Replicas,
		History:     1,
	}
}

// RateBucketConfig is the key-value bucket of the workers' shared rate
// budgets.
func (t Topology) RateBucketConfig() jetstream.KeyValueConfig {
	return ratebudget.BucketConfig(t.RateBucket, t.Replicas, t.Storage)
}

// givenUpSuffix names the given-up stream after its jobs stream.
const givenUpSuffix = "_GIVEN_UP"

// GivenUpStream is the stream that keeps the consumer's MAX_DELIVERIES
// advisories (GivenUpStreamConfig): the jobs stream's name and _GIVEN_UP,
// SESSION_JOBS_GIVEN_UP by default.
func (t Topology) GivenUpStream() string { return t.JobsStream + givenUpSuffix }

// MaxDeliveriesSubject is where JetStream says that the workers' consumer
// gave up on a job: its MAX_DELIVERIES advisory.
func (t Topology) MaxDeliveriesSubject() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + t.JobsStream + "." + t.Consumer
}

// GivenUpStreamConfig is the given-up stream: it stores each
// MAX_DELIVERIES advisory of the workers' consumer until a worker has
// dead-lettered its job (and deletes the advisory). JetStream sends the
// advisory once, and stops delivering the job, which stays in the work
// queue: a worker that did not hear it (none was running, or every one was
// reconnecting) reads it here at its next sweep. Without it, such a job is
// found only once no job at all is pending, which a busy system may never
// reach. Capped at GivenUpMaxBytes, the oldest advisory dropped first.
func (t Topology) GivenUpStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.GivenUpStream(),
		Description: "Advisories of Clerk session jobs JetStream stopped delivering, until dead-lettered",
		Subjects:    []string{t.MaxDeliveriesSubject()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.Storage,
		Replicas:    t.Replicas,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    GivenUpMaxBytes,
		// Advisories carry no message id: the records' short window
		// spares the server's bookkeeping (and fits under any server
		// duplicate_window limit the records fit).
		Duplicates: recordDedupWindow,
	}
}

// ErrAdvisoriesTaken: another stream of the account captures the
// consumer's MAX_DELIVERIES advisories (an operator's stream of every
// advisory, `$JS.EVENT.>`), and JetStream gives a subject to one stream
// only, so the given-up stream cannot be made. The workers run without it:
// a job given up on while none of them listened is then found only once no
// job is pending.
var ErrAdvisoriesTaken = errors.New("another stream captures the consumer's max-deliveries advisories")

// codeSubjectOverlap: JetStream refused a stream whose subjects another
// stream of the account captures.
const codeSubjectOverlap jetstream.ErrorCode = 10065

// EnsureGivenUpStream creates the given-up stream (GivenUpStreamConfig), or
// updates it to this configuration; Ensure calls it. Its error wraps
// ErrAdvisoriesTaken when another stream captures the advisories, saying
// which and what to do.
func (t Topology) EnsureGivenUpStream(ctx context.Context, js jetstream.JetStream) error {
	cfg := t.GivenUpStreamConfig()
	_, err := js.CreateOrUpdateStream(ctx, cfg)
	var api *jetstream.APIError
	if errors.As(err, &api) && api.ErrorCode == codeSubjectOverlap {
		other := "another stream"
		names := js.StreamNames(ctx, jetstream.WithStreamListSubject(t.MaxDeliveriesSubject()))
		for n := range names.Name() {
			if n != cfg.Name {
				other = "stream " + text.Line(n, maxQuoted)
			}
		}
		return fmt.Errorf("create stream %s: %s captures its subject %s (%w): the workers run without it, and a job JetStream gives up on while none of them listens "+
			"is dead-lettered only once no job is pending; to have it kept, take that subject out of the other stream's subjects "+
			"(or have the other stream capture no $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES subject): the workers then create it at their next sweep",
			cfg.Name, other, t.MaxDeliveriesSubject(), ErrAdvisoriesTaken)
	}
	if err != nil {
		noRoom := ""
		if noRoomForCap(cfg, "its cap", err) != "" {
			noRoom = fmt.Sprintf("; JetStream reserves the stream's cap, max_bytes %d (fixed), when it creates the stream, and the room left by the server's max_file_store "+
				"or the account's JetStream limits, beside what the other capped streams reserve, is less: raise those limits (deploy/README.md), "+
				"or lower --jobs-max-bytes, --results-max-bytes or --dlq-max-bytes", cfg.MaxBytes)
		}
		return fmt.Errorf("create or update stream %s (subjects %v): %w%s%s%s", cfg.Name, cfg.Subjects, err, noRoom,
			overServerLimit("stream "+cfg.Name, cfg.Duplicates, "", bucketsWindow(t.ProgressBucketConfig(), t.RateBucketConfig()), err), overAccountLimit(err))
	}
	return nil
}

// GivenUpMaxBytes caps the given-up stream: an advisory takes about 300
// bytes stored, so some 25,000 jobs given up on while no worker runs
// (older ones are then found by the sweep, once no job is pending).
const GivenUpMaxBytes = 8 << 20

// ConsumerConfig is the durable pull consumer the workers share.
func (t Topology) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.Consumer,
		Description:   "Clerk session job workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver + BackstopMargin,
		MaxAckPending: t.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// capBelowHeld refuses to lower a record stream's cap below what the
// stream holds. Capped so, it would refuse every new record until enough
// old ones age out (a day of results, 90 days of dead letters), and every
// worker would keep each job it cannot record, not ready: an older
// worker's uncapped results stream of a few GiB meeting the 2 GiB default
// would stop the fleet on upgrade. The jobs stream is not guarded: the
// workers work it off. A stream that is only full at its own cap, or that
// cannot be read (CreateOrUpdateStream then says why), passes.
func capBelowHeld(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, setting string) error {
	s, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		return nil
	}
	have := s.CachedInfo()
	lowered := have.Config.MaxBytes <= 0 || have.Config.MaxBytes > cfg.MaxBytes
	if !lowered || have.State.Bytes <= uint64(cfg.MaxBytes) {
		return nil
	}
	if cfg.MaxAge > 0 && (have.Config.MaxAge == 0 || cfg.MaxAge < have.Config.MaxAge) {
		// A shorter max_age makes the room itself, once the server has
		// removed what it no longer keeps (in the background): applied
		// alone, the cap follows at a later try.
		c := have.Config
		c.MaxAge = cfg.MaxAge
		if _, err := js.UpdateStream(ctx, c); err != nil {
			return fmt.Errorf("update stream %s to max_age %s before its cap: %w", cfg.Name, cfg.MaxAge, err)
		}
		return fmt.Errorf("stream %s holds %d bytes, more than its cap would be, max_bytes %d (%s): its shorter max_age %s is applied first, "+
			"and the cap once the records older than that are gone (if what is left still exceeds it, raise %s)",
			cfg.Name, have.State.Bytes, cfg.MaxBytes, setting, cfg.MaxAge, setting)
	}
	until := fmt.Sprintf("until enough records age out (max_age %s)", cfg.MaxAge)
	if cfg.MaxAge == 0 {
		until = "for good (its records are kept forever, max_age 0)"
	}
	return fmt.Errorf("stream %s holds %d bytes, more than its cap would be, max_bytes %d (%s): capped below what it holds it would refuse "+
		"every new record, and the workers would keep each job they cannot record (not ready), %s; it is left as it is: "+
		"start the workers with %s above what it holds (`nats stream info %s`; JetStream reserves it in max_file_store), "+
		"or make room first (nats stream purge %s, or a shorter max age)",
		cfg.Name, have.State.Bytes, cfg.MaxBytes, setting, until, setting, cfg.Name, cfg.Name)
}

// Ensure creates the jobs, results, dead-letter and given-up streams, the
// progress and rate-budget buckets and the consumer, or updates them to this
// configuration. It is idempotent: every worker calls it at start. The
// given-up stream comes before the consumer, so that no advisory of the
// consumer's goes unkept; one that another stream's subjects leave no room
// for (ErrAdvisoriesTaken) is left out, the rest made all the same.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	kvs := []jetstream.KeyValueConfig{t.ProgressBucketConfig(), t.RateBucketConfig()}
	buckets := bucketsWindow(kvs...)
	for _, s := range []struct {
		cfg     jetstream.StreamConfig
		setting string // the worker's setting of its byte cap
		dedup   string // the worker's setting of its duplicate window, "" for none
		record  bool
	}{
		{t.JobsStreamConfig(), "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES)", "--dedup-window (WORKER_DEDUP_WINDOW)", false},
		{t.ResultsStreamConfig(), "--results-max-bytes (WORKER_RESULTS_MAX_BYTES)", "", true},
		{t.DeadLetterStreamConfig(), "--dlq-max-bytes (WORKER_DLQ_MAX_BYTES)", "", true},
	} {
		if s.record {
			if err := capBelowHeld(ctx, js, s.cfg, s.setting); err != nil {
				return nil, err
			}
		}
		if _, err := js.CreateOrUpdateStream(ctx, s.cfg); err != nil {
			return nil, fmt.Errorf("create or update stream %s (subjects %v): %w%s%s%s", s.cfg.Name, s.cfg.Subjects, err,
				noRoomForCap(s.cfg, s.setting, err), overServerLimit("stream "+s.cfg.Name, s.cfg.Duplicates, s.dedup, buckets, err), overAccountLimit(err))
		}
	}
	if err := t.EnsureGivenUpStream(ctx, js); err != nil && !errors.Is(err, ErrAdvisoriesTaken) {
		return nil, err
	}
	for _, kv := range kvs {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return nil, fmt.Errorf("create or update key-value bucket %s: %w%s%s", kv.Bucket, err,
				overServerLimit("bucket "+kv.Bucket, bucketsWindow(kv), "", buckets, err), overAccountLimit(err))
		}
	}
	c, err := js.CreateOrUpdateConsumer(ctx, t.JobsStream, t.ConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s on %s: %w%s", t.Consumer, t.JobsStream, err, ackPendingOverServerLimit(t.MaxAckPending, err))
	}
	return c, nil
}
