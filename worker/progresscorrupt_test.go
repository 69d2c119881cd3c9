package worker_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAllWithCorruptProgressRuns: progress that does not decode (a
// bucket written by hand, a bad restore) is no progress. Before, every
// delivery failed to load it and the revoke_all ended dead-lettered as
// exhausted without revoking a session: an account takeover left with
// every session active. Now the job starts afresh and overwrites it.
func TestRevokeAllWithCorruptProgressRuns(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 5)
	ack := env.Publish(t, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "corrupt-progress"}, UserID: user})
	putProgress(t, env, ack, `{"job_id":`)
	env.StartWorker(t, bulkWorker)
	testenv.Eventually(t, 30*time.Second, "the revoke_all's result or dead letter", func() bool {
		return len(env.Results(t)) > 0 || env.StreamCount(t, env.Topology.DeadLetterStream) > 0
	})
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Fatalf("%d dead letters; want the job run", n)
	}
	if r := env.Results(t)[0]; r.Outcome != jobs.Succeeded {
		t.Fatalf("outcome %s: %+v", r.Outcome, r.Error)
	}
	for _, id := range ids {
		if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Errorf("session %s is %s; want revoked", id, s.Status)
		}
	}
}

// putProgress stores raw as the saved progress of the revoke_all job ack
// names, under the key the worker's store gives it (kvProgress.key), as a
// delivery that crashed would have left it. It returns the bucket and the
// key.
func putProgress(t *testing.T, env *testenv.Env, ack *jetstream.PubAck, raw string) (jetstream.KeyValue, string) {
	t.Helper()
	ctx := t.Context()
	st, err := env.JS.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := env.JS.KeyValue(ctx, env.Topology.ProgressBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := "job." + jobs.NoTenant + "." + jobs.Generation(st.CachedInfo().Created) + "." + strconv.FormatUint(ack.Sequence, 10)
	if _, err := kv.Put(ctx, key, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	return kv, key
}
