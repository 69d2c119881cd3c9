package worker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
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

// TestDeadLetteredRevokeAllLeavesNoProgress: a revoke_all that ends
// dead-lettered (its lock refused for good after every session was revoked;
// or out of deliveries, its listing failing after the lock was saved) kept
// its progress, so the console listed the finished job under "revoke_all
// jobs in progress" for the bucket's TTL (7 days); nothing read it again,
// as a replay of the letter is a new message, under a new key. Its
// progress is deleted once the dead letter is confirmed, as a result's is.
func TestDeadLetteredRevokeAllLeavesNoProgress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class jobs.ErrorClass
		setUp func(env *testenv.Env, user string) *clerkapi.Client
	}{
		{"lock refused", jobs.ClassPermanent, func(env *testenv.Env, user string) *clerkapi.Client {
			env.Clerk.Emulator.FailUser(user, 403)
			return env.ClerkClient(t, "")
		}},
		{"exhausted", jobs.ClassExhausted, func(env *testenv.Env, user string) *clerkapi.Client {
			// The lock is made (and saved with the progress); every
			// listing then fails.
			emu := env.Clerk.Emulator
			return env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/sessions") {
					http.Error(w, `{"errors":[{"code":"internal_clerk_error","message":"unavailable"}]}`, http.StatusServiceUnavailable)
					return
				}
				emu.ServeHTTP(w, r)
			}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			emu := env.Clerk.Emulator
			user := emu.CreateUser()
			emu.CreateSessions(user, 5)
			cfg := env.WorkerConfig()
			bulkWorker(&cfg)
			cfg.Retry.DeliveryBudget = 0
			cfg.Topology.MaxDeliver = 1
			env.StartWorkerWith(t, tc.setUp(env, user), cfg)
			r, _, progress := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "dl-" + strings.ReplaceAll(tc.name, " ", "-")}})
			if r.Outcome != jobs.Failed || r.Error == nil || r.Error.Class != tc.class {
				t.Fatalf("result %+v (%+v); want failed, %s", r, r.Error, tc.class)
			}
			if tc.class == jobs.ClassPermanent && len(progress) == 0 {
				t.Fatal("no progress reported: the job saved none to delete")
			}
			kv, err := env.JS.KeyValue(context.Background(), env.Topology.ProgressBucket)
			if err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 5*time.Second, "the dead-lettered job's progress deleted", func() bool {
				keys, err := kv.Keys(context.Background())
				if errors.Is(err, jetstream.ErrNoKeysFound) {
					return true
				}
				t.Logf("progress keys left: %v (%v)", keys, err)
				return false
			})
		})
	}
}

// TestMaxDeliveriesRevokeAllLeavesNoProgress: a revoke_all JetStream gave
// up on (its worker crashing on every delivery) is dead-lettered by the
// backstop, outside the path a delivery's dead letter takes. Its progress
// stayed for the bucket's TTL, listed by the console as in progress; it
// goes once the letter is stored.
func TestMaxDeliveriesRevokeAllLeavesNoProgress(t *testing.T) {
	t.Parallel() // a server of its own
	ctx := context.Background()
	env := testenv.New(t)
	user := env.Clerk.Emulator.CreateUser()
	ack := env.Publish(t, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "crash-loop"}, UserID: user})
	kv, key := putProgress(t, env, ack, `{"job_id":"crash-loop","user_id":"`+user+`","done":{}}`)
	// Play a worker that crashes on every delivery: take the job, never
	// settle it, until JetStream stops delivering it.
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for i := range env.Topology.MaxDeliver + jobs.BackstopMargin {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range b.Messages() {
			n++
		}
		if n != 1 {
			t.Fatalf("delivery %d: got %d jobs, want the revoke_all", i+1, n)
		}
	}
	env.StartWorker(t, bulkWorker)
	testenv.Eventually(t, 40*time.Second, "the job dead-lettered by the backstop", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	if dl := deadLetters(t, env)["crash-loop"]; dl.Error.Class != jobs.ClassMaxDeliveries {
		t.Fatalf("dead letter %+v; want class max_deliveries", dl.Error)
	}
	testenv.Eventually(t, 5*time.Second, "the dead-lettered job's progress deleted", func() bool {
		_, err := kv.Get(ctx, key)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}
