package jobs

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fillJobs publishes jobs of 60 KiB on subject until the jobs stream
// refuses one, and returns the bodies stored, in order, and the refusal.
func fillJobs(ctx context.Context, t *testing.T, js jetstream.JetStream, subject string, limit int) ([][]byte, error) {
	t.Helper()
	var stored [][]byte
	for i := range limit {
		m := nats.NewMsg(subject)
		m.Data = bytes.Repeat([]byte{byte('a' + i%26)}, 60<<10)
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("fill-%d", i))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return stored, err
		}
		stored = append(stored, m.Data)
	}
	t.Fatalf("the jobs stream took %d jobs of 60 KiB without refusing one", limit)
	return nil, nil
}

// checkKept fails unless the jobs stream holds exactly want, in order.
func checkKept(ctx context.Context, t *testing.T, js jetstream.JetStream, top Topology, want [][]byte) {
	t.Helper()
	s, err := js.Stream(ctx, top.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(want)) || info.State.FirstSeq != 1 {
		t.Fatalf("jobs stream holds %d jobs from seq %d, want the %d stored from seq 1", info.State.Msgs, info.State.FirstSeq, len(want))
	}
	for i, w := range want {
		m, err := s.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("stored job %d: %v", i+1, err)
		}
		if !bytes.Equal(m.Data, w) {
			t.Errorf("stored job %d changed", i+1)
		}
	}
}

// A full jobs stream refuses the next job, saying it is full, and keeps
// every job it stored: a job is refused or stored, never evicted.
func TestFullJobsStreamRefusesNewJobsAndKeepsStoredOnes(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	top := DefaultTopology()
	top.JobsMaxBytes = 1 << 20
	ensureTopology(t, js, top)

	stored, err := fillJobs(ctx, t, js, top.Subjects.Job(OpRevoke), 100)
	if !StreamFull(err) {
		t.Fatalf("the job after %d was refused with %v, want the stream full", len(stored), err)
	}
	if StorageFull(err) {
		t.Errorf("StorageFull(%v) = true: the stream's own cap is reached, not the server's storage", err)
	}
	if len(stored) < 10 {
		t.Errorf("a 1 MiB stream took %d jobs of 60 KiB", len(stored))
	}
	// Small jobs, a tenant's, fill what room is left; then they are
	// refused too.
	for i := 0; ; i++ {
		m := nats.NewMsg(top.Subjects.TenantJob("svc_a", OpRevoke))
		m.Data = []byte(fmt.Sprintf(`{"session_id":"sess_%d"}`, i))
		_, err := js.PublishMsg(ctx, m)
		if StreamFull(err) {
			break
		}
		if err != nil || i == 1000 {
			t.Fatalf("small job %d on the nearly full stream: %v", i, err)
		}
		stored = append(stored, m.Data)
	}
	checkKept(ctx, t, js, top, stored)
}

// A jobs stream made by a worker before the cap existed is capped by the
// next Ensure, reported by Check as a change Ensure makes in place; a cap
// below what it holds already keeps every job and refuses new ones.
func TestEnsureCapsAnUncappedJobsStream(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	top := DefaultTopology()
	old := top.JobsStreamConfig()
	old.MaxBytes = 0 // as an older worker made it
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	// More than the cap the new worker brings.
	var stored [][]byte
	for i := range 20 {
		m := nats.NewMsg(top.Subjects.Job(OpRevoke))
		m.Data = bytes.Repeat([]byte{byte('a' + i)}, 60<<10)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("job %d on the uncapped stream: %v", i, err)
		}
		stored = append(stored, m.Data)
	}

	top.JobsMaxBytes = 1 << 20
	drifts, err := top.Check(ctx, js)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	found := false
	for _, d := range drifts {
		if d.Kind == "stream" && d.Name == top.JobsStream && d.Field == "max_bytes" {
			found = true
			if !d.Updatable || d.Have != "-1" || d.Want != "1048576" {
				t.Errorf("drift %+v, want max_bytes -1 → 1048576, updatable", d)
			}
		}
	}
	if !found {
		t.Fatalf("Check found no max_bytes drift on the uncapped jobs stream: %v", drifts)
	}

	ensureTopology(t, js, top)
	s, err := js.Stream(ctx, top.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxBytes; got != 1<<20 {
		t.Errorf("jobs stream MaxBytes = %d after Ensure, want %d", got, 1<<20)
	}
	checkKept(ctx, t, js, top, stored)
	m := nats.NewMsg(top.Subjects.Job(OpRevoke))
	m.Data = []byte(`{"session_id":"sess_1"}`)
	if _, err := js.PublishMsg(ctx, m); !StreamFull(err) {
		t.Errorf("a job on the stream over its new cap: %v, want the stream full", err)
	}
	checkKept(ctx, t, js, top, stored)
	if drifts, err := top.Check(ctx, js); err != nil || len(drifts) != 0 {
		t.Errorf("Check after Ensure: %v, %v; want nothing", drifts, err)
	}
}

func TestStreamFullAndStorageFull(t *testing.T) {
	cases := []struct {
		name            string
		err             error
		stream, storage bool
	}{
		{"max bytes", &jetstream.APIError{ErrorCode: 10077, Description: "maximum bytes exceeded"}, true, false},
		{"max messages", &jetstream.APIError{ErrorCode: 10077, Description: "maximum messages exceeded"}, true, false},
		{"max per subject", &jetstream.APIError{ErrorCode: 10077, Description: "maximum messages per subject exceeded"}, true, false},
		{"wrapped", fmt.Errorf("publish: %w", &jetstream.APIError{ErrorCode: 10077, Description: "maximum bytes exceeded"}), true, false},
		{"too large under 10077", &jetstream.APIError{ErrorCode: 10077, Description: "message too large"}, false, false},
		{"too large", &jetstream.APIError{ErrorCode: 10054, Description: "message size exceeds maximum allowed"}, false, false},
		{"server storage", &jetstream.APIError{ErrorCode: 10047, Description: "insufficient storage resources available"}, false, true},
		{"insufficient resources", &jetstream.APIError{ErrorCode: 10023, Description: "insufficient resources"}, false, true},
		{"account limits", &jetstream.APIError{ErrorCode: 10002, Description: "resource limits exceeded for account"}, false, true},
		{"no stream", jetstream.ErrNoStreamResponse, false, false},
		{"nil", nil, false, false},
	}
	for _, c := range cases {
		if got := StreamFull(c.err); got != c.stream {
			t.Errorf("%s: StreamFull = %v, want %v", c.name, got, c.stream)
		}
		if got := StorageFull(c.err); got != c.storage {
			t.Errorf("%s: StorageFull = %v, want %v", c.name, got, c.storage)
		}
	}
}
