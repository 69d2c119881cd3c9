package worker

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Config configures a Worker. Start from DefaultConfig.
type Config struct {
	// Topology names the streams and consumer, and sets the delivery budget
	// (MaxDeliver) and AckWait.
	Topology jobs.Topology
	// Concurrency is how many jobs run at once in this process.
	Concurrency int
	// RateLimit is Clerk's rate limit for the secret key, as Clerk states
	// it: 1000 calls per 10 s on production instances, 100 per 10 s on
	// development ones (ParseRateLimit reads "1000/10s"). Configure Clerk's
	// number, the same on every replica: the worker keeps its own safety
	// margin, and no window of that length, fixed or sliding, sees more
	// calls than the limit. The zero value, as any limit of 0 calls,
	// means no limit.
	RateLimit RateLimit
	// RateScope says who shares RateLimit: every worker using the same key
	// and JetStream (RateFleet, the default), or this process alone
	// (RateProcess).
	RateScope RateScope
	// RateKey names the key's budget in the fleet: KeyFingerprint of the
	// Clerk secret key (a hash; never the key). Workers with different keys
	// get different budgets. Required with RateFleet and a limit, and
	// nothing else is accepted: exactly what KeyFingerprint returns.
	RateKey string
	// Retry sets the backoff within and across deliveries.
	Retry RetryPolicy
	// Bulk tunes revoke_all jobs.
	Bulk BulkConfig
	// ProbeInterval is how often an open circuit asks Clerk whether the key
	// is accepted again: at least MinProbeInterval.
	ProbeInterval time.Duration
	// DrainTimeout bounds how long shutdown waits for jobs in flight before
	// naking them.
	DrainTimeout time.Duration
	// SweepInterval is how often the worker looks for jobs that ran out of
	// deliveries without being dead-lettered, for dead letters whose job
	// has a result (a dead letter is removed then; see records), and for
	// settings of JetStream changed since its start (logged).
	SweepInterval time.Duration
	// FetchMaxWait is how long one pull request waits on the server for
	// jobs (at least 1s); a missing consumer is noticed within about that.
	FetchMaxWait time.Duration
	// ReplyPrefixes are the subject prefixes a job's reply_to may start
	// with; a tenant's job (published on <prefix>.tenant.<tenant>.<op>)
	// must use <reply prefix><tenant>. instead, so that a service hears only
	// its own answers. The default is the inbox namespace, "_INBOX."; the
	// prefix "" allows any subject (outside the jobs prefix, and checked
	// against the worker's permissions and the streams like any other),
	// and is refused beside other prefixes, which it would make pointless.
	// A job with another reply_to is dead-lettered as invalid.
	ReplyPrefixes []string
	// Instance names this process in dead letters, results and logs, and
	// in its status subject: 1 to 64 letters, digits, '_' and '-'. The
	// default is the host's name and a random suffix.
	Instance string
	// Logger receives one line per job outcome and the worker's state
	// changes. It never receives a secret.
	Logger zerolog.Logger
	// TracerProvider starts the worker's spans (one per delivery, backoff and
	// Retry-After waits; see docs/tracing.md); nil: no tracing. Give the
	// Clerk client the same one (clerkapi.WithTracerProvider) for its calls.
	TracerProvider trace.TracerProvider
}

// RateLimit is a rate limit as Clerk states it: N calls per Per.
type RateLimit = ratebudget.Limit

// ParseRateLimit reads a limit as Clerk states it: "1000/10s", "100/s",
// "100/1m", a bare "100" (per second), or "0" / "none" for no limit.
func ParseRateLimit(s string) (RateLimit, error) { return ratebudget.ParseLimit(s) }

// rateWarning says, when it is so, that the budget will spend much less
// than the limit l: its margin is at least 150 ms per window, so short
// windows lose rate. Clerk states its limits per 10 s.
func rateWarning(l RateLimit, scope RateScope) (string, bool) {
	share := l.Share(scope == RateFleet)
	if share >= 0.95 {
		return "", false
	}
	msg := fmt.Sprintf("rate limit %s: the budget spends at most %.1f%% of it, because it keeps at least 150 ms of margin per window", l, 100*share)
	if per := 10 * time.Second; l.Per < per && per%l.Per == 0 {
		n10 := RateLimit{N: l.N * int(per/l.Per), Per: per}
		if _, err := ParseRateLimit(n10.String()); err == nil {
			msg += fmt.Sprintf("; Clerk states its limits per 10 s: if that is this limit's window, write --rate-limit %s (%.1f%% of it)", n10, 100*n10.Share(scope == RateFleet))
		}
	}
	return msg, true
}

