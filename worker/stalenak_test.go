package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestStaleCopyIsNotHandedBackAtStop: a create waits in a busy worker's
// prefetch buffer past the ack wait, and JetStream gives it to a second
// worker, which runs it. The busy worker stops and hands its prefetched
// jobs back: the nak of its stale copy names only the consumer and the
// job, so the server applied it to the running delivery and gave the job
// to a third worker, which, finding no record yet, created a second
// session. A prefetched job that may have waited past half the ack wait
// is now left to the ack wait.
func TestStaleCopyIsNotHandedBackAtStop(t *testing.T) {
	env := testenv.New(t)
	defer func() {
		if t.Failed() {
			t.Log(env.Logs.String())
		}
	}()
	releaseCreate := make(chan struct{})
	var creates atomic.Int32
	createRuns := make(chan struct{}, 8)
	h := handlers.HandlerFunc(func(ctx context.Context, a jobs.Args) (handlers.Answer, error) {
		switch a := a.(type) {
		case *jobs.CreateArgs:
			if creates.Add(1) == 1 {
				createRuns <- struct{}{}
				<-releaseCreate // the second worker's run, under way
			}
			return handlers.Answer{Result: map[string]string{"id": "sess_" + a.JobID}}, nil
		case *jobs.GetArgs:
			if a.SessionID == "sess_block" {
				<-ctx.Done() // the busy worker's slot, until it stops
				return handlers.Answer{}, ctx.Err()
			}
		}
		return handlers.Answer{Result: map[string]string{"status": "fine"}}, nil
	})
	busyCfg := env.WorkerConfig()
	busyCfg.DrainTimeout = 0
	busy := busyWithPrefetched(t, env, busyCfg, h, &jobs.CreateArgs{UserID: "user_stale", Common: jobs.Common{JobID: "create-stale"}})

	secondCfg := env.WorkerConfig()
	secondCfg.DrainTimeout = time.Minute
	second := env.StartWorkerWith(t, env.ClerkClient(t, ""), secondCfg, worker.WithHandler(h))
	<-createRuns // after the busy worker's copy's ack wait
	secondStopped := make(chan struct{})
	go func() { second.Stop(t); close(secondStopped) }() // takes no job again; runs the create on
	testenv.Eventually(t, 10*time.Second, "the second worker stops taking jobs", func() bool {
		return countLines(env.Logs.String(), "stopping: draining") == 1
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(h))
	busy.Stop(t)
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // a job handed out again runs in milliseconds
	close(releaseCreate)
	<-secondStopped
	testenv.Eventually(t, 10*time.Second, "the create recorded", func() bool {
		for _, r := range env.Results(t) {
			if r.JobID == "create-stale" {
				return true
			}
		}
		return false
	})
	if n := creates.Load(); n != 1 {
		t.Errorf("one create job ran %d times", n)
	}
}

// countLines counts the log lines holding s.
func countLines(logs, s string) int { return strings.Count(logs, s) }
