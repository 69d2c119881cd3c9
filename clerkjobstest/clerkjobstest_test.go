package clerkjobstest_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

func TestNew(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithClient(clerkjobs.WithTenant("svc_a")))
	if env.Worker == nil || env.Worker.Ready() != nil {
		t.Fatal("New returned without a ready worker")
	}
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rev, err := env.Client.RevokeSession(ctx, id, nil)
	if err != nil || rev.Session.Status != clerkapi.StatusRevoked {
		t.Fatalf("RevokeSession = %+v, %v", rev, err)
	}
	if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
		t.Errorf("the emulator says %s", s.Status)
	}
	if n := len(emu.Calls()); n == 0 {
		t.Error("the worker made no call to the emulator")
	}
	// Another worker shares the jobs; stopping one leaves the other.
	second := env.StartWorker(t)
	second.Stop(t)
	second.Stop(t) // harmless
	if _, err := env.Client.RevokeSession(ctx, emu.CreateSessions(emu.CreateUser(), 1)[0], nil); err != nil {
		t.Errorf("after stopping the second worker: %v", err)
	}
}

// WithoutWorker, then a worker with a handler of the test's own.
func TestWithoutWorkerAndAHandler(t *testing.T) {
	var calls atomic.Int32
	h := handlers.HandlerFunc(func(_ context.Context, a jobs.Args) (handlers.Answer, error) {
		calls.Add(1)
		return handlers.Answer{Result: json.RawMessage(`{"object":"session","id":"` + a.(*jobs.RevokeArgs).SessionID + `","status":"revoked"}`)}, nil
	})
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker(), clerkjobstest.WithWorkerOptions(worker.WithHandler(h)),
		clerkjobstest.WithWorkerConfig(func(c *worker.Config) { c.Concurrency = 2 }))
	if env.Worker != nil {
		t.Fatal("WithoutWorker started a worker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.Client.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "j1"}, SessionID: "sess_1"}); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	if _, err := env.Client.Wait(short, "j1"); !errors.Is(err, clerkjobs.ErrNoResult) {
		t.Fatalf("Wait without a worker = %v; want ErrNoResult", err)
	}
	w := env.StartWorker(t)
	if got := w.Status().Concurrency; got != 2 {
		t.Errorf("worker concurrency %d; want WithWorkerConfig's 2", got)
	}
	r, err := env.Client.Wait(ctx, "j1")
	if err != nil || r.Outcome != jobs.Succeeded || calls.Load() != 1 {
		t.Fatalf("Wait = %+v, %v after %d handler calls", r, err, calls.Load())
	}
}

func TestStartAndClose(t *testing.T) {
	env, err := clerkjobstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	conn := env.Conn
	env.Close()
	env.Close() // harmless
	if !conn.IsClosed() || env.Worker.Ready() == nil {
		t.Error("Close left the connection open or the worker ready")
	}
}
