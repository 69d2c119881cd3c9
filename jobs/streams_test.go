package jobs

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestDefaultTopologyValidates(t *testing.T) {
	top := DefaultTopology()
	if err := top.Validate(); err != nil {
		t.Fatalf("DefaultTopology().Validate() = %v", err)
	}
	if top.Subjects.Prefix != DefaultPrefix || top.Replicas != 1 || top.Storage != jetstream.FileStorage {
		t.Errorf("DefaultTopology() = %+v", top)
	}
}

func TestTopologyValidateNamesTheSetting(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Topology)
		mention []string
	}{
		{"prefix with a wildcard", func(t *Topology) { t.Subjects.Prefix = "sessions.*" }, []string{"prefix", "sessions.*"}},
		{"prefix with a space", func(t *Topology) { t.Subjects.Prefix = "my sessions" }, []string{"prefix"}},
		{"system prefix", func(t *Topology) { t.Subjects.Prefix = "$JS" }, []string{"prefix"}},
		{"empty jobs stream", func(t *Topology) { t.JobsStream = "" }, []string{"jobs stream", "empty"}},
		{"empty results stream", func(t *Topology) { t.ResultsStream = "" }, []string{"results stream", "empty"}},
		{"empty dead-letter stream", func(t *Topology) { t.DeadLetterStream = "" }, []string{"dead-letter stream", "empty"}},
		{"empty consumer", func(t *Topology) { t.Consumer = "" }, []string{"consumer", "empty"}},
		{"empty progress bucket", func(t *Topology) { t.ProgressBucket = "" }, []string{"progress bucket", "empty"}},
		{"progress bucket with a dot", func(t *Topology) { t.ProgressBucket = "a.b" }, []string{"progress bucket", "a.b"}},
		{"progress TTL 0", func(t *Topology) { t.ProgressTTL = 0 }, []string{"progress TTL"}},
		{"jobs stream with a dot", func(t *Topology) { t.JobsStream = "SESSION.JOBS" }, []string{"jobs stream", "SESSION.JOBS"}},
		{"results stream with a space", func(t *Topology) { t.ResultsStream = "SESSION RESULTS" }, []string{"results stream", "SESSION RESULTS"}},
		{"dead-letter stream with a wildcard", func(t *Topology) { t.DeadLetterStream = "DLQ*" }, []string{"dead-letter stream", "DLQ*"}},
		{"dead-letter stream with >", func(t *Topology) { t.DeadLetterStream = "DLQ>" }, []string{"dead-letter stream"}},
		{"consumer with a slash", func(t *Topology) { t.Consumer = "session/worker" }, []string{"consumer", "session/worker"}},
		{"consumer with a backslash", func(t *Topology) { t.Consumer = `session\worker` }, []string{"consumer"}},
		{"consumer with a tab", func(t *Topology) { t.Consumer = "session\tworker" }, []string{"consumer"}},
		{"jobs and results streams share a name", func(t *Topology) { t.ResultsStream = t.JobsStream }, []string{"different names"}},
		{"jobs and dead-letter streams share a name", func(t *Topology) { t.DeadLetterStream = t.JobsStream }, []string{"different names"}},
		{"results and dead-letter streams share a name", func(t *Topology) { t.DeadLetterStream = t.ResultsStream }, []string{"different names"}},
		{"replicas 0", func(t *Topology) { t.Replicas = 0 }, []string{"replicas", "0"}},
		{"replicas 6", func(t *Topology) { t.Replicas = 6 }, []string{"replicas", "6"}},
		{"dedup window 0", func(t *Topology) { t.DedupWindow = 0 }, []string{"dedup window"}},
		{"dedup window negative", func(t *Topology) { t.DedupWindow = -time.Second }, []string{"dedup window"}},
		{"dedup window under JetStream's 100ms", func(t *Topology) { t.DedupWindow = 99 * time.Millisecond }, []string{"dedup window 99ms", "at least 100ms"}},
		{"results max age 0", func(t *Topology) { t.ResultsMaxAge = 0 }, []string{"results max age"}},
		{"results max age below the results dedup window", func(t *Topology) { t.ResultsMaxAge = 5 * time.Minute }, []string{"results max age", "5m0s"}},
		{"dead-letter max age negative", func(t *Topology) { t.DeadLetterMaxAge = -time.Hour }, []string{"dead-letter max age"}},
		{"dead-letter max age below the dead-letter dedup window", func(t *Topology) { t.DeadLetterMaxAge = time.Minute }, []string{"dead-letter max age", "1m0s"}},
		{"dead-letter max bytes below 1 MiB", func(t *Topology) { t.DeadLetterMaxBytes = 1<<20 - 1 }, []string{"dead-letter max bytes", "1048575"}},
		{"jobs max bytes below 1 MiB", func(t *Topology) { t.JobsMaxBytes = 1<<20 - 1 }, []string{"jobs max bytes", "1048575"}},
		{"jobs max bytes unlimited", func(t *Topology) { t.JobsMaxBytes = 0 }, []string{"jobs max bytes", "1 MiB"}},
		{"dead-letter max bytes unlimited", func(t *Topology) { t.DeadLetterMaxBytes = -1 }, []string{"dead-letter max bytes"}},
		{"results max bytes below 1 MiB", func(t *Topology) { t.ResultsMaxBytes = 1<<20 - 1 }, []string{"results max bytes", "1048575"}},
		{"results max bytes unlimited", func(t *Topology) { t.ResultsMaxBytes = 0 }, []string{"results max bytes", "1 MiB"}},
		{"max deliveries 0", func(t *Topology) { t.MaxDeliver = 0 }, []string{"max deliveries"}},
		{"max deliveries unlimited", func(t *Topology) { t.MaxDeliver = -1 }, []string{"max deliveries"}},
		// With the backstop margin the consumer's max_deliver would wrap
		// negative, which JetStream reads as unlimited.
		{"max deliveries wrapping the consumer's", func(t *Topology) { t.MaxDeliver = math.MaxInt - BackstopMargin + 1 }, []string{"max deliveries", fmt.Sprint(math.MaxInt - BackstopMargin)}},
		{"jobs max bytes at the int64 top", func(t *Topology) { t.JobsMaxBytes = math.MaxInt64 }, []string{"jobs max bytes 9223372036854775807", "max_file_store"}},
		{"record caps adding up past the int64 top", func(t *Topology) { t.ResultsMaxBytes, t.DeadLetterMaxBytes = 1<<62, 1<<62 }, []string{"results max bytes 4611686018427387904", "at most 4611686018150563839"}},
		{"ack wait under a second", func(t *Topology) { t.AckWait = 999 * time.Millisecond }, []string{"ack wait"}},
		{"max ack pending 0", func(t *Topology) { t.MaxAckPending = 0 }, []string{"max ack pending"}},
		{"zero topology", func(t *Topology) { *t = Topology{} }, []string{"jobs stream", "empty"}},
		{"jobs stream of 255 bytes", func(t *Topology) { t.JobsStream = strings.Repeat("J", 255) }, []string{"jobs stream", "255 bytes", "254"}},
		{"jobs stream of 246 bytes", func(t *Topology) { t.JobsStream = strings.Repeat("J", 246) }, []string{"jobs stream", "246 bytes", "at most 245", "_GIVEN_UP"}},
		{"results stream named as the given-up stream", func(t *Topology) { t.ResultsStream = t.JobsStream + "_GIVEN_UP" }, []string{"SESSION_JOBS_GIVEN_UP", "given-up stream"}},
		{"consumer of 256 bytes", func(t *Topology) { t.Consumer = strings.Repeat("c", 256) }, []string{"consumer", "256 bytes"}},
		{"progress bucket of 252 bytes", func(t *Topology) { t.ProgressBucket = strings.Repeat("p", 252) }, []string{"progress bucket", "252 bytes", "251"}},
		{"rate-budget bucket of 252 bytes", func(t *Topology) { t.RateBucket = strings.Repeat("r", 252) }, []string{"rate-budget bucket", "252 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := DefaultTopology()
			tt.mutate(&top)
			err := top.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil for %+v", top)
			}
			for _, s := range tt.mention {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %q, want it to mention %q", err, s)
				}
			}
		})
	}
	// Boundaries that are valid.
	for name, mutate := range map[string]func(*Topology){
		"replicas 5":                     func(t *Topology) { t.Replicas = 5 },
		"replicas 3":                     func(t *Topology) { t.Replicas = 3 },
		"dead letters kept forever":      func(t *Topology) { t.DeadLetterMaxAge = 0 },
		"dead-letter max bytes of 1 MiB": func(t *Topology) { t.DeadLetterMaxBytes = 1 << 20 },
		"jobs max bytes of 1 MiB":        func(t *Topology) { t.JobsMaxBytes = 1 << 20 },
		"results max bytes of 1 MiB":     func(t *Topology) { t.ResultsMaxBytes = 1 << 20 },
		"ack wait of 1s":                 func(t *Topology) { t.AckWait = time.Second },
		"one delivery":                   func(t *Topology) { t.MaxDeliver = 1 },
		"memory storage":                 func(t *Topology) { t.Storage = jetstream.MemoryStorage },
		"custom names and prefix": func(t *Topology) {
			t.Subjects.Prefix, t.JobsStream, t.ResultsStream, t.DeadLetterStream, t.Consumer = "acme.prod", "J", "R", "D", "c-1_x"
		},
		"results kept the shortest time allowed": func(t *Topology) { t.ResultsMaxAge = minRecordAge },
	} {
		top := DefaultTopology()
		mutate(&top)
		if err := top.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
}

