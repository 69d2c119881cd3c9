package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestFinishedRevokeAllLeavesNoProgress: once a revoke_all's result is
// stored, its progress is deleted, so that the console's list of jobs in
// progress (read from the bucket) does not show it for the bucket's TTL.
func TestFinishedRevokeAllLeavesNoProgress(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 50)
	env.StartWorker(t, bulkWorker)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded || sum.Revoked != 50 {
		t.Fatalf("outcome %s, summary %+v", r.Outcome, sum)
	}
	kv, err := env.JS.KeyValue(context.Background(), env.Topology.ProgressBucket)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the finished job's progress deleted", func() bool {
		keys, err := kv.Keys(context.Background())
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return true
		}
		t.Logf("progress keys left: %v (%v)", keys, err)
		return false
	})
}
