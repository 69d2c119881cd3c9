package worker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestBacklogLooksOnlyForCreatesAndRefreshes: jobs queued before their
// consumer was created are delivered as first deliveries that may have
// run before (a consumer deleted and created again), and a create or a
// refresh among them is looked for before it runs. Any other job run
// again does no harm, and a backlog of them must not pay a read of the
// results stream's leader a job.
func TestBacklogLooksOnlyForCreatesAndRefreshes(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	const revokes, creates = 50, 2
	ids := emu.CreateSessions(user, revokes)
	for i, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id, Common: jobs.Common{JobID: fmt.Sprintf("revoke-%d", i)}})
	}
	for i := range creates {
		env.Publish(t, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: fmt.Sprintf("create-%d", i)}})
	}
	// The consumer the worker creates comes after every job.
	if err := env.JS.DeleteConsumer(context.Background(), env.Topology.JobsStream, env.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	sub, err := env.NC.Subscribe("$JS.API.STREAM.MSG.GET."+env.Topology.ResultsStream, func(*nats.Msg) { reads.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	env.StartWorker(t)
	testenv.Eventually(t, 30*time.Second, "every job done", func() bool {
		return env.StreamCount(t, env.Topology.JobsStream) == 0 && len(env.Results(t)) == revokes+creates
	})
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != creates {
		t.Errorf("%d reads of the results stream for %d creates and %d revokes; want one a create", n, creates, revokes)
	}
}
