package worker_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// A worker of your own: worker.New on a NATS connection and a Clerk client,
// a handler that records who revoked what before the standard handlers do
// the work, and Run until the context ends. (clerkjobstest stands in for
// NATS and Clerk.)
func ExampleNew() {
	env, err := clerkjobstest.Start(clerkjobstest.WithoutWorker())
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	session := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]

	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(env.Clerk.URL))
	if err != nil {
		log.Fatal(err)
	}
	cfg := worker.DefaultConfig()
	cfg.Topology = env.Topology
	// Clerk's limit (1000 per 10 s by default) is the key's: every worker
	// using the key shares one budget, named by the key's fingerprint.
	cfg.RateKey = worker.KeyFingerprint(emulator.DefaultSecretKey)
	var w *worker.Worker
	audit := handlers.HandlerFunc(func(ctx context.Context, a jobs.Args) (handlers.Answer, error) {
		fmt.Println("audit:", a.Op(), a.CommonFields().JobID)
		// w.Clerk is rate limited and behind the worker's circuit breaker.
		return handlers.Sessions{Clerk: w.Clerk()}.Handle(ctx, a)
	})
	w, err = worker.New(env.Conn, clerk, cfg, worker.WithHandler(audit))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }() // until stop: then it drains and returns
	for w.Ready() != nil {
		time.Sleep(10 * time.Millisecond)
	}

	rev, err := env.Client.RevokeSession(context.Background(), session, &clerkjobs.RevokeOptions{JobID: "audited-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rev.Session.Status)
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// audit: revoke audited-1
	// revoked
}
