package clerkapi_test

import (
	"context"
	"fmt"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// Revoke a session and decide what to do about failures with ClassOf. The
// Clerk here is the emulator; in production, drop WithBaseURL and pass the
// real secret key.
func Example() {
	srv := emulator.NewServer()
	defer srv.Close()
	sessions := srv.Emulator.CreateSessions("user_2example", 2)

	c, err := clerkapi.New(
		clerkapi.WithBaseURL(srv.URL),
		clerkapi.WithSecretKey(emulator.DefaultSecretKey),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	s, err := c.RevokeSession(ctx, sessions[0])
	fmt.Println(s.Status, err)

	// Clerk is down for this session: retry later.
	srv.Emulator.FailSession(sessions[1], 503)
	_, err = c.RevokeSession(ctx, sessions[1])
	fmt.Println(clerkapi.ClassOf(err), clerkapi.RetryAfterOf(err))

	// No such session: retrying cannot help.
	_, err = c.RevokeSession(ctx, "sess_doesNotExist")
	fmt.Println(clerkapi.ClassOf(err))

	// A malformed id is refused before anything is sent.
	_, err = c.RevokeSession(ctx, "../users")
	fmt.Println(clerkapi.ClassOf(err), len(srv.Emulator.Calls()))
	// Output:
	// revoked <nil>
	// retryable 1s
	// permanent
	// permanent 3
}

func ExampleClassOf() {
	srv := emulator.NewServer(emulator.WithFaults(emulator.Faults{RejectKey: true}))
	defer srv.Close()
	c, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))

	_, err := c.GetSession(context.Background(), "sess_2example")
	switch clerkapi.ClassOf(err) {
	case clerkapi.Retryable:
		fmt.Println("retry with backoff")
	case clerkapi.Permanent:
		fmt.Println("give up on this job")
	case clerkapi.Systemic:
		fmt.Println("stop all work and alert: the secret key is rejected")
	}
	// Output:
	// stop all work and alert: the secret key is rejected
}
