package natscluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/natscluster"
)

func TestDebugRestart(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	c := natscluster.Start(ctx, t, natscluster.WithNodes(3))
	nc := c.Connect(t,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { t.Logf("%s disconnected: %v", time.Now().Format("15:04:05.000"), err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			t.Logf("%s reconnected to %s", time.Now().Format("15:04:05.000"), nc.ConnectedUrl())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { t.Logf("async err: %v", err) }),
	)
	js := newJS(t, nc)
	for _, name := range []string{"A", "B", "C", "D"} {
		createStream(ctx, t, js, name, 3)
		publishRange(ctx, t, js, name, 0, 10)
	}
	for _, n := range c.Nodes() {
		if err := n.Stop(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s all stopped, status %v servers %v", time.Now().Format("15:04:05.000"), nc.Status(), nc.Servers())
	for _, n := range c.Nodes() {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s all started", time.Now().Format("15:04:05.000"))
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s healthy", time.Now().Format("15:04:05.000"))
	for _, name := range []string{"A", "B", "C", "D"} {
		for i := 0; i < 15; i++ {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			s, err := js.Stream(actx, name)
			var info *jetstream.StreamInfo
			if err == nil {
				info, err = s.Info(actx)
			}
			cancel()
			if err == nil {
				t.Logf("%s %s: leader %s msgs %d", time.Now().Format("15:04:05.000"), name, info.Cluster.Leader, info.State.Msgs)
				break
			}
			t.Logf("%s %s: status %v url %q: %v", time.Now().Format("15:04:05.000"), name, nc.Status(), nc.ConnectedUrl(), err)
		}
	}
	_ = jetstream.FileStorage
}
