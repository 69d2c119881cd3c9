package console

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/handlers"
)

// bulkJob is a revoke_all job with saved progress: one running, or one
// that stopped and waits for its redelivery. The worker deletes a job's
// progress once its result is recorded.
type bulkJob struct {
	Key    string
	JobID  string // "" when the key does not name one
	UserID string
	// Started is when the job first ran; Updated when progress was last
	// saved (about every second while it runs).
	Started, Updated time.Time
	Handled          int // sessions handled
	Revoked          int
	AlreadyGone      int
	Failed           int
	Excepted         int
	Passes           int
}

// bulkJobs follows the progress bucket.
type bulkJobs struct {
	mu   sync.Mutex
	jobs map[string]bulkJob
	err  error
}

// list returns the jobs with progress saved within ttl, and forgets the
// others: older progress expires from the bucket without a marker.
func (b *bulkJobs) list(now time.Time, ttl time.Duration) ([]bulkJob, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	maps.DeleteFunc(b.jobs, func(_ string, j bulkJob) bool { return ttl > 0 && now.Sub(j.Updated) >= ttl })
	return slices.SortedFunc(maps.Values(b.jobs), func(x, y bulkJob) int { return y.Started.Compare(x.Started) }), b.err
}

func (b *bulkJobs) setErr(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

// follow reads the bucket's latest value per key and then every change,
// through an ordered pull consumer on the bucket's stream: it needs read
// access to that stream only, like the dead-letter index.
func (b *bulkJobs) follow(ctx context.Context, js jetstream.JetStream, bucket string) error {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("progress bucket %s: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("progress bucket %s: %w", bucket, err)
	}
	ks, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || len(ks.StreamInfo().Config.Subjects) != 1 {
		return fmt.Errorf("progress bucket %s: not a key-value stream", bucket)
	}
	cfg := ks.StreamInfo().Config
	keyPrefix := strings.TrimSuffix(cfg.Subjects[0], ">")
	stream, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		return fmt.Errorf("progress bucket %s: %w", bucket, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: cfg.Subjects,
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("follow progress bucket %s: %w", bucket, err)
	}
	b.setErr(nil)
	err = consume(ctx, cons, func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			return
		}
		// A delete or purge marker carries this header (nats.go's
		// key-value convention); a value does not.
		b.apply(strings.TrimPrefix(msg.Subject(), keyPrefix), meta.Timestamp, msg.Headers().Get("KV-Operation") != "", msg.Data())
	})
	if err != nil {
		return fmt.Errorf("follow progress bucket %s: %w", bucket, err)
	}
	return nil
}

// apply records one change of the bucket: a value, or a deleted key.
func (b *bulkJobs) apply(key string, at time.Time, deleted bool, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.jobs == nil {
		b.jobs = map[string]bulkJob{}
	}
	if deleted {
		delete(b.jobs, key)
		return
	}
	var p handlers.BulkProgress
	if err := json.Unmarshal(data, &p); err != nil {
		b.jobs[key] = bulkJob{Key: key, Updated: at}
		return
	}
	j := bulkJob{Key: key, JobID: p.JobID, UserID: p.UserID, Started: p.StartedAt, Updated: at, Handled: len(p.Done), Excepted: len(p.Excepted), Passes: p.Passes}
	for _, o := range p.Done {
		switch o {
		case "revoked":
			j.Revoked++
		case "already_gone":
			j.AlreadyGone++
		case "failed":
			j.Failed++
		}
	}
	b.jobs[key] = j
}
