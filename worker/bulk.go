package worker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// kvProgress keeps revoke_all progress in a JetStream key-value bucket.
type kvProgress struct {
	kv jetstream.KeyValue
	// heal creates the bucket again once it is found gone (deleted by
	// hand), as the worker does for its streams, consumer and rate bucket:
	// without it every revoke_all would fail on every delivery, and end
	// dead-lettered as exhausted, until the worker restarted.
	heal func(context.Context) error
	log  zerolog.Logger
}

// do runs op, and once more after creating the bucket again if op found
// it gone.
func (s kvProgress) do(ctx context.Context, op func() error) error {
	err := op()
	if err == nil || s.heal == nil || !bucketGone(err) {
		return err
	}
	if herr := s.heal(ctx); herr != nil {
		return fmt.Errorf("%w; creating the progress bucket again failed: %v", err, herr)
	}
	return op()
}

// bucketGone reports whether a key-value operation failed because the
// bucket's stream does not exist (a get or put to it finds no responder).
func bucketGone(err error) bool {
	return streamMissing(err) || errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

var _ handlers.ProgressStore = kvProgress{}

// key names a job's progress in the bucket by the job's message (tenant,
// stream generation, sequence): bounded, safe for keys whatever the job id
// holds, and never shared by two jobs that reuse an id.
func (s kvProgress) key(ctx context.Context, jobID string) string {
	j := jobOf(ctx)
	if j == nil { // a RevokeAll used outside the worker's plumbing
		sum := sha256.Sum256([]byte(jobID))
		return "id." + hex.EncodeToString(sum[:16])
	}
	return "job." + cmp.Or(j.Key.Tenant, jobs.NoTenant) + "." + j.Key.Gen + "." + strconv.FormatUint(j.Key.Seq, 10)
}

func (s kvProgress) Load(ctx context.Context, jobID string) (*handlers.BulkProgress, error) {
	var e jetstream.KeyValueEntry
	err := s.do(ctx, func() (err error) {
		e, err = s.kv.Get(ctx, s.key(ctx, jobID))
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p handlers.BulkProgress
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		// No progress, rather than a job that fails on every delivery and
		// ends dead-lettered without revoking a session: the run starts
		// afresh (sessions it had revoked are no longer listed, so only
		// its counts miss them) and its first checkpoint overwrites this.
		s.log.Warn().Str("job_id", jobID).Str("bucket", e.Bucket()).Err(err).
			Msg("revoke_all progress does not decode; starting the job afresh")
		return nil, nil
	}
	if p.Done == nil {
		p.Done = map[string]string{}
	}
	return &p, nil
}

func (s kvProgress) Save(ctx context.Context, jobID string, p *handlers.BulkProgress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.do(ctx, func() error {
		_, err := s.kv.Put(ctx, s.key(ctx, jobID), b)
		return err
	})
}

func (s kvProgress) Delete(ctx context.Context, jobID string) error {
	err := s.kv.Delete(ctx, s.key(ctx, jobID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// BulkConfig tunes revoke_all jobs.
type BulkConfig struct {
	// Concurrency bounds the revokes in flight for one revoke_all job; 0
	// (the default) sizes it at each pass from the rate limit and Clerk's
	// observed latency: enough calls in flight to use the limit (rate ×
	// latency × 1.5), 4 to 256. All calls share the worker's rate budget,
	// which serves callers in turn, so single jobs keep flowing while a bulk
	// job runs.
	Concurrency int
	// CheckpointEvery is how often a job saves its progress.
	CheckpointEvery time.Duration
	// ReportEvery is how often a job sends progress to its reply_to.
	ReportEvery time.Duration
	// MaxPasses bounds the list-and-revoke passes of one job (of a
	// lock_user job, those since the lock was last sent: a delivery that
	// sends it again, after one that could not lock, has as many more).
	MaxPasses int
}

// DefaultBulkConfig: revokes in flight sized from the rate limit and
// Clerk's observed latency (Concurrency 0), checkpoint and report every
// second, up to 3 passes.
func DefaultBulkConfig() BulkConfig {
	return BulkConfig{CheckpointEvery: time.Second, ReportEvery: time.Second, MaxPasses: 3}
}

// Validate names the first setting that cannot work.
func (b BulkConfig) Validate() error {
	switch {
	case b.Concurrency < 0 || b.Concurrency > 1024:
		return fmt.Errorf("bulk concurrency %d: must be 0 (sized from the rate limit and Clerk's latency) or 1 to 1024", b.Concurrency)
	case b.CheckpointEvery <= 0:
		return fmt.Errorf("bulk checkpoint interval %s: must be positive", b.CheckpointEvery)
	case b.ReportEvery <= 0:
		return fmt.Errorf("bulk report interval %s: must be positive", b.ReportEvery)
	case b.MaxPasses < 1:
		return fmt.Errorf("bulk max passes %d: must be at least 1", b.MaxPasses)
	}
	return nil
}

// revokeAllHandler wires a RevokeAll to this worker's Clerk client, the
// progress bucket, the dead-letter stream and reply_to.
func (w *Worker) revokeAllHandler(kv jetstream.KeyValue) *handlers.RevokeAll {
	b := w.cfg.Bulk
	return &handlers.RevokeAll{
		Clerk:      w.clerk,
		Users:      w.clerk.users(),
		Store:      kvProgress{kv: kv, heal: w.records.heal, log: w.cfg.Logger},
		DeadLetter: w.deadLetterSession,
		Report:     w.sendProgress,
		Retry: func(ctx context.Context, fn func() error) error {
			return w.cfg.Retry.do(ctx, w.clock, fn, func(err error, wait time.Duration) {
				if wait > 0 {
					w.metrics.retries.WithLabelValues(string(jobs.OpRevokeAll)).Inc()
				}
			})
		},
		Concurrency:     w.bulkConcurrency,
		CheckpointEvery: b.CheckpointEvery,
		ReportEvery:     b.ReportEvery,
		MaxPasses:       b.MaxPasses,
	}
}

// bulkConcurrency is how many revokes a revoke_all keeps in flight: the
// configured number, or enough to use the rate limit at Clerk's observed
// latency (100 ms until observed), 4 to 256.
func (w *Worker) bulkConcurrency() int {
	if n := w.cfg.Bulk.Concurrency; n > 0 {
		return n
	}
	st, ok := w.budgetStats()
	if !ok || st.Rate <= 0 {
		return 64 // no limit: plenty, still bounded
	}
	// 0 until observed: an average of durations is never negative.
	latency := cmp.Or(time.Duration(w.clerk.latency.Load()), 100*time.Millisecond)
	return min(max(int(math.Ceil(st.Rate*latency.Seconds()*1.5)), 4), 256)
}

// deadLetterSession records a session a revoke_all job could not revoke as
// a sessions.revoke job of its own (in the parent's tenant, replayable):
// replaying it revokes just that session.
func (w *Worker) deadLetterSession(ctx context.Context, parentJobID, sessionID string, cause error) error {
	parent := jobOf(ctx)
	if parent == nil {
		return errors.New("revoke_all: no job in the context to dead-letter a session for")
	}
	now := time.Now().UTC()
	j := &job{Op: jobs.OpRevoke, Tenant: parent.Key.Tenant, ID: sessionJobID(parent.ID, sessionID), Seq: parent.Seq, Delivery: 1, Started: now, secrets: parent.secrets, ctx: parent.ctx}
	j.Key = jobs.RecordKey{Tenant: parent.Key.Tenant, Op: jobs.OpRevoke, JobID: j.ID, Gen: parent.Key.Gen, Seq: parent.Seq}
	body, err := json.Marshal(jobs.RevokeArgs{Common: jobs.Common{JobID: j.ID}, SessionID: sessionID})
	if err != nil {
		return err
	}
	info := j.errorInfo(jobs.ClassPermanent, fmt.Errorf("revoke_all job %s: %w", parentJobID, cause))
	f := failureOf(now, cause)
	o := w.deadLetterOutcome(j, w.cfg.Topology.Subjects.TenantJob(parent.Key.Tenant, jobs.OpRevoke), body, info, []jobs.Failure{f}, 1, 1, 0)
	o.header.Set(jobs.HeaderParentJob, parentJobID)
	already, err := w.records.store(ctx, o)
	if err != nil {
		return err
	}
	if already == 0 {
		w.metrics.deadLetters.WithLabelValues(string(jobs.OpRevoke), string(jobs.ClassPermanent)).Inc()
		w.cfg.Logger.Warn().Str("job_id", parentJobID).Str("session_id", sessionID).Str("error", info.Message).
			Msg("revoke_all: session could not be revoked; dead-lettered as its own revoke job")
	}
	return nil
}

// sessionJobID is the id of a revoke_all's per-session dead letter:
// <parent>/<session>, the parent cut and hashed when the whole would pass
// the 128 characters every job id fits in (so the letter stays replayable).
func sessionJobID(parent, sessionID string) string {
	if id := parent + "/" + sessionID; len(id) <= jobs.MaxJobIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(parent))
	tag := hex.EncodeToString(sum[:4])
	keep := max(jobs.MaxJobIDLen-len(sessionID)-len(tag)-2, 0)
	return parent[:min(keep, len(parent))] + "-" + tag + "/" + sessionID
}

func (w *Worker) sendProgress(ctx context.Context, replyTo string, p jobs.Progress) {
	if replyTo == "" {
		return
	}
	b, err := json.Marshal(p)
	if err == nil {
		m := &nats.Msg{Subject: replyTo, Data: b}
		tracing.Inject(ctx, m)
		_ = w.nc.PublishMsg(m) // progress is advisory: a lost update is fine
	}
}
