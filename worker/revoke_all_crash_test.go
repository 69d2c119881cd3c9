package worker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// dieAfterRevokes is the emulator's client, over HTTP, for a worker whose
// process dies after its first revokes: past the after-th revoke it closes
// the worker's NATS connection (nothing the worker saves or acks from
// then on reaches the server) and hangs until the job is cancelled.
type dieAfterRevokes struct {
	*clerkapi.Client
	nc    *nats.Conn
	after int64
	n     atomic.Int64
	once  sync.Once
	died  chan struct{}
}

func (c *dieAfterRevokes) RevokeSession(ctx context.Context, id string) (*clerkapi.Session, error) {
	if c.n.Add(1) > c.after {
		c.once.Do(func() { c.nc.Close(); close(c.died) })
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return c.Client.RevokeSession(ctx, id)
}

// TestRevokeAllCrashBeforeTheFirstCheckpointIsRecounted: a worker that
// dies before the job's first checkpoint (CheckpointEvery, a second by
// default) left no progress, so the redelivery started afresh: what the
// first delivery had revoked was no longer active, and the job's summary
// left it out (here 5 of 20 sessions), where the README promises that
// sessions revoked since the last checkpoint are recounted from Clerk. The
// job's start is now saved before its first revoke.
func TestRevokeAllCrashBeforeTheFirstCheckpointIsRecounted(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 20)
	nc, err := nats.Connect(env.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := env.WorkerConfig()
	cfg.Bulk.Concurrency = 1
	cfg.Bulk.CheckpointEvery = time.Hour // no checkpoint before the crash
	cfg.DrainTimeout = 0
	clerk := &dieAfterRevokes{Client: env.ClerkClient(t, ""), nc: nc, after: 5, died: make(chan struct{})}
	w, err := worker.New(nc, clerk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Run by hand: its error (the connection closed) is the point.
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { _ = w.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); <-ran })
	type outcome struct {
		r   jobs.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := requestAll(env, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "dies-early"}, UserID: user}, 60*time.Second, nil)
		done <- outcome{r, err}
	}()
	<-clerk.died
	env.StartWorker(t, bulkWorker)
	o := <-done
	if o.err != nil || o.r.Outcome != jobs.Succeeded {
		t.Fatalf("result %+v, error %v: want success after the redelivery", o.r, o.err)
	}
	var sum jobs.RevokeAllSummary
	testenv.DecodeJSON(t, o.r.Result, &sum)
	if sum.Revoked != len(ids) || !sum.Resumed {
		t.Errorf("summary %+v: want all %d sessions counted as revoked by the job, resumed", sum, len(ids))
	}
	if n := len(emu.ActiveSessionIDs(user)); n != 0 {
		t.Errorf("%d sessions still active", n)
	}
}
