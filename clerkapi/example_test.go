package clerkapi_test

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// Contain an account takeover: lock the user so that nobody can sign in as
// them, then revoke their sessions (none can appear meanwhile). The lock
// ends on its own, so say when.
func ExampleClient_LockUser() {
	srv := emulator.NewServer()
	defer srv.Close()
	user := srv.Emulator.CreateUser()
	sessions := srv.Emulator.CreateSessions(user, 2)
	c, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
	ctx := context.Background()

	u, err := c.LockUser(ctx, user)
	if err != nil {
		panic(err) // ClassOf(err) says whether to retry
	}
	until, locked := u.LockedUntil(time.Now())
	fmt.Println(locked, time.Until(until).Round(time.Hour))

	for _, id := range sessions {
		if _, err := c.RevokeSession(ctx, id); err != nil {
			panic(err)
		}
	}
	// A sign-in is refused while the lock holds.
	_, err = c.CreateSession(ctx, clerkapi.CreateParams{UserID: user})
	var apiErr *clerkapi.Error
	if errors.As(err, &apiErr) {
		fmt.Println(clerkapi.ClassOf(err), apiErr.Code())
	}
	// Output:
	// true 1h0m0s
	// permanent user_locked
}
