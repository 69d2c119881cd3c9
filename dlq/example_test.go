package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// After an incident: list the dead letters that a replay can cure, replay
// them once Clerk is healthy, and check what became of their jobs.
// (clerkjobstest stands in for the deployment: NATS, a worker, Clerk.)
func Example() {
	env, err := clerkjobstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	emu := env.Clerk.Emulator
	sessions := emu.CreateSessions(emu.CreateUser(), 3)

	// The incident: Clerk fails, and the revokes are dead-lettered.
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	for i, id := range sessions {
		_, err := env.Client.RevokeSession(ctx, id, &clerkjobs.RevokeOptions{JobID: fmt.Sprintf("incident-9-%d", i)})
		var failed *clerkjobs.JobError
		if !errors.As(err, &failed) {
			log.Fatalf("want a failure, got %v", err)
		}
	}
	emu.SetFaults(emulator.Faults{}) // Clerk is back

	q, err := dlq.Open(ctx, env.JetStream, env.Topology)
	if err != nil {
		log.Fatal(err)
	}
	entries, err := q.List(ctx, dlq.Filter{Classes: []jobs.ErrorClass{jobs.ClassExhausted, jobs.ClassMaxDeliveries}})
	if err != nil {
		log.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.DeadLetter.JobID+" "+string(e.DeadLetter.Error.Class))
	}
	slices.Sort(ids)
	fmt.Println(ids)

	rep, err := q.Replay(ctx, dlq.Seqs(entries), dlq.WithRate(20))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("replayed", rep.Replayed, "failed", rep.Failed)
	for i := range sessions {
		r, err := env.Client.Wait(ctx, fmt.Sprintf("incident-9-%d", i))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.JobID, r.Outcome)
	}
	// Output:
	// [incident-9-0 exhausted incident-9-1 exhausted incident-9-2 exhausted]
	// replayed 3 failed 0
	// incident-9-0 succeeded
	// incident-9-1 succeeded
	// incident-9-2 succeeded
}
