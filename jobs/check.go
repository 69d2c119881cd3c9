package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/text"
)

// This file lets operators own the JetStream objects instead of the
// worker: Export writes them as the JSON the nats CLI reads, and Check tells
// whether what exists on a server matches what this topology wants before
// Ensure tries to change it.

// ProgressStreamConfig is the stream JetStream keeps the progress bucket
// in, built the way nats.go's CreateKeyValue builds it from
// ProgressBucketConfig (a test holds the two together), so that the bucket
// can be created with `nats stream add` and checked like the other streams.
func (t Topology) ProgressStreamConfig() jetstream.StreamConfig {
	return kvStreamConfig(t.ProgressBucketConfig())
}

// RateStreamConfig is the stream of the rate-budget bucket, built like
// ProgressStreamConfig.
func (t Topology) RateStreamConfig() jetstream.StreamConfig {
	return kvStreamConfig(t.RateBucketConfig())
}

// kvStreamConfig is the stream nats.go's CreateKeyValue makes for kv.
func kvStreamConfig(kv jetstream.KeyValueConfig) jetstream.StreamConfig {
	dup := 2 * time.Minute // nats.go: 2 minutes, or the TTL if shorter
	if kv.TTL > 0 && kv.TTL < dup {
		dup = kv.TTL
	}
	return jetstream.StreamConfig{
		Name:              kvStreamPrefix + kv.Bucket,
		Description:       kv.Description,
		Subjects:          []string{"$KV." + kv.Bucket + ".>"},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: int64(kv.History),
		MaxMsgSize:        max(kv.MaxValueSize, -1),
		MaxAge:            kv.TTL,
		Storage:           kv.Storage,
		Replicas:          kv.Replicas,
		Duplicates:        dup,
		Discard:           jetstream.DiscardNew,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       true,
	}
}

const kvStreamPrefix = "KV_"

// StreamConfigs are the jobs, results, dead-letter, progress-bucket,
// rate-bucket and given-up streams, in that order, with every limit spelled out as the server stores
// it (-1 for unlimited rather than 0), so that the JSON reads unambiguously
// and compares equal to `nats stream info --json`.
func (t Topology) StreamConfigs() []jetstream.StreamConfig {
	out := []jetstream.StreamConfig{t.JobsStreamConfig(), t.ResultsStreamConfig(), t.DeadLetterStreamConfig(), t.ProgressStreamConfig(), t.RateStreamConfig(), t.GivenUpStreamConfig()}
	for i := range out {
		c := &out[i]
		c.MaxConsumers = int(unlimited(int64(c.MaxConsumers)))
		c.MaxMsgs = unlimited(c.MaxMsgs)
		c.MaxBytes = unlimited(c.MaxBytes)
		c.MaxMsgsPerSubject = unlimited(c.MaxMsgsPerSubject)
		c.MaxMsgSize = int32(unlimited(int64(c.MaxMsgSize)))
	}
	return out
}

// unlimited maps the server's two spellings of "no limit", 0 and negative,
// to -1.
func unlimited(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}

// Export file name suffixes.
const (
	ExportStreamSuffix   = ".stream.json"
	ExportConsumerSuffix = ".consumer.json"
)

// Export returns the topology as files for the nats CLI, keyed by file
// name: <STREAM>.stream.json for each of StreamConfigs (create with
// `nats stream add --config FILE`) and <STREAM>.<CONSUMER>.consumer.json
// for the workers' consumer (`nats consumer add <STREAM> --config FILE`).
// The content is the JetStream API's own JSON (what `nats stream info
// --json` shows under "config"), indented, ending in a newline. A worker
// started on objects created from these files finds nothing to change.
func (t Topology) Export() (map[string][]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	files := make(map[string][]byte)
	add := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
		files[name] = append(b, '\n')
		return nil
	}
	for _, c := range t.StreamConfigs() {
		if err := add(c.Name+ExportStreamSuffix, c); err != nil {
			return nil, err
		}
	}
	if err := add(t.JobsStream+"."+t.Consumer+ExportConsumerSuffix, t.ConsumerConfig()); err != nil {
		return nil, err
	}
	return files, nil
}

