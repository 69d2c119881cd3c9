package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestExportFiles(t *testing.T) {
	top := DefaultTopology()
	top.Replicas = 3
	files, err := top.Export()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"KV_SESSION_BULK_PROGRESS.stream.json", "KV_SESSION_RATE_BUDGET.stream.json", "SESSION_DLQ.stream.json", "SESSION_JOBS.session-worker.consumer.json",
		"SESSION_JOBS.stream.json", "SESSION_JOBS_GIVEN_UP.stream.json", "SESSION_RESULTS.stream.json",
	}
	if got := slices.Sorted(mapKeys(files)); !slices.Equal(got, want) {
		t.Fatalf("Export() files = %v, want %v", got, want)
	}
	for name, b := range files {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s is not JSON: %v", name, err)
		}
		if !strings.HasSuffix(string(b), "}\n") {
			t.Errorf("%s does not end in a newline", name)
		}
		if strings.HasSuffix(name, ExportStreamSuffix) {
			// The server's own spelling, limits explicit.
			if m["num_replicas"] != 3.0 || m["storage"] != "file" || m["max_msgs"] != -1.0 || m["max_consumers"] != -1.0 {
				t.Errorf("%s = %s", name, b)
			}
		}
	}
	var jobsCfg map[string]any
	_ = json.Unmarshal(files["SESSION_JOBS.stream.json"], &jobsCfg)
	if jobsCfg["retention"] != "workqueue" || jobsCfg["duplicate_window"] != float64(2*time.Minute) {
		t.Errorf("jobs stream = %s", files["SESSION_JOBS.stream.json"])
	}
	var cons map[string]any
	_ = json.Unmarshal(files["SESSION_JOBS.session-worker.consumer.json"], &cons)
	if cons["durable_name"] != "session-worker" || cons["ack_policy"] != "explicit" || cons["max_deliver"] != float64(5+BackstopMargin) {
		t.Errorf("consumer = %s", files["SESSION_JOBS.session-worker.consumer.json"])
	}

	bad := DefaultTopology()
	bad.Replicas = 0
	if _, err := bad.Export(); err == nil {
		t.Error("Export of an invalid topology succeeded")
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestCheckNothingYet(t *testing.T) {
	js := startJetStream(t)
	drifts, err := DefaultTopology().Check(testContext(t), js)
	if err != nil {
		t.Fatalf("Check on an empty server = %v", err)
	}
	if len(drifts) != 7 {
		t.Fatalf("Check = %v, want 7 missing objects", drifts)
	}
	for _, d := range drifts {
		if !d.Missing || !strings.Contains(d.String(), "will be created") {
			t.Errorf("drift %v: want missing", d)
		}
	}
}

// What Ensure creates is what Check wants: no drift at all. This also holds
// ProgressStreamConfig to the stream nats.go makes for the bucket.
func TestCheckAfterEnsureFindsNothing(t *testing.T) {
	js := startJetStream(t)
	top := DefaultTopology()
	ensureTopology(t, js, top)
	drifts, err := top.Check(testContext(t), js)
	if err != nil || len(drifts) != 0 {
		t.Fatalf("Check after Ensure = %v, %v; want no drift", drifts, err)
	}
	s, err := js.Stream(testContext(t), "KV_"+top.ProgressBucket)
	if err != nil {
		t.Fatal(err)
	}
	have, want := s.CachedInfo().Config, top.ProgressStreamConfig()
	if have.Description != want.Description || !slices.Equal(have.Subjects, want.Subjects) {
		t.Errorf("bucket stream = %+v, want %+v", have, want)
	}
}

// The exported files, sent to the JetStream API the way `nats stream add
// --config` and `nats consumer add --config` send them, make objects that
// Check accepts and that Ensure then leaves as they are.
func TestExportedFilesCreateTheTopology(t *testing.T) {
	js := startJetStream(t)
	nc := js.Conn()
	top := DefaultTopology()
	files, err := top.Export()
	if err != nil {
		t.Fatal(err)
	}
	request := func(subject string, body []byte) {
		t.Helper()
		m, err := nc.Request(subject, body, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		var r struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Error != nil {
			t.Fatalf("%s: %s", subject, m.Data)
		}
	}
	for _, c := range top.StreamConfigs() {
		request("$JS.API.STREAM.CREATE."+c.Name, files[c.Name+ExportStreamSuffix])
	}
	consumer := fmt.Sprintf(`{"stream_name":%q,"config":%s}`, top.JobsStream, files[top.JobsStream+"."+top.Consumer+ExportConsumerSuffix])
	request("$JS.API.CONSUMER.CREATE."+top.JobsStream+"."+top.Consumer, []byte(consumer))

	drifts, err := top.Check(testContext(t), js)
	if err != nil || len(drifts) != 0 {
		t.Fatalf("Check on objects made from Export = %v, %v; want no drift", drifts, err)
	}
	ensureTopology(t, js, top)
	if drifts, err := top.Check(testContext(t), js); err != nil || len(drifts) != 0 {
		t.Fatalf("Check after Ensure = %v, %v", drifts, err)
	}
}

// Each case makes one object differ from the topology, then holds Check's
// verdict to the server's: a drift Check calls updatable is one Ensure
// fixes, and one it does not is one the server refuses.
func TestCheckDriftAgreesWithTheServer(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, js jetstream.JetStream, top Topology)
		field     string
		updatable bool
		mention   []string
	}{
		{"jobs stream in memory", func(t *testing.T, js jetstream.JetStream, top Topology) {
			c := top.JobsStreamConfig()
			c.Storage = jetstream.MemoryStorage
			mustStream(t, js, c)
		}, "storage", false, []string{"SESSION_JOBS", "storage is memory, want file", "nats stream rm SESSION_JOBS", "no jobs waiting"}},
		{"results stream as a work queue", func(t *testing.T, js jetstream.JetStream, top Topology) {
			c := top.ResultsStreamConfig()
			c.Retention = jetstream.WorkQueuePolicy
			mustStream(t, js, c)
		}, "retention", false, []string{"SESSION_RESULTS", "retention is workqueue, want limits"}},
		{"dead letters with interest retention", func(t *testing.T, js jetstream.JetStream, top Topology) {
			c := top.DeadLetterStreamConfig()
			c.Retention = jetstream.InterestPolicy
			mustStream(t, js, c)
		}, "retention", true, nil},
		{"jobs stream denies deletes", func(t *testing.T, js jetstream.JetStream, top Topology) {
			c := top.JobsStreamConfig()
			c.DenyDelete = true
			mustStream(t, js, c)
		}, "deny_delete", false, []string{"deny_delete is true, want false"}},
		{"bucket in memory", func(t *testing.T, js jetstream.JetStream, top Topology) {
			kv := top.ProgressBucketConfig()
			kv.Storage = jetstream.MemoryStorage
			if _, err := js.CreateKeyValue(testContext(t), kv); err != nil {
				t.Fatal(err)
			}
		}, "storage", false, []string{"bucket SESSION_BULK_PROGRESS", "nats kv rm SESSION_BULK_PROGRESS"}},
		{"smaller dead-letter stream", func(t *testing.T, js jetstream.JetStream, top Topology) {
			c := top.DeadLetterStreamConfig()
			c.MaxBytes = 2 << 20
			mustStream(t, js, c)
		}, "max_bytes", true, []string{"max_bytes is 2097152, want 1073741824"}},
		{"results kept a week", func(t *testing.T, js jetstream.JetStream, top Topology) {
			c := top.ResultsStreamConfig()
			c.MaxAge = 7 * 24 * time.Hour
			mustStream(t, js, c)
		}, "max_age", true, []string{"max_age is 168h0m0s, want 24h0m0s"}},
		{"consumer replaying at the original pace", func(t *testing.T, js jetstream.JetStream, top Topology) {
			mustStream(t, js, top.JobsStreamConfig())
			c := top.ConsumerConfig()
			c.ReplayPolicy = jetstream.ReplayOriginalPolicy
			mustConsumer(t, js, top.JobsStream, c)
		}, "replay_policy", false, []string{"SESSION_JOBS/session-worker", "replay_policy is original, want instant", "nats consumer rm SESSION_JOBS session-worker"}},
		{"consumer in memory", func(t *testing.T, js jetstream.JetStream, top Topology) {
			mustStream(t, js, top.JobsStreamConfig())
			c := top.ConsumerConfig()
			c.MemoryStorage = true
			mustConsumer(t, js, top.JobsStream, c)
		}, "mem_storage", false, nil},
		{"push consumer", func(t *testing.T, js jetstream.JetStream, top Topology) {
			mustStream(t, js, top.JobsStreamConfig())
			c := jetstream.ConsumerConfig{Durable: top.Consumer, AckPolicy: jetstream.AckExplicitPolicy, DeliverSubject: "deliver.here"}
			if _, err := js.CreatePushConsumer(testContext(t), top.JobsStream, c); err != nil {
				t.Fatal(err)
			}
		}, "deliver_subject", false, []string{"push consumer"}},
		{"consumer with a small wait queue", func(t *testing.T, js jetstream.JetStream, top Topology) {
			mustStream(t, js, top.JobsStreamConfig())
			c := top.ConsumerConfig()
			c.MaxWaiting = 10
			mustConsumer(t, js, top.JobsStream, c)
		}, "max_waiting", false, nil},
		{"consumer with more deliveries", func(t *testing.T, js jetstream.JetStream, top Topology) {
			mustStream(t, js, top.JobsStreamConfig())
			c := top.ConsumerConfig()
			c.MaxDeliver = 9
			c.AckWait = time.Minute
			mustConsumer(t, js, top.JobsStream, c)
		}, "max_deliver", true, []string{"max_deliver is 9, want 7"}},
		{"another consumer on the work queue", func(t *testing.T, js jetstream.JetStream, top Topology) {
			mustStream(t, js, top.JobsStreamConfig())
			c := top.ConsumerConfig()
			c.Durable = "intruder"
			mustConsumer(t, js, top.JobsStream, c)
		}, "consumers", false, []string{"intruder", "nats consumer rm SESSION_JOBS intruder", "one consumer per subject"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startJetStream(t)
			top := DefaultTopology()
			tt.setup(t, js, top)
			drifts, err := top.Check(testContext(t), js)
			var found *Drift
			for i, d := range drifts {
				if d.Field == tt.field {
					found = &drifts[i]
				}
			}
			if found == nil {
				t.Fatalf("Check = %v, %v; want a drift in %s", drifts, err, tt.field)
			}
			var de *DriftError
			if found.Updatable != tt.updatable || (errors.As(err, &de) == tt.updatable) {
				t.Fatalf("Check = %v, %v; want %s updatable=%v", drifts, err, tt.field, tt.updatable)
			}
			text := found.String()
			if err != nil {
				text = err.Error()
			}
			for _, s := range tt.mention {
				if !strings.Contains(text, s) {
					t.Errorf("Check says %q; want it to mention %q", text, s)
				}
			}
			_, ensureErr := top.Ensure(testContext(t), js)
			if tt.updatable {
				if ensureErr != nil {
					t.Fatalf("Check called it updatable, but Ensure = %v", ensureErr)
				}
				if drifts, err := top.Check(testContext(t), js); err != nil || len(drifts) != 0 {
					t.Fatalf("Check after Ensure = %v, %v; want nothing left", drifts, err)
				}
			} else if ensureErr == nil {
				t.Fatalf("Check called %s not updatable, but Ensure succeeded", tt.field)
			}
		})
	}
}

