package clerkjobs_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// system stands for the deployment a service talks to: NATS with
// JetStream, a worker, and (here) the Clerk emulator in place of Clerk,
// with one user and their sessions. A service has its own *nats.Conn where
// this uses env.Conn.
func system(sessions int) (env *clerkjobstest.Env, user string, ids []string) {
	env, err := clerkjobstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	user = env.Clerk.Emulator.CreateUser()
	return env, user, env.Clerk.Emulator.CreateSessions(user, sessions)
}

// A session token in one call. The Token prints as [REDACTED]: only JWT()
// gives the token, for the request that needs it.
func ExampleClient_SessionToken() {
	env, _, sessions := system(1)
	defer env.Close()

	c, err := clerkjobs.NewClient(env.Conn) // the service's connection
	if err != nil {
		log.Fatal(err)
	}
	tok, err := c.SessionToken(context.Background(), sessions[0], nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token:", tok)
	fmt.Println("JWT parts:", len(strings.Split(tok.JWT(), ".")))
	// Output:
	// token: [REDACTED]
	// JWT parts: 3
}

// Revoke a session and know it is revoked. A job id derived from the
// reason makes a retry after a crash the same job, not a second one.
func ExampleClient_RevokeSession() {
	env, _, sessions := system(1)
	defer env.Close()
	c, err := clerkjobs.NewClient(env.Conn)
	if err != nil {
		log.Fatal(err)
	}

	rev, err := c.RevokeSession(context.Background(), sessions[0], &clerkjobs.RevokeOptions{JobID: "offboard-" + sessions[0]})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rev.Session.Status)
	// Output:
	// revoked
}

// Revoke every session of a user but one, following the progress.
func ExampleClient_RevokeAll() {
	env, user, sessions := system(50)
	defer env.Close()
	c, err := clerkjobs.NewClient(env.Conn)
	if err != nil {
		log.Fatal(err)
	}
	// A large revoke_all takes a while at Clerk's rate limit: give it a
	// deadline of its own.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	updates := 0
	sum, err := c.RevokeAll(ctx, user, &clerkjobs.RevokeAllOptions{JobID: "takeover-" + user, Except: sessions[:1]},
		func(p jobs.Progress) { updates++ /* p.Done of p.Total sessions handled */ })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("revoked %d, kept %d, failed %d\n", sum.Revoked, sum.Excepted, sum.Failed)
	// Output:
	// revoked 49, kept 1, failed 0
}

// An account takeover: lock the user first, so no session can appear
// while the job runs, then revoke every session. The lock ends on its own.
func ExampleClient_RevokeAll_lockUser() {
	env, user, _ := system(20)
	defer env.Close()
	c, err := clerkjobs.NewClient(env.Conn)
	if err != nil {
		log.Fatal(err)
	}
	sum, err := c.RevokeAll(context.Background(), user, &clerkjobs.RevokeAllOptions{LockUser: true}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("revoked %d, locked %v, remaining %d, lock ends on its own: %v\n", sum.Revoked, sum.Locked, sum.Remaining, sum.LockedUntil != nil)
	// Output:
	// revoked 20, locked true, remaining 0, lock ends on its own: true
}

// A job that fails is a *JobError: its class says what to do about it.
func Example_failure() {
	env, _, sessions := system(1)
	defer env.Close()
	env.Clerk.Emulator.FailSession(sessions[0], 404) // Clerk will not find it
	c, err := clerkjobs.NewClient(env.Conn)
	if err != nil {
		log.Fatal(err)
	}

	_, err = c.RevokeSession(context.Background(), sessions[0], nil)
	var failed *clerkjobs.JobError
	switch {
	case errors.As(err, &failed) && failed.Temporary():
		fmt.Println("Clerk was unavailable: replay it later (publish dlq replay)", failed.DeadLetterSeq)
	case errors.As(err, &failed):
		fmt.Printf("refused for good (%s): HTTP %d %s\n", failed.Class, failed.HTTPStatus, failed.ClerkCode)
	case errors.Is(err, clerkjobs.ErrNoResult):
		fmt.Println("accepted, no answer yet: Wait for it later")
	case errors.Is(err, jobs.ErrInvalid):
		fmt.Println("not a valid job:", err)
	case err != nil:
		fmt.Println("NATS is unavailable:", errors.Is(err, clerkjobs.ErrUnavailable))
	}
	// Output:
	// refused for good (permanent): HTTP 404 resource_not_found
}

// A service that restarted finds out what became of the jobs it had
// submitted, by their ids.
func ExampleClient_Wait() {
	env, _, sessions := system(1)
	defer env.Close()
	c, err := clerkjobs.NewClient(env.Conn)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "offboard-42"}, SessionID: sessions[0]}); err != nil {
		log.Fatal(err)
	}

	// ... the process restarts ...
	res, err := c.Wait(ctx, "offboard-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.JobID, res.Outcome)
	// Output:
	// offboard-42 succeeded
}