// Drift is one way a stream, the progress bucket or the consumer that
// exists on the server differs from what the topology wants.
type Drift struct {
	// Kind is "stream", "bucket" or "consumer".
	Kind string
	// Name is the stream's or bucket's name, or STREAM/CONSUMER.
	Name string
	// Missing: the object does not exist (Ensure creates it). Field, Have
	// and Want are empty then.
	Missing bool
	// Field is the setting's JSON name, as `nats stream info --json` and
	// Export show it.
	Field string
	// Have is the value on the server, Want the topology's.
	Have, Want string
	// Updatable: Ensure changes this in place. Otherwise JetStream refuses
	// the change and Ensure fails: see DriftError.
	Updatable bool
	// Fix says what to do about a drift that is not updatable.
	Fix string
}

func (d Drift) String() string {
	switch {
	case d.Missing:
		return d.Difference() + " (it will be created)"
	case d.Updatable:
		return d.Difference() + " (it will be updated)"
	}
	return d.Difference() + "; JetStream cannot change this on an existing " + d.Kind
}

// Difference says what differs, without what Ensure does about it:
// "stream SESSION_RESULTS: max_age is "1s", want "24h0m0s"". Values are
// cut short and kept on one line; Have and Want hold them whole.
func (d Drift) Difference() string {
	if d.Missing {
		return fmt.Sprintf("%s %s does not exist", d.Kind, d.Name)
	}
	return fmt.Sprintf("%s %s: %s is %s, want %s", d.Kind, d.Name, d.Field, text.Line(d.Have, maxQuoted), text.Line(d.Want, maxQuoted))
}

// maxQuoted bounds a value quoted in a drift's text, which goes to the log
// on every sweep: an operator may have set thousands of subjects.
const maxQuoted = 512

// DriftError is Check's error when something exists that Ensure cannot
// turn into what the topology wants. Drifts are those, each with its Fix.
type DriftError struct {
	Drifts []Drift
}

func (e *DriftError) Error() string {
	var b strings.Builder
	b.WriteString("JetStream objects differ from the worker's configuration in ways that cannot be updated:")
	for _, d := range e.Drifts {
		b.WriteString("\n  - ")
		b.WriteString(d.String())
		if d.Fix != "" {
			b.WriteString(".\n    Fix: ")
			b.WriteString(d.Fix)
		}
	}
	return b.String()
}

// Check compares the streams, the progress bucket and the consumer that
// exist on js's server with the topology, without changing anything. It
// returns every difference it finds, and a *DriftError when some of them
// cannot be updated: then Ensure would fail, or (for a retention or storage
// change) the system would not be what the configuration says. Objects that
// do not exist are reported as Missing, which is no error. Other errors
// (no permission, no JetStream) are returned as they are, wrapped.
//
// It needs, on the jobs stream, the results and dead-letter streams and the
// bucket's stream, STREAM.INFO; on the consumer, CONSUMER.INFO; and
// CONSUMER.NAMES on the jobs stream when the consumer does not exist.
func (t Topology) Check(ctx context.Context, js jetstream.JetStream) ([]Drift, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var drifts []Drift
	for _, want := range t.StreamConfigs() {
		kind, name := "stream", want.Name
		if b, ok := strings.CutPrefix(want.Name, kvStreamPrefix); ok && (b == t.ProgressBucket || b == t.RateBucket) {
			kind, name = "bucket", b
		}
		s, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			drifts = append(drifts, Drift{Kind: kind, Name: name, Missing: true})
			continue
		}
		if err != nil {
			return drifts, fmt.Errorf("check %s %s: %w%s", kind, name, err, noJetStream(err))
		}
		drifts = append(drifts, t.streamDrifts(kind, name, s.CachedInfo().Config, want)...)
	}

	name := t.JobsStream + "/" + t.Consumer
	c, err := js.Consumer(ctx, t.JobsStream, t.Consumer)
	switch {
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		drifts = append(drifts, Drift{Kind: "consumer", Name: name, Field: "deliver_subject", Have: "set (a push consumer)", Want: "none (a pull consumer)",
			Fix: t.consumerFix()})
	case errors.Is(err, jetstream.ErrStreamNotFound):
		drifts = append(drifts, Drift{Kind: "consumer", Name: name, Missing: true})
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		drifts = append(drifts, Drift{Kind: "consumer", Name: name, Missing: true})
		others, err := t.otherConsumers(ctx, js)
		if err != nil {
			return drifts, err
		}
		if len(others) > 0 {
			// A work-queue stream takes one consumer per subject, and ours
			// has no filter: any other consumer blocks its creation.
			drifts = append(drifts, Drift{Kind: "stream", Name: t.JobsStream, Field: "consumers",
				Have: strings.Join(others, ", "), Want: "only " + t.Consumer,
				Fix: fmt.Sprintf("a work-queue stream allows one consumer per subject, so the workers' consumer %s cannot be created next to it; remove the other one (`nats consumer rm %s %s`), or run the worker with --consumer %s if that one is meant for the workers (it must then be a pull consumer with explicit acks)",
					t.Consumer, t.JobsStream, others[0], others[0])})
		}
	case err != nil:
		return drifts, fmt.Errorf("check consumer %s: %w", name, err)
	default:
		drifts = append(drifts, t.consumerDrifts(name, c.CachedInfo().Config, t.ConsumerConfig())...)
	}

	fatal := slices.DeleteFunc(slices.Clone(drifts), func(d Drift) bool { return d.Missing || d.Updatable })
	if len(fatal) > 0 {
		return drifts, &DriftError{Drifts: fatal}
	}
	return drifts, nil
}

