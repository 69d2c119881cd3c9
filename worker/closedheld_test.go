package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestConnectionClosedEndsRunWhileTheCircuitIsOpen: the NATS connection
// closed for good ends Run (exit 1, so that a supervisor restarts the
// process) also while the worker takes no job: with the circuit open, the
// fetch loop waited for it to close and never looked at the connection,
// and Run never returned.
func TestConnectionClosedEndsRunWhileTheCircuitIsOpen(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	emu.SetFaults(emulator.Faults{RejectKey: true})
	nc, err := nats.Connect(env.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(nc, env.ClerkClient(t, ""), env.WorkerConfig())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	testenv.Eventually(t, 10*time.Second, "ready", func() bool { return w.Ready() == nil })
	env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	testenv.Eventually(t, 10*time.Second, "circuit open", func() bool { return w.Status().CircuitOpen })
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, worker.ErrConnectionClosed) {
			t.Errorf("Run = %v, want ErrConnectionClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the connection closed while the circuit was open")
	}
}
