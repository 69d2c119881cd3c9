package clerkjobs_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// stallingProxy forwards TCP connections to the NATS server at url until
// stall is called; from then on nothing the server sends reaches the
// client (a server or network that hangs with the connection open).
func stallingProxy(t *testing.T, url string) (proxyURL string, stall func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var stalled atomic.Bool
	target := strings.TrimPrefix(url, "nats://")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
			go func() { _, _ = io.Copy(s, c) }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					if stalled.Load() {
						continue // swallowed
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String(), func() { stalled.Store(true) }
}

// TestCancelWhileTheServerHangs: Request made its reply inbox with a
// flush bounded by the publish timeout only, deaf to ctx: on a NATS
// server that hung with the connection open, a caller that cancelled
// waited the whole publish timeout (10 s by default) for Request to
// return. It returns once ctx is cancelled.
func TestCancelWhileTheServerHangs(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	url, stall := stallingProxy(t, env.URL)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := clerkjobs.NewClient(nc, clerkjobs.WithTopology(env.Topology), clerkjobs.WithPublishTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stall()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.Request(ctx, &jobs.RevokeArgs{SessionID: "sess_1"})
	if took := time.Since(start); took > 3*time.Second || !errors.Is(err, context.Canceled) {
		t.Fatalf("Request cancelled after 300ms returned after %s: %v; want it to return at once with the cancellation", took.Round(time.Millisecond), err)
	}
}