// noJetStream says what to do when no JetStream answers the connection's
// API requests; "" for any other error. It is a new user's first mistake (a
// nats-server started without -js), and NATS's words for it ("no
// responders available for request") name neither JetStream nor the fix.
func noJetStream(err error) string {
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return "; no JetStream answers on this server: start nats-server with -js (or a jetstream {} block in its configuration), " +
			"or give the worker the URL of one that has it; run without a NATS URL, the worker starts an embedded one"
	case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return "; JetStream is not enabled for the account this connection's user is in: enable it in the server's accounts " +
			"(jetstream: enabled in the account's block, as deploy/nats/accounts.conf does), or, for an account of an operator's " +
			"JWTs, give it JetStream limits (nsc edit account --js-disk-storage …, or --js-mem-storage, then nsc push)"
	}
	return ""
}

func (t Topology) otherConsumers(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	s, err := js.Stream(ctx, t.JobsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check stream %s: %w", t.JobsStream, err)
	}
	var names []string
	l := s.ConsumerNames(ctx)
	for n := range l.Name() {
		if n != t.Consumer {
			names = append(names, n)
		}
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list the consumers of stream %s: %w", t.JobsStream, err)
	}
	slices.Sort(names)
	return names, nil
}

// streamDrifts compares the settings the topology sets. Description and
// metadata are left out: the server adds its own metadata, and a changed
// description matters to nobody.
func (t Topology) streamDrifts(kind, name string, have, want jetstream.StreamConfig) []Drift {
	var out []Drift
	diff := differ(&out, kind, name, t.streamFix(kind, name))
	hs, ws := slices.Sorted(slices.Values(have.Subjects)), slices.Sorted(slices.Values(want.Subjects))
	diff("subjects", hs, ws, true)
	// The server refuses these changes (nats-server's configUpdateCheck).
	diff("storage", have.Storage, want.Storage, false)
	diff("retention", have.Retention, want.Retention,
		have.Retention != jetstream.WorkQueuePolicy && want.Retention != jetstream.WorkQueuePolicy)
	diff("sealed", have.Sealed, want.Sealed, !have.Sealed)
	diff("deny_delete", have.DenyDelete, want.DenyDelete, !have.DenyDelete)
	diff("deny_purge", have.DenyPurge, want.DenyPurge, !have.DenyPurge)
	diff("allow_msg_ttl", have.AllowMsgTTL, want.AllowMsgTTL, !have.AllowMsgTTL)
	diff("allow_msg_counter", have.AllowMsgCounter, want.AllowMsgCounter, false)
	diff("persist_mode", have.PersistMode, want.PersistMode, false)
	if have.Mirror != nil {
		diff("mirror", have.Mirror.Name, "", false)
	}
	// Ensure changes these in place.
	diff("num_replicas", have.Replicas, want.Replicas, true)
	diff("max_age", have.MaxAge, want.MaxAge, true)
	diff("max_bytes", unlimited(have.MaxBytes), unlimited(want.MaxBytes), true)
	diff("max_msgs", unlimited(have.MaxMsgs), unlimited(want.MaxMsgs), true)
	diff("max_msgs_per_subject", unlimited(have.MaxMsgsPerSubject), unlimited(want.MaxMsgsPerSubject), true)
	diff("max_msg_size", unlimited(int64(have.MaxMsgSize)), unlimited(int64(want.MaxMsgSize)), true)
	diff("max_consumers", unlimited(int64(have.MaxConsumers)), unlimited(int64(want.MaxConsumers)), true)
	diff("discard", have.Discard, want.Discard, true)
	diff("discard_new_per_subject", have.DiscardNewPerSubject, want.DiscardNewPerSubject, true)
	diff("duplicate_window", have.Duplicates, want.Duplicates, true)
	diff("allow_rollup_hdrs", have.AllowRollup, want.AllowRollup, true)
	diff("allow_direct", have.AllowDirect, want.AllowDirect, true)
	diff("compression", have.Compression, want.Compression, true)
	return out
}

