package clerkjobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/netproxy"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestCancelWhileTheServerHangs: Request made its reply inbox with a
// flush bounded by the publish timeout only, deaf to ctx: on a NATS
// server that hung with the connection open, a caller that cancelled
// waited the whole publish timeout (10 s by default) for Request to
// return. It returns once ctx is cancelled.
func TestCancelWhileTheServerHangs(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	px := netproxy.Start(t, env.URL)
	nc, err := nats.Connect(px.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := clerkjobs.NewClient(nc, clerkjobs.WithTopology(env.Topology), clerkjobs.WithPublishTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	px.Swallow() // the server hangs with the connection open
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.Request(ctx, &jobs.RevokeArgs{SessionID: "sess_1"})
	if took := time.Since(start); took > 3*time.Second || !errors.Is(err, context.Canceled) {
		t.Fatalf("Request cancelled after 300ms returned after %s: %v; want it to return at once with the cancellation", took.Round(time.Millisecond), err)
	}
}
