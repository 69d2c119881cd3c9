package worker_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestStatusSaysHowFullTheJobsStreamIs: operators see the jobs stream's
// bytes against its cap in the worker's status (the micro service's status
// endpoint, as monitoring reads it), with a flag once it is nearly full,
// and "no cap" as JetStream's -1 when an operator removed it.
func TestStatusSaysHowFullTheJobsStreamIs(t *testing.T) {
	env := testenv.New(t)
	const instance = "fullness-1"
	env.StartWorker(t, func(c *worker.Config) {
		c.Instance, c.Topology.JobsMaxBytes, c.SweepInterval = instance, 1<<20, 50*time.Millisecond
	})
	type streamStatus struct {
		Name       string    `json:"name"`
		Bytes      *uint64   `json:"bytes"`
		MaxBytes   *int64    `json:"max_bytes"`
		Messages   *uint64   `json:"messages"`
		Percent    *uint64   `json:"percent"`
		NearlyFull *bool     `json:"nearly_full"`
		ReadAt     time.Time `json:"read_at"`
		Error      string    `json:"error"`
	}
	status := func() streamStatus {
		t.Helper()
		m, err := env.NC.Request("clerkjobs.worker."+instance+".status", nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			JobsStream *streamStatus `json:"jobs_stream"`
		}
		if err := json.Unmarshal(m.Data, &st); err != nil {
			t.Fatalf("status %s: %v", m.Data, err)
		}
		if st.JobsStream == nil {
			return streamStatus{}
		}
		return *st.JobsStream
	}
	var st streamStatus
	testenv.Eventually(t, 10*time.Second, "the status shows the empty jobs stream", func() bool {
		st = status()
		return st.MaxBytes != nil
	})
	if st.Name != env.Topology.JobsStream || *st.MaxBytes != 1<<20 || *st.Messages != 0 || *st.NearlyFull || *st.Percent != 0 || st.ReadAt.IsZero() || st.Error != "" {
		t.Fatalf("empty jobs stream: %+v", st)
	}

	// The worker would take the jobs that fill it.
	if _, err := env.JS.PauseConsumer(t.Context(), env.Topology.JobsStream, env.Topology.Consumer, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	held := testenv.FillToMaxBytes(t, env.JS, env.Topology.Subjects.Job(jobs.OpRevoke))
	testenv.Eventually(t, 10*time.Second, "the status shows the full jobs stream", func() bool {
		st = status()
		return st.Messages != nil && *st.Messages == uint64(held)
	})
	if *st.MaxBytes != 1<<20 || *st.Bytes > 1<<20 || *st.Bytes < 1<<20-(1<<10) || *st.Percent != 99 || !*st.NearlyFull || st.Error != "" {
		t.Errorf("full jobs stream (%d jobs): %+v", held, st)
	}

	editStream(t, env, env.Topology.JobsStream, func(c *jetstream.StreamConfig) { c.MaxBytes = -1 })
	testenv.Eventually(t, 10*time.Second, "the status shows the jobs stream without a cap", func() bool {
		st = status()
		return st.MaxBytes != nil && *st.MaxBytes == -1
	})
	if *st.NearlyFull || *st.Percent != 0 || *st.Messages != uint64(held) || st.Error != "" {
		t.Errorf("uncapped jobs stream: %+v", st)
	}
}