func TestStreamConfigs(t *testing.T) {
	top := DefaultTopology()
	top.Subjects.Prefix = "acme"
	top.DedupWindow = 3 * time.Minute
	top.Storage = jetstream.MemoryStorage
	top.Replicas = 3

	j := top.JobsStreamConfig()
	if j.Name != top.JobsStream || j.Retention != jetstream.WorkQueuePolicy || j.Duplicates != 3*time.Minute ||
		!slices.Equal(j.Subjects, []string{"acme.*", "acme.token.*", "acme.tenant.*.*", "acme.tenant.*.token.*"}) || j.Storage != jetstream.MemoryStorage || j.Replicas != 3 ||
		j.Discard != jetstream.DiscardNew || j.MaxBytes != top.JobsMaxBytes || j.MaxBytes != DefaultJobsMaxBytes {
		t.Errorf("jobs stream config %+v", j)
	}
	if j.MaxMsgSize <= MaxJobBytes {
		t.Errorf("jobs stream MaxMsgSize %d cannot hold a %d-byte job with its headers", j.MaxMsgSize, MaxJobBytes)
	}

	r := top.ResultsStreamConfig()
	if r.Name != top.ResultsStream || r.Retention != jetstream.LimitsPolicy || r.MaxAge != top.ResultsMaxAge ||
		!slices.Equal(r.Subjects, []string{"acme.results.>"}) || r.MaxMsgsPerSubject != 1 || !r.DiscardNewPerSubject || r.Discard != jetstream.DiscardNew || !r.AllowDirect ||
		r.Replicas != 3 || r.Storage != jetstream.MemoryStorage || r.MaxBytes != top.ResultsMaxBytes {
		t.Errorf("results stream config %+v", r)
	}

	d := top.DeadLetterStreamConfig()
	if d.Name != top.DeadLetterStream || d.Discard != jetstream.DiscardNew || d.MaxBytes != top.DeadLetterMaxBytes ||
		d.MaxAge != top.DeadLetterMaxAge || d.Retention != jetstream.LimitsPolicy || !slices.Equal(d.Subjects, []string{"acme.dlq.>"}) ||
		d.MaxMsgsPerSubject != 1 || !d.DiscardNewPerSubject || !d.AllowDirect || d.Replicas != 3 || d.Storage != jetstream.MemoryStorage {
		t.Errorf("dead-letter stream config %+v", d)
	}

	c := top.ConsumerConfig()
	if c.Durable != top.Consumer || c.AckPolicy != jetstream.AckExplicitPolicy || c.AckWait != top.AckWait ||
		c.MaxDeliver != top.MaxDeliver+BackstopMargin || c.MaxAckPending != top.MaxAckPending || c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("consumer config %+v", c)
	}
}

