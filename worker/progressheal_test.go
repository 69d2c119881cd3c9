package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDeletedProgressBucketHeals: the revoke_all progress bucket deleted by
// hand (as the streams, the consumer and the rate bucket may be) is created
// again, and a revoke_all revokes the user's sessions and succeeds, rather
// than failing on every delivery until it is dead-lettered as exhausted.
func TestDeletedProgressBucketHeals(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 5)
	env.StartWorker(t, bulkWorker)
	if err := env.JS.DeleteKeyValue(context.Background(), env.Topology.ProgressBucket); err != nil {
		t.Fatal(err)
	}
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded {
		t.Fatalf("outcome %s after the progress bucket was deleted: %+v", r.Outcome, r.Error)
	}
	if sum.Revoked != 5 {
		t.Errorf("revoked %d of 5 sessions", sum.Revoked)
	}
	testenv.Eventually(t, 10*time.Second, "the progress bucket created again", func() bool {
		_, err := env.JS.KeyValue(context.Background(), env.Topology.ProgressBucket)
		return err == nil
	})
}
