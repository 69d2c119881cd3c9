package worker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// kvProgress keeps revoke_all progress in a JetStream key-value bucket.
type kvProgress struct{ kv jetstream.KeyValue }

var _ handlers.ProgressStore = kvProgress{}

// key encodes a job id for the bucket: job ids may hold characters that
// keys may not (':', '@').
func (s kvProgress) key(jobID string) string {
	return "job." + base64.RawURLEncoding.EncodeToString([]byte(jobID))
}

func (s kvProgress) Load(ctx context.Context, jobID string) (*handlers.BulkProgress, error) {
	e, err := s.kv.Get(ctx, s.key(jobID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p handlers.BulkProgress
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return nil, fmt.Errorf("progress of %s is corrupt: %w", jobID, err)
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
	_, err = s.kv.Put(ctx, s.key(jobID), b)
	return err
}

func (s kvProgress) Delete(ctx context.Context, jobID string) error {
	err := s.kv.Delete(ctx, s.key(jobID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// BulkConfig tunes revoke_all jobs.
type BulkConfig struct {
	// Concurrency bounds the revokes in flight for one revoke_all job. All
	// calls share the worker's rate limiter, which serves callers in turn,
	// so single jobs keep flowing while a bulk job runs.
	Concurrency int
	// CheckpointEvery is how often a job saves its progress.
	CheckpointEvery time.Duration
	// ReportEvery is how often a job sends progress to its reply_to.
	ReportEvery time.Duration
	// MaxPasses bounds the list-and-revoke passes of one job.
	MaxPasses int
}

// DefaultBulkConfig: 8 revokes at once, checkpoint and report every second,
// up to 3 passes.
func DefaultBulkConfig() BulkConfig {
	return BulkConfig{Concurrency: 8, CheckpointEvery: time.Second, ReportEvery: time.Second, MaxPasses: 3}
}

// Validate names the first setting that cannot work.
func (b BulkConfig) Validate() error {
	switch {
	case b.Concurrency < 1 || b.Concurrency > 1024:
		return fmt.Errorf("bulk concurrency %d: must be 1 to 1024", b.Concurrency)
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
		Store:      kvProgress{kv},
		DeadLetter: w.deadLetterSession,
		Report:     w.sendProgress,
		Retry: func(ctx context.Context, fn func() error) error {
			return w.cfg.Retry.do(ctx, w.clock, fn, func(err error, wait time.Duration) {
				if wait > 0 {
					w.metrics.retries.WithLabelValues(string(jobs.OpRevokeAll)).Inc()
				}
			})
		},
		Concurrency:     b.Concurrency,
		CheckpointEvery: b.CheckpointEvery,
		ReportEvery:     b.ReportEvery,
		MaxPasses:       b.MaxPasses,
	}
}

// deadLetterSession records a session a revoke_all job could not revoke as
// a sessions.revoke job of its own: replaying it revokes just that session.
func (w *Worker) deadLetterSession(ctx context.Context, parentJobID, sessionID string, cause error) error {
	subj := w.cfg.Topology.Subjects
	body, err := json.Marshal(jobs.RevokeArgs{Common: jobs.Common{JobID: parentJobID + "/" + sessionID}, SessionID: sessionID})
	if err != nil {
		return err
	}
	info := errorInfo(jobs.ClassPermanent, fmt.Errorf("revoke_all job %s: %w", parentJobID, cause))
	now := time.Now().UTC()
	f := failureOf(now, cause)
	dl := jobs.DeadLetter{
		Subject: subj.Job(jobs.OpRevoke), JobID: parentJobID + "/" + sessionID, Op: jobs.OpRevoke, Error: info,
		Attempts: 1, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: w.cfg.Instance,
		History: []jobs.Failure{f},
	}
	id := "bulk-" + base64.RawURLEncoding.EncodeToString([]byte(parentJobID+"/"+sessionID))
	if err := w.recordWithID(w.cfg.Topology.DeadLetterStream, subj.DeadLetter(jobs.OpRevoke), "dlq", id, dl.Header(), body); err != nil {
		return err
	}
	w.metrics.deadLetters.WithLabelValues(string(jobs.OpRevoke), string(jobs.ClassPermanent)).Inc()
	w.cfg.Logger.Warn().Str("job_id", parentJobID).Str("session_id", sessionID).Str("error", cause.Error()).
		Msg("revoke_all: session could not be revoked; dead-lettered as its own revoke job")
	return nil
}

func (w *Worker) sendProgress(replyTo string, p jobs.Progress) {
	if replyTo == "" {
		return
	}
	b, err := json.Marshal(p)
	if err == nil {
		_ = w.nc.Publish(replyTo, b) // progress is advisory: a lost update is fine
	}
}
