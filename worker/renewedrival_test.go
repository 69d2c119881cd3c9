package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestResultOfRenewedConsumerWinsOverLetter: a job runs on a worker whose
// consumer is deleted and created again meanwhile; the new consumer
// delivers it anew, as a first delivery, to a second worker. The first
// dead-letters it (looking for a result before and after its letter: none
// yet), then the second succeeds. Its result, a first delivery's of a job
// younger than half the ack wait, looked for no letter: the job kept two
// records. A first delivery of a job stored before its consumer was
// created may have had a rival, as a redelivery may: its result now
// removes the letter.
func TestResultOfRenewedConsumerWinsOverLetter(t *testing.T) {
	env := testenv.New(t)
	defer func() {
		if t.Failed() {
			t.Log(env.Logs.String())
		}
	}()
	cfg := env.WorkerConfig()
	cfg.Topology.AckWait = time.Minute // the job stays young: no rival by its age
	cfg.DrainTimeout = time.Minute

	aStarted, aGo := make(chan struct{}, 1), make(chan struct{})
	failing := handlers.HandlerFunc(func(context.Context, jobs.Args) (handlers.Answer, error) {
		select {
		case aStarted <- struct{}{}:
		default:
		}
		<-aGo
		return handlers.Answer{}, fmt.Errorf("refused: %w", clerkapi.ErrInvalidInput)
	})
	first := env.StartWorkerWith(t, env.ClerkClient(t, ""), cfg, worker.WithHandler(failing))
	env.Publish(t, &jobs.GetArgs{SessionID: "sess_rival", Common: jobs.Common{JobID: "renewed-rival"}})
	<-aStarted
	stopped := make(chan struct{})
	go func() { first.Stop(t); close(stopped) }() // takes no job again; its job still runs
	testenv.Eventually(t, 10*time.Second, "the first worker stops taking jobs", func() bool {
		return strings.Contains(env.Logs.String(), "stopping: draining")
	})

	ctx := context.Background()
	if err := env.JS.DeleteConsumer(ctx, cfg.Topology.JobsStream, cfg.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	bStarted, bGo := make(chan struct{}, 1), make(chan struct{})
	succeeding := handlers.HandlerFunc(func(context.Context, jobs.Args) (handlers.Answer, error) {
		select {
		case bStarted <- struct{}{}:
		default:
		}
		<-bGo
		return handlers.Answer{Result: map[string]string{"status": "fine"}}, nil
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), cfg, worker.WithHandler(succeeding)) // creates the consumer again
	<-bStarted

	close(aGo)
	<-stopped
	if _, ok := deadLetters(t, env)["renewed-rival"]; !ok {
		t.Fatalf("the first worker's dead letter is not stored")
	}
	close(bGo)
	testenv.Eventually(t, 10*time.Second, "the result stored", func() bool { return len(env.Results(t)) == 1 })
	// The second worker's settlement, after its result and its look for
	// a letter (the first worker's ack reached its delivery already).
	testenv.Eventually(t, 10*time.Second, "the second worker's job settled", func() bool {
		for _, l := range strings.Split(env.Logs.String(), "\n") {
			if strings.Contains(l, `"job_id":"renewed-rival"`) && strings.Contains(l, `"outcome":"succeeded"`) {
				return true
			}
		}
		return false
	})
	if dl, ok := deadLetters(t, env)["renewed-rival"]; ok {
		t.Errorf("the job has a result and a dead letter (%s): want the result alone", dl.Error.Message)
	}
}