func mustStream(t *testing.T, js jetstream.JetStream, c jetstream.StreamConfig) {
	t.Helper()
	if _, err := js.CreateStream(testContext(t), c); err != nil {
		t.Fatalf("create stream %s: %v", c.Name, err)
	}
}

func mustConsumer(t *testing.T, js jetstream.JetStream, stream string, c jetstream.ConsumerConfig) {
	t.Helper()
	if _, err := js.CreateConsumer(testContext(t), stream, c); err != nil {
		t.Fatalf("create consumer %s: %v", c.Durable, err)
	}
}

func TestDriftErrorText(t *testing.T) {
	e := &DriftError{Drifts: []Drift{{Kind: "stream", Name: "S", Field: "storage", Have: "memory", Want: "file", Fix: "do this"}}}
	want := "JetStream objects differ from the worker's configuration in ways that cannot be updated:\n" +
		"  - stream S: storage is memory, want file; JetStream cannot change this on an existing stream.\n    Fix: do this"
	if e.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", e.Error(), want)
	}
}

// TestDriftQuotesOperatorValuesBounded: a drift's text goes to the log on
// every sweep and into errors; what an operator set on the server (here
// 2,000 subjects added to the jobs stream) is quoted short, on one line.
func TestDriftQuotesOperatorValuesBounded(t *testing.T) {
	js := startJetStream(t)
	top := DefaultTopology()
	c := top.JobsStreamConfig()
	for i := range 2000 {
		c.Subjects = append(c.Subjects, fmt.Sprintf("other.tenant.orders.created.%04d", i))
	}
	if _, err := top.Ensure(testContext(t), js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.UpdateStream(testContext(t), c); err != nil {
		t.Fatal(err)
	}
	drifts, err := top.Check(testContext(t), js)
	if err != nil || len(drifts) != 1 || drifts[0].Field != "subjects" {
		t.Fatalf("Check = %d drifts, %v; want one, in subjects", len(drifts), err)
	}
	d := drifts[0]
	if !strings.Contains(d.Have, "other.tenant.orders.created.1999") {
		t.Error("Have lost the server's value: it is for programs, whole")
	}
	for _, s := range []string{d.Difference(), d.String(), (&DriftError{Drifts: drifts}).Error()} {
		if len(s) > 1500 || !strings.Contains(s, "stream SESSION_JOBS: subjects is [") || !strings.Contains(s, "…") {
			t.Errorf("drift text of %d bytes: %.200q…; want it under 1500 bytes, cut with …", len(s), s)
		}
	}
	ctl := Drift{Kind: "stream", Name: "S", Field: "description", Have: "a\nforged line\x1b[2J", Want: ""}
	if s := ctl.Difference(); strings.ContainsAny(s, "\n\x1b") {
		t.Errorf("Difference = %q: control characters of a value kept", s)
	}
}
