package clerkjobstest_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
)

// A service tests its own code against the real system: NATS with
// JetStream, a worker and the Clerk emulator, in the test's process. In a
// test, clerkjobstest.New(t) does what Start does here and cleans up by
// itself.
func Example() {
	env, err := clerkjobstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	sessions := emu.CreateSessions(user, 3)
	last := emu.CreateSessions(user, 1)[0]

	// The code under test revokes every session of the user but the last.
	if _, err := env.Client.RevokeAll(ctx, user, &clerkjobs.RevokeAllOptions{Except: []string{last}}, nil); err != nil {
		log.Fatal(err)
	}
	for _, id := range sessions {
		s, _ := emu.Session(id)
		fmt.Println(s.Status)
	}

	// Faults: Clerk failing for longer than the worker's retries.
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	_, err = env.Client.RevokeSession(ctx, last, nil)
	var failed *clerkjobs.JobError
	if errors.As(err, &failed) {
		fmt.Println(failed.Class, "- replay later:", failed.Temporary())
	}
	// Output:
	// revoked
	// revoked
	// revoked
	// exhausted - replay later: true
}
