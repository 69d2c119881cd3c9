package worker

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestJobsOnTheWireAsAPauseBeginsAreHeld: a pull that ends (a pause, a
// failed pull, a stop) reads what the server sent before it saw the end,
// however slow the way back is. endPull read for a second and no more: a
// job the server had sent and counted delivered that arrived later (a
// loaded machine, a slow link) sat unread in the ended pull's buffer,
// neither held nor handed back, until the ack wait (30 s) gave it back,
// a delivery spent. Here the server's bytes take 1.5 s to arrive.
func TestJobsOnTheWireAsAPauseBeginsAreHeld(t *testing.T) {
	srv := embedded.StartTest(t)
	url, slow := delayingProxy(t, srv.URL, 1500*time.Millisecond)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := newEmulatedWorker(t, nc, func(c *Config) { c.Concurrency = 1 })
	cons, err := w.ensure(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.observeConsumer(cons.CachedInfo())
	topo := w.cfg.Topology
	publish := func() {
		t.Helper()
		if _, err := srv.JetStream.Publish(t.Context(), topo.Subjects.Job(jobs.OpRevoke), []byte(`{"session_id":"sess_x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := srv.JetStream.Consumer(t.Context(), topo.JobsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	delivered := func() int {
		t.Helper()
		info, err := direct.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending
	}

	// The one slot busy with a job the test never releases: the pull asks
	// for the prefetch and waits, and no Next watches its heartbeats.
	publish()
	queue, loop := make(chan *delivery, 4), make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { loop <- w.fetchLoop(ctx, cons, queue) }()
	t.Cleanup(func() { cancel(); <-loop })
	<-queue

	// A job the server sends at once, on the wire for 1.5 s, as the worker
	// pauses.
	slow()
	publish()
	for deadline := time.Now().Add(10 * time.Second); delivered() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server never delivered the second job to the pull")
		}
	}
	openCircuit(t, w)
	for deadline := time.Now().Add(10 * time.Second); w.inflight.len() != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs in flight (held or running) 10 s into the pause, %d delivered: the job on the wire as the pull ended is in no one's hands",
				w.inflight.len(), delivered())
		}
	}
}

// delayingProxy forwards TCP connections to the NATS server at url; once
// slow is called, what the server sends reaches the client delay late, in
// its order (a loaded machine or a long link), while what the client sends
// goes at once.
func delayingProxy(t *testing.T, url string, delay time.Duration) (proxyURL string, slow func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var slowed atomic.Bool
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
			type chunk struct {
				due  time.Time
				data []byte
			}
			chunks := make(chan chunk, 1024)
			go func() {
				defer close(chunks)
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					due := time.Now()
					if slowed.Load() {
						due = due.Add(delay)
					}
					chunks <- chunk{due, append([]byte(nil), buf[:n]...)}
				}
			}()
			go func() {
				for ch := range chunks {
					time.Sleep(time.Until(ch.due))
					if _, err := c.Write(ch.data); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String(), func() { slowed.Store(true) }
}