func TestEnsure(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	top := DefaultTopology()

	cons, err := top.Ensure(ctx, js)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Stream != top.JobsStream || ci.Config.Durable != top.Consumer || ci.Config.AckPolicy != jetstream.AckExplicitPolicy ||
		ci.Config.AckWait != top.AckWait || ci.Config.MaxDeliver != top.MaxDeliver+BackstopMargin || ci.Config.MaxAckPending != top.MaxAckPending {
		t.Errorf("consumer %s on %s: %+v", ci.Name, ci.Stream, ci.Config)
	}

	info := func(name string) *jetstream.StreamInfo {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		i, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	jobs, results, dlq := info(top.JobsStream), info(top.ResultsStream), info(top.DeadLetterStream)
	if c := jobs.Config; c.Retention != jetstream.WorkQueuePolicy || c.Duplicates != top.DedupWindow ||
		!slices.Equal(c.Subjects, top.Subjects.JobFilters()) || c.Replicas != 1 || c.Storage != jetstream.FileStorage ||
		c.Discard != jetstream.DiscardNew || c.MaxBytes != DefaultJobsMaxBytes {
		t.Errorf("jobs stream as created: %+v", c)
	}
	if c := results.Config; c.MaxAge != top.ResultsMaxAge || c.Retention != jetstream.LimitsPolicy || c.MaxMsgsPerSubject != 1 || !c.DiscardNewPerSubject {
		t.Errorf("results stream as created: %+v", c)
	}
	if c := dlq.Config; c.Discard != jetstream.DiscardNew || c.MaxBytes != top.DeadLetterMaxBytes || c.MaxAge != top.DeadLetterMaxAge {
		t.Errorf("dead-letter stream as created: %+v", c)
	}
	names := map[string]bool{}
	for n := range js.StreamNames(ctx).Name() {
		names[n] = true
	}
	if !names[top.JobsStream] || !names[top.ResultsStream] || !names[top.DeadLetterStream] || !names[top.GivenUpStream()] {
		t.Errorf("streams on the server: %v", names)
	}
	kv, err := js.KeyValue(ctx, top.ProgressBucket)
	if err != nil {
		t.Fatalf("progress bucket %s: %v", top.ProgressBucket, err)
	}
	if st, err := kv.Status(ctx); err != nil || st.TTL() != top.ProgressTTL {
		t.Errorf("progress bucket status %v, %v; want TTL %s", st, err, top.ProgressTTL)
	}
	if len(names) != 6 {
		t.Errorf("Ensure made %d streams (%v), want the four and the two buckets'", len(names), names)
	}

	// A job waiting in the stream survives a second Ensure.
	if _, err := Publish(ctx, js, top.Subjects, &RevokeArgs{SessionID: "sess_1"}); err != nil {
		t.Fatal(err)
	}

	// Idempotent: a second worker starting changes nothing.
	if _, err := top.Ensure(ctx, js); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	jobs2, results2 := info(top.JobsStream), info(top.ResultsStream)
	if !jobs2.Created.Equal(jobs.Created) || !results2.Created.Equal(results.Created) {
		t.Error("second Ensure recreated a stream")
	}
	if jobs2.Config.Replicas != 1 || results2.Config.Replicas != 1 || info(top.DeadLetterStream).Config.Replicas != 1 {
		t.Error("second Ensure changed the replicas")
	}
	if jobs2.State.Msgs != 1 {
		t.Errorf("jobs stream holds %d messages after the second Ensure, want 1", jobs2.State.Msgs)
	}

	// A changed setting is applied to the existing streams and consumer.
	top.ResultsMaxAge = 48 * time.Hour
	top.DeadLetterMaxBytes = 2 << 30
	top.MaxAckPending = 50
	top.DedupWindow = 5 * time.Minute
	cons, err = top.Ensure(ctx, js)
	if err != nil {
		t.Fatalf("Ensure with new settings: %v", err)
	}
	if got := info(top.ResultsStream).Config.MaxAge; got != 48*time.Hour {
		t.Errorf("results MaxAge = %s after Ensure, want 48h", got)
	}
	if got := info(top.DeadLetterStream).Config.MaxBytes; got != 2<<30 {
		t.Errorf("dead-letter MaxBytes = %d after Ensure, want %d", got, int64(2<<30))
	}
	if got := info(top.JobsStream).Config.Duplicates; got != 5*time.Minute {
		t.Errorf("jobs Duplicates = %s after Ensure, want 5m", got)
	}
	if ci, err := cons.Info(ctx); err != nil || ci.Config.MaxAckPending != 50 {
		t.Errorf("consumer MaxAckPending after Ensure: %v, %v", ci, err)
	}
	if got := info(top.JobsStream).State.Msgs; got != 1 {
		t.Errorf("jobs stream holds %d messages after an update, want 1", got)
	}
}

// Every topology Validate accepts can be created on a server: Validate is
// the place that names the bad setting, not a server error at start-up.
func TestEnsureAcceptsWhatValidateAccepts(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	for name, mutate := range map[string]func(*Topology){
		"short results max age":       func(t *Topology) { t.ResultsMaxAge = 5 * time.Minute },
		"short dead-letter max age":   func(t *Topology) { t.DeadLetterMaxAge = time.Minute },
		"dead letters kept forever":   func(t *Topology) { t.DeadLetterMaxAge = 0 },
		"memory storage, long expiry": func(t *Topology) { t.Storage = jetstream.MemoryStorage; t.ResultsMaxAge = time.Hour },
		"dedup window at 100ms":       func(t *Topology) { t.DedupWindow = 100 * time.Millisecond },
		"dedup window under 100ms":    func(t *Topology) { t.DedupWindow = 99 * time.Millisecond },
		"caps past the int64 top":     func(t *Topology) { t.JobsMaxBytes = math.MaxInt64 },
		"minimum sizes": func(t *Topology) {
			t.DeadLetterMaxBytes, t.MaxDeliver, t.AckWait, t.MaxAckPending, t.DedupWindow = 1<<20, 1, time.Second, 1, time.Second
			t.JobsMaxBytes = 1 << 20
		},
	} {
		top := DefaultTopology()
		mutate(&top)
		// Each case on its own prefix and names, on one server.
		p := strings.ToLower(strings.NewReplacer(" ", "", ",", "", "-", "").Replace(name))
		top.Subjects.Prefix = p
		top.JobsStream, top.ResultsStream, top.DeadLetterStream, top.Consumer, top.ProgressBucket, top.RateBucket = p+"_J", p+"_R", p+"_D", p+"_C", p+"_P", p+"_B"
		verr := top.Validate()
		_, eerr := top.Ensure(ctx, js)
		switch {
		case verr == nil && eerr != nil:
			t.Errorf("%s: Validate accepts it but Ensure fails: %v", name, eerr)
		case verr != nil && eerr == nil:
			t.Errorf("%s: Validate refuses it (%v) but Ensure does not", name, verr)
		case verr != nil && !strings.Contains(eerr.Error(), verr.Error()):
			t.Errorf("%s: Ensure error %q is not Validate's %q", name, eerr, verr)
		}
	}
}

func TestEnsureRefusesInvalidTopology(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	top := DefaultTopology()
	top.MaxDeliver = 0
	if _, err := top.Ensure(ctx, js); err == nil || !strings.Contains(err.Error(), "max deliveries") {
		t.Errorf("Ensure(invalid) = %v, want the validation error", err)
	}
	for n := range js.StreamNames(ctx).Name() {
		t.Errorf("Ensure(invalid) created stream %s", n)
	}
}

// On a single server, replicas 3 cannot be had: Ensure says which stream
// it could not create.
func TestEnsureReplicasOnSingleServer(t *testing.T) {
	js := startJetStream(t)
	top := DefaultTopology()
	top.Replicas = 3
	_, err := top.Ensure(testContext(t), js)
	if err == nil {
		t.Fatal("Ensure with 3 replicas on one server succeeded")
	}
	if !strings.Contains(err.Error(), top.JobsStream) {
		t.Errorf("error %q does not name the stream", err)
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("error %v does not wrap the server's API error", err)
	}
}

// TestEnsureBesideAStreamOfEveryAdvisory: operators often keep a stream of
// every JetStream advisory ($JS.EVENT.>), and JetStream gives a subject to
// one stream only, so the given-up stream cannot be made there. That must
// not stop the workers (Ensure made nothing else before): they run without
// it, and EnsureGivenUpStream says which stream takes the subject.
func TestEnsureBesideAStreamOfEveryAdvisory(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ADVISORIES", Subjects: []string{"$JS.EVENT.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	top := DefaultTopology()
	if _, err := top.Ensure(ctx, js); err != nil {
		t.Fatalf("Ensure beside a stream of every advisory: %v", err)
	}
	if _, err := js.Stream(ctx, top.GivenUpStream()); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("given-up stream: %v, want none", err)
	}
	for _, name := range []string{top.JobsStream, top.ResultsStream, top.DeadLetterStream, "KV_" + top.ProgressBucket, "KV_" + top.RateBucket} {
		if _, err := js.Stream(ctx, name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	err := top.EnsureGivenUpStream(ctx, js)
	if !errors.Is(err, ErrAdvisoriesTaken) {
		t.Fatalf("EnsureGivenUpStream = %v, want ErrAdvisoriesTaken", err)
	}
	for _, want := range []string{"stream ADVISORIES", top.MaxDeliveriesSubject(), "dead-lettered only once no job is pending"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("EnsureGivenUpStream = %q, want it to say %q", err, want)
		}
	}
}