// KeyFingerprint names a Clerk secret key's rate budget without revealing
// the key (a labelled SHA-256): Config.RateKey.
func KeyFingerprint(secretKey string) string { return ratebudget.Fingerprint(secretKey) }

// RateScope says who shares a rate limit.
type RateScope string

// Rate scopes.
const (
	// RateFleet: every worker process using the same key and JetStream
	// shares the key's budget; a 429 on any pauses all of them.
	RateFleet RateScope = "fleet"
	// RateProcess: this process alone (as before the fleet budget).
	RateProcess RateScope = "process"
)

// DefaultConfig is the configuration the worker runs with unless told
// otherwise.
func DefaultConfig() Config {
	return Config{
		Topology:      jobs.DefaultTopology(),
		Concurrency:   16,
		RateLimit:     RateLimit{N: 1000, Per: 10 * time.Second},
		RateScope:     RateFleet,
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
	host, _ := os.Hostname()
	return instanceFor(host, nuid.Next())
}

// instanceFor is the default instance name on host: its first label, made
// of the characters an instance name may hold and at most 40 of them, and
// the last 6 characters of id. A host name may be a dotted FQDN
// (ip-10-0-0-1.ec2.internal), and a dot would split the status subject.
func instanceFor(host, id string) string {
	host, _, _ = strings.Cut(host, ".")
	b := []byte(host)
	for i, c := range b {
		if !instanceChar(c) {
			b[i] = '-'
		}
	}
	b = b[:min(len(b), 40)]
	if len(b) == 0 || b[0] == '-' || b[0] == '_' {
		b = append([]byte("worker"), b...)
	}
	return string(b) + "-" + id[len(id)-6:]
}

// checkReplyPrefix reports whether p can start a reply_to: "" (any
// subject), or whole subject tokens ending in '.', outside the system
// subjects and the jobs prefix. A tenant's replies go under
// <prefix><tenant>., so a prefix without its final dot ("_INBOX") glues the
// tenant to its last token, and one that ends inside a token
// ("_INBOX.svc") also admits the subjects of every token it begins; under
// the jobs prefix or with characters no subject holds, every reply_to is
// refused. Each would dead-letter every job with a reply_to, so it is
// refused at start instead.
func checkReplyPrefix(p string, subjects jobs.Subjects) error {
	if p == "" {
		return nil
	}
	subject, ok := strings.CutSuffix(p, ".")
	if !ok {
		return fmt.Errorf("reply prefix %q: must end with '.' (the default is _INBOX.): a tenant's replies go under <prefix><tenant>.", p)
	}
	if err := jobs.CheckReplySubject(subject); err != nil {
		return fmt.Errorf("reply prefix: %v", err)
	}
	if subjects.Owns(subject) {
		return fmt.Errorf("reply prefix %q: is under the jobs prefix, where no answer may go (answers could be stored); use an inbox prefix such as _INBOX.", p)
	}
	return nil
}

// MinProbeInterval is the shortest ProbeInterval: an open circuit probes
// Clerk, and logs that the key is still refused, once an interval; a
// nanosecond's interval probed without pause, a log line at each probe.
const MinProbeInterval = 100 * time.Millisecond

// MaxInstanceLen bounds an instance name.
const MaxInstanceLen = 64

// checkInstance reports whether name can name a worker process: 1 to 64
// letters, digits, '_' and '-'. It is one token of the status subject
// (clerkjobs.worker.<instance>.status, which deploy/nats grants as
// clerkjobs.worker.*.status), and goes into every record (results that
// tenants read, dead-letter headers, record message ids) and log line: a
// dot, a space or a control character breaks or disguises the subject, a
// very long name overflows NATS's protocol line (the server closes the
// connection), and a key pasted here would be written everywhere. The
// error never repeats a value shaped like a secret, nor a long one.
func checkInstance(name string) error {
	switch {
	case redact.Looks(name):
		return fmt.Errorf("instance name (%d characters) is shaped like a secret (a Clerk key or a JWT), so it is not repeated here: it is written into every record; name the process (worker-1, the pod's name)", len(name))
	case name == "" || len(name) > MaxInstanceLen:
		return fmt.Errorf("instance name of %d characters: must be 1 to %d characters", len(name), MaxInstanceLen)
	}
	for i := 0; i < len(name); i++ {
		if !instanceChar(name[i]) {
			return fmt.Errorf("instance name %q: only letters, digits, '_' and '-' are allowed (it is one token of the subject clerkjobs.worker.<instance>.status)", name)
		}
	}
	return nil
}

func instanceChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// Validate names the first setting that cannot work and what to do.
func (c Config) Validate() error {
	if err := c.Topology.Validate(); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return fmt.Errorf("concurrency %d: must be 1 to 4096", c.Concurrency)
	case c.RateLimit.N < 0 || (c.RateLimit.N > 0 && c.RateLimit.Per <= 0):
		return fmt.Errorf("rate limit %d per %s: want calls per window, e.g. 1000/10s (or none)", c.RateLimit.N, c.RateLimit.Per)
	case !c.RateLimit.Unlimited() && ratebudget.CheckLimit(c.RateLimit) != nil:
		// Else refused only when the budget starts: in the fleet scope, in
		// Run, after the streams were set up. No calls is no limit, with
		// whatever window (the budget refuses a window without calls).
		return fmt.Errorf("rate limit %s: %v; want calls per window as Clerk states it, e.g. 1000/10s (or none)", c.RateLimit, ratebudget.CheckLimit(c.RateLimit))
	case c.RateScope == RateFleet && !c.RateLimit.Unlimited() && ratebudget.CheckFleetLimit(c.RateLimit) != nil:
		// A limit as Clerk may state it, too slow for the fleet's budget.
		return fmt.Errorf("rate limit %s: %v; set the rate scope to %q (this process alone), or a faster limit", c.RateLimit, ratebudget.CheckFleetLimit(c.RateLimit), RateProcess)
	case c.RateScope != RateFleet && c.RateScope != RateProcess:
		return fmt.Errorf("rate scope %q: want %q (every worker sharing the key) or %q (this process alone)", c.RateScope, RateFleet, RateProcess)
	case c.RateScope == RateFleet && c.RateLimit.N > 0 && c.RateKey == "":
		return fmt.Errorf("rate key is empty: a fleet budget is named by KeyFingerprint(secret key); or use the process scope")
	case c.RateScope == RateFleet && c.RateLimit.N > 0 && ratebudget.CheckFingerprint(c.RateKey) != nil:
		// Never quoted: it may be the secret key, given by mistake.
		return fmt.Errorf("rate key (%d characters) is not a key fingerprint: set it to KeyFingerprint(secret key), never the key itself", len(c.RateKey))
	case c.ProbeInterval < MinProbeInterval:
		return fmt.Errorf("probe interval %s: must be at least %s", c.ProbeInterval, MinProbeInterval)
	case c.DrainTimeout < 0:
		return fmt.Errorf("drain timeout %s: must not be negative", c.DrainTimeout)
	case c.SweepInterval <= 0:
		return fmt.Errorf("sweep interval %s: must be positive", c.SweepInterval)
	case c.FetchMaxWait < time.Second:
		return fmt.Errorf("fetch max wait %s: must be at least 1s", c.FetchMaxWait)
	case len(c.ReplyPrefixes) == 0:
		return fmt.Errorf("reply prefixes: none given; use _INBOX. (the default), or \"\" to allow any subject")
	}
	if err := checkInstance(c.Instance); err != nil {
		return err
	}
	for _, p := range c.ReplyPrefixes {
		if err := checkReplyPrefix(p, c.Topology.Subjects); err != nil {
			return err
		}
	}
	if slices.Contains(c.ReplyPrefixes, "") && slices.ContainsFunc(c.ReplyPrefixes, func(p string) bool { return p != "" }) {
		// "" allows any subject, so beside it the others restrict nothing:
		// a stray comma ("_INBOX.,") more often than a choice.
		return fmt.Errorf("reply prefix \"\" (any subject) is given with others (%s), which it makes pointless: a stray comma? Give the prefixes alone, or \"\" alone to allow any subject",
			strings.Join(slices.DeleteFunc(slices.Clone(c.ReplyPrefixes), func(p string) bool { return p == "" }), ", "))
	}
	if err := cmp.Or(c.Retry.Validate(), c.Bulk.Validate()); err != nil {
		return err
	}
	if c.Topology.MaxAckPending < c.Concurrency {
		return fmt.Errorf("max ack pending %d is below concurrency %d: the worker could never fill its slots", c.Topology.MaxAckPending, c.Concurrency)
	}
	return nil
}
