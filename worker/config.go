package worker

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// Config configures a Worker. Start from DefaultConfig.
type Config struct {
	// Topology names the streams and consumer, and sets the delivery budget
	// (MaxDeliver) and AckWait.
	Topology jobs.Topology
	// Concurrency is how many jobs run at once in this process.
	Concurrency int
	// RateLimit is Clerk requests per second for this process (0: no
	// limit). Clerk allows 100/s on production instances (1000 per 10 s),
	// 10/s on development ones.
	RateLimit float64
	// RateBurst is how many requests may go at once under RateLimit.
	RateBurst int
	// Retry sets the backoff within and across deliveries.
	Retry RetryPolicy
	// Bulk tunes revoke_all jobs.
	Bulk BulkConfig
	// ProbeInterval is how often an open circuit asks Clerk whether the key
	// is accepted again.
	ProbeInterval time.Duration
	// DrainTimeout bounds how long shutdown waits for jobs in flight before
	// naking them.
	DrainTimeout time.Duration
	// SweepInterval is how often the worker looks for jobs that ran out of
	// deliveries without being dead-lettered.
	SweepInterval time.Duration
	// FetchMaxWait is how long one pull request waits on the server for
	// jobs (at least 1s); a missing consumer is noticed within about that.
	FetchMaxWait time.Duration
	// ReplyPrefixes are the subject prefixes a job's reply_to may start
	// with; a tenant's job (published on <prefix>.tenant.<tenant>.<op>)
	// must use <reply prefix><tenant>. instead, so that a service hears only
	// its own answers. The default is the inbox namespace, "_INBOX."; the
	// prefix "" allows any subject (outside the jobs prefix, and checked
	// against the worker's permissions and the streams like any other). A
	// job with another reply_to is dead-lettered as invalid.
	ReplyPrefixes []string
	// Instance names this process in dead letters, results and logs.
	Instance string
	// Logger receives one line per job outcome and the worker's state
	// changes. It never receives a secret.
	Logger zerolog.Logger
	// TracerProvider starts the worker's spans (one per delivery, backoff and
	// Retry-After waits; see docs/tracing.md); nil: no tracing. Give the
	// Clerk client the same one (clerkapi.WithTracerProvider) for its calls.
	TracerProvider trace.TracerProvider
}

// DefaultConfig is the configuration the worker runs with unless told
// otherwise.
func DefaultConfig() Config {
	return Config{
		Topology:      jobs.DefaultTopology(),
		Concurrency:   16,
		RateLimit:     100,
		RateBurst:     1,
		Retry:         DefaultRetryPolicy(),
		Bulk:          DefaultBulkConfig(),
		ProbeInterval: 5 * time.Second,
		DrainTimeout:  20 * time.Second,
		SweepInterval: time.Minute,
		FetchMaxWait:  time.Second,
		ReplyPrefixes: []string{"_INBOX."},
		Instance:      defaultInstance(),
		Logger:        zerolog.Nop(),
	}
}

func defaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	id := nuid.Next()
	return host + "-" + id[len(id)-6:]
}

// Validate names the first setting that cannot work and what to do.
func (c Config) Validate() error {
	if err := c.Topology.Validate(); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return fmt.Errorf("concurrency %d: must be 1 to 4096", c.Concurrency)
	case c.RateLimit < 0:
		return fmt.Errorf("rate limit %g: must be 0 (no limit) or positive requests per second", c.RateLimit)
	case c.RateLimit > 0 && c.RateBurst < 1:
		return fmt.Errorf("rate burst %d: must be at least 1", c.RateBurst)
	case c.ProbeInterval <= 0:
		return fmt.Errorf("probe interval %s: must be positive", c.ProbeInterval)
	case c.DrainTimeout < 0:
		return fmt.Errorf("drain timeout %s: must not be negative", c.DrainTimeout)
	case c.SweepInterval <= 0:
		return fmt.Errorf("sweep interval %s: must be positive", c.SweepInterval)
	case c.FetchMaxWait < time.Second:
		return fmt.Errorf("fetch max wait %s: must be at least 1s", c.FetchMaxWait)
	case len(c.ReplyPrefixes) == 0:
		return fmt.Errorf("reply prefixes: none given; use _INBOX. (the default), or \"\" to allow any subject")
	case c.Instance == "":
		return fmt.Errorf("instance name is empty")
	}
	if err := c.Retry.Validate(); err != nil {
		return err
	}
	if err := c.Bulk.Validate(); err != nil {
		return err
	}
	if c.Topology.MaxAckPending < c.Concurrency {
		return fmt.Errorf("max ack pending %d is below concurrency %d: the worker could never fill its slots", c.Topology.MaxAckPending, c.Concurrency)
	}
	return nil
}