// differ returns a function that adds to *out a Drift of the object for
// each setting whose value differs, as JSON; fix is for those that are not
// updatable.
func differ(out *[]Drift, kind, name, fix string) func(field string, h, w any, updatable bool) {
	return func(field string, h, w any, updatable bool) {
		hs, ws := jsonText(h), jsonText(w)
		if hs == ws {
			return
		}
		d := Drift{Kind: kind, Name: name, Field: field, Have: hs, Want: ws, Updatable: updatable}
		if !updatable {
			d.Fix = fix
		}
		*out = append(*out, d)
	}
}

// serverDefaultMaxWaiting is the pull requests a consumer queues when its
// configuration leaves max_waiting 0 (nats-server's JSWaitQueueDefaultMax).
const serverDefaultMaxWaiting = 512

func (t Topology) consumerDrifts(name string, have, want jetstream.ConsumerConfig) []Drift {
	var out []Drift
	diff := differ(&out, "consumer", name, t.consumerFix())
	// The server refuses these changes (nats-server's checkNewConsumerConfig).
	diff("deliver_policy", have.DeliverPolicy, want.DeliverPolicy, false)
	diff("ack_policy", have.AckPolicy, want.AckPolicy, false)
	diff("replay_policy", have.ReplayPolicy, want.ReplayPolicy, false)
	diff("mem_storage", have.MemoryStorage, want.MemoryStorage, false)
	diff("max_waiting", have.MaxWaiting, cmp.Or(want.MaxWaiting, serverDefaultMaxWaiting), false)
	// Ensure changes these in place.
	diff("ack_wait", have.AckWait, want.AckWait, true)
	diff("max_deliver", have.MaxDeliver, want.MaxDeliver, true)
	diff("max_ack_pending", have.MaxAckPending, want.MaxAckPending, true)
	diff("filter_subjects", filters(have), filters(want), true)
	diff("backoff", have.BackOff, want.BackOff, true)
	// Delivered headers only, a job comes without its body: the worker
	// reads it from the stream (a request a job) while this lasts.
	diff("headers_only", have.HeadersOnly, want.HeadersOnly, true)
	// A limit on pull requests' expiry the workers' pulls exceed: every
	// one refused. A max_batch is none: the workers' pulls ask for no
	// more than it (a server whose JetStream limits set max_request_batch
	// gives it to every consumer, where no start could set it back).
	diff("max_expires", have.MaxRequestExpires, want.MaxRequestExpires, true)
	return out
}

// MaxPullBatch is the most jobs a worker's pull request asks for (its
// prefetch, at most this, and at most the consumer's max_batch).
const MaxPullBatch = 64

func filters(c jetstream.ConsumerConfig) []string {
	f := slices.Clone(c.FilterSubjects)
	if c.FilterSubject != "" {
		f = append(f, c.FilterSubject)
	}
	slices.Sort(f)
	return f
}

func (t Topology) streamFix(kind, name string) string {
	rm := "nats stream rm " + name
	if kind == "bucket" {
		rm = "nats kv rm " + name
	}
	s := "either start the worker with settings that match the existing " + kind + " (for instance --storage), or recreate it: when it holds nothing you still need"
	if name == t.JobsStream {
		s += " (no jobs waiting: `nats stream info " + name + "`)"
	}
	return s + ", `" + rm + "` and start the worker, which creates it as configured (or create it from the files of `Topology.Export`)"
}

func (t Topology) consumerFix() string {
	return fmt.Sprintf("`nats consumer rm %s %s` and start the worker, which creates it again; jobs not yet acked stay in the work-queue stream and go to the new consumer",
		t.JobsStream, t.Consumer)
}

// jsonText is v as the JetStream API writes it ("workqueue", 120000000000),
// durations as Go writes them ("2m0s"), without quotes.
func jsonText(v any) string {
	switch v.(type) {
	case time.Duration, []time.Duration, []string:
		return fmt.Sprint(v) // [1s 2m0s], [a b]
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.Trim(string(b), `"`)
}
