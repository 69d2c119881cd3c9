package worker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestJobDoneAsShutdownCutsItIsRecorded: a job whose handler finished as
// the drain timeout passed (its Clerk call answered as the worker's
// context ended) had its result published on that ended context: the
// publish failed at once, the outcome was parked ("could not record the
// job's outcome", though JetStream was fine) and, at the shutdown's end,
// dead-lettered as permanent ("the worker stopped before its result could
// be stored"), a create's session made and its answer lost. Its result is
// now stored, and the job acked.
func TestJobDoneAsShutdownCutsItIsRecorded(t *testing.T) {
	env := testenv.New(t)
	started := make(chan struct{}, 1)
	h := handlers.HandlerFunc(func(ctx context.Context, _ jobs.Args) (handlers.Answer, error) {
		started <- struct{}{}
		<-ctx.Done() // done as the shutdown cuts it
		return handlers.Answer{Result: map[string]string{"id": "sess_made"}}, nil
	})
	cfg := env.WorkerConfig()
	cfg.DrainTimeout = 0
	w := env.StartWorkerWith(t, env.ClerkClient(t, ""), cfg, worker.WithHandler(h))
	env.Publish(t, &jobs.CreateArgs{UserID: "user_cut", Common: jobs.Common{JobID: "done-cut"}})
	<-started
	w.Stop(t)
	if dl, ok := deadLetters(t, env)["done-cut"]; ok {
		t.Errorf("the finished job was dead-lettered: %+v", dl.Error)
	}
	res := env.Results(t)
	if len(res) != 1 || res[0].JobID != "done-cut" || res[0].Outcome != jobs.Succeeded {
		t.Errorf("results %+v; want the job's success", res)
	}
	info, err := env.JS.Consumer(context.Background(), env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().NumAckPending; n != 0 {
		t.Errorf("%d jobs left unacked; want the job acked", n)
	}
	if logs := env.Logs.String(); strings.Contains(logs, "could not record the job's outcome") {
		t.Errorf("the worker said it could not record an outcome JetStream was never refused:\n%s", logs)
	}
}
