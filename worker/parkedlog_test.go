package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestShutdownDoesNotSayItKeepsTheOutcomes: creates wait for JetStream
// to store their results and the worker stops; the dead-letter stream
// refuses their letters too, so they are naked. Each refused letter was
// logged as the first outcome waiting, "keeping the job and retrying", a
// line a job the worker was about to hand back. Its nak's line says why,
// and that the create may be carried out twice.
func TestShutdownDoesNotSayItKeepsTheOutcomes(t *testing.T) {
	env := testenv.New(t)
	user := env.Clerk.Emulator.CreateUser()
	ctx := context.Background()
	w := env.StartWorker(t, func(c *worker.Config) { c.DrainTimeout = 500 * time.Millisecond })
	filter := env.Topology.Subjects.ResultFilter()
	if _, err := env.JS.Publish(ctx, filter[:len(filter)-1]+"filler", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	testenv.FillStream(t, env.JS, env.Topology.ResultsStream)
	if _, err := env.JS.Publish(ctx, "sessions.dlq.filler", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	testenv.FillStream(t, env.JS, env.Topology.DeadLetterStream)
	const n = 3
	for i := range n {
		env.Publish(t, &jobs.CreateArgs{UserID: user, Common: jobs.Common{JobID: fmt.Sprintf("create-%d", i)}})
	}
	testenv.Eventually(t, 10*time.Second, "the creates' outcomes wait", func() bool {
		err := w.Worker.Ready()
		return err != nil && strings.Contains(err.Error(), fmt.Sprintf("%d job outcomes wait", n))
	})
	w.Stop(t)
	if c := strings.Count(env.Logs.String(), "keeping the job and retrying"); c != 1 {
		t.Errorf("%d lines say the outcomes are kept; want the one when the first waited:\n%s", c, env.Logs.String())
	}
	if c := strings.Count(env.Logs.String(), "may be carried out twice"); c != n {
		t.Errorf("%d jobs handed back at shutdown saying they may be carried out twice; want %d", c, n)
	}
}
