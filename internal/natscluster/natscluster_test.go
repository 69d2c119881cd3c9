package natscluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/natscluster"
)

// testContext bounds a test; the whole suite should take a few minutes.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func newJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// retry runs fn with a short timeout per attempt until it succeeds or ctx
// ends. Every JetStream API call is a core NATS request, delivered at most
// once: while routes are (re)established or leaders are elected, a request
// or its reply can vanish without an error, and a call using the test's
// whole context would then wait for all of it.
func retry(ctx context.Context, t *testing.T, what string, fn func(ctx context.Context) error) {
	t.Helper()
	var err error
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = fn(actx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// createStream creates an R<replicas> file stream on subjects name.>.
// Creating is idempotent (same config), so a retry after a lost reply is
// harmless.
func createStream(ctx context.Context, t *testing.T, js jetstream.JetStream, name string, replicas int) jetstream.Stream {
	t.Helper()
	var s jetstream.Stream
	retry(ctx, t, "create stream "+name, func(ctx context.Context) (err error) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     name,
			Subjects: []string{name + ".>"},
			Storage:  jetstream.FileStorage,
			Replicas: replicas,
		})
		return err
	})
	return s
}

// publishRange publishes messages from..to-1 to stream name, the payload
// being the message number. Each message carries a Nats-Msg-Id, so a retry
// after a lost ack (timeout during a failover) can't store it twice: the
// stream then holds each number exactly once. It retries each message until
// ctx ends and returns how many attempts failed.
func publishRange(ctx context.Context, t *testing.T, js jetstream.JetStream, name string, from, to int) (failed int) {
	t.Helper()
	var lastErr error
	for i := from; i < to; i++ {
		subj := name + ".msg"
		id := name + "-" + strconv.Itoa(i)
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(pctx, subj, []byte(strconv.Itoa(i)), jetstream.WithMsgID(id))
			cancel()
			if err == nil {
				break
			}
			failed++
			lastErr = err
			if ctx.Err() != nil {
				t.Fatalf("publish %s #%d: gave up after %d failed attempts, last error: %v", name, i, failed, lastErr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if failed > 0 {
		t.Logf("publish %s [%d,%d): %d attempts failed and were retried (last error: %v)", name, from, to, failed, lastErr)
	}
	return failed
}

// verifyStream checks that stream name holds exactly the messages 0..want-1,
// once each, in the leader's view and on every node's own replica, and that
// the leader sees every replica current.
func verifyStream(ctx context.Context, t *testing.T, c *natscluster.Cluster, js jetstream.JetStream, name string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	replicas := len(c.Nodes())
	wantSeq := uint64(want)

	// 1. The leader's view: counts, and every replica current, no lag.
	var info *jetstream.StreamInfo
	why := "no answer yet"
	for {
		// Per-request timeouts: a request that gets no answer (a stream
		// without a leader, a request lost on a dying connection) must not
		// use up the whole budget.
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := js.Stream(rctx, name)
		if err == nil {
			info, err = s.Info(rctx)
		}
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			// keep the previous reason
		case err != nil:
			why = err.Error()
		case info.State.Msgs != wantSeq || info.State.LastSeq != wantSeq || info.State.FirstSeq != 1:
			why = fmt.Sprintf("state %+v", info.State)
		case replicas > 1 && (info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != replicas-1):
			why = fmt.Sprintf("cluster %+v", info.Cluster)
		default:
			why = ""
			if info.Cluster != nil {
				for _, r := range info.Cluster.Replicas {
					if !r.Current || r.Offline || r.Lag != 0 {
						why = fmt.Sprintf("replica %s not current: %+v", r.Name, *r)
					}
				}
			}
		}
		if why == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s: want %d messages on %d current replicas: %s", name, want, replicas, why)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// 2. Every node's own copy, read from its monitoring endpoint.
	for _, n := range c.Nodes() {
		var last string
		for {
			st, err := n.StreamState(ctx, name)
			if err == nil && st.Messages == wantSeq && st.LastSeq == wantSeq && st.FirstSeq == 1 {
				break
			}
			if ctx.Err() == nil {
				last = fmt.Sprintf("state %+v, err %v", st, err)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("stream %s on node %s: want %d messages, have %s", name, n.Name(), want, last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}

	// 3. The content: each number 0..want-1 exactly once, nothing else.
	var cons jetstream.Consumer
	retry(ctx, t, "ordered consumer on "+name, func(ctx context.Context) (err error) {
		cons, err = js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
		return err
	})
	// A fetch can fail for a while (no responders: the new consumer's
	// interest has not reached every node yet); the ordered consumer then
	// resumes after the last message it delivered, so just try again.
	seen := make([]bool, want)
	var lastErr error
	for got := 0; got < want; {
		if ctx.Err() != nil {
			t.Fatalf("stream %s: read %d of %d messages (last error: %v)", name, got, want, lastErr)
		}
		// Ask for no more than is left: Fetch returns when the batch is
		// full or after FetchMaxWait.
		batch, err := cons.Fetch(min(500, want-got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for msg := range batch.Messages() {
			i, err := strconv.Atoi(string(msg.Data()))
			if err != nil || i < 0 || i >= want || seen[i] {
				t.Fatalf("stream %s: unexpected or duplicate message %q", name, msg.Data())
			}
			seen[i] = true
			got++
		}
		if err := batch.Error(); err != nil {
			lastErr = err
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// streamLeader returns the node leading stream name.
func streamLeader(ctx context.Context, t *testing.T, c *natscluster.Cluster, js jetstream.JetStream, name string) *natscluster.Node {
	t.Helper()
	var info *jetstream.StreamInfo
	retry(ctx, t, "info of stream "+name, func(ctx context.Context) error {
		s, err := js.Stream(ctx, name)
		if err == nil {
			info, err = s.Info(ctx)
		}
		return err
	})
	if info.Cluster == nil || c.NodeByName(info.Cluster.Leader) == nil {
		t.Fatalf("stream %s: no known leader: %+v", name, info.Cluster)
	}
	return c.NodeByName(info.Cluster.Leader)
}

// othersConn connects to every node but skip, and only to them: the client
// ignores the URLs that servers advertise, so it can't wander to skip.
func othersConn(t *testing.T, c *natscluster.Cluster, skip *natscluster.Node) *nats.Conn {
	t.Helper()
	var urls string
	for _, n := range c.Nodes() {
		if n != skip {
			if urls != "" {
				urls += ","
			}
			urls += n.URL()
		}
	}
	nc, err := nats.Connect(urls, nats.IgnoreDiscoveredServers(), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.PingInterval(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestSingleNode(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 4*time.Minute)
	c := natscluster.Start(ctx, t)
	if got := len(c.URLs()); got != 1 {
		t.Fatalf("URLs: got %d, want 1", got)
	}
	nc := c.Connect(t)
	js := newJS(t, nc)
	s := createStream(ctx, t, js, "SINGLE", 1)
	publishRange(ctx, t, js, "SINGLE", 0, 100)

	var cons jetstream.Consumer
	retry(ctx, t, "create consumer", func(ctx context.Context) (err error) {
		cons, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
	got := 0
	for got < 100 {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			if want := strconv.Itoa(got); string(msg.Data()) != want {
				t.Fatalf("message %d: got %q, want %q", got, msg.Data(), want)
			}
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := msg.DoubleAck(actx) // not retried: a second ack may get no reply
			cancel()
			if err != nil {
				t.Fatalf("ack message %d: %v", got, err)
			}
			got++
			n++
		}
		if n == 0 {
			t.Fatalf("consumed %d of 100, then nothing (%v)", got, batch.Error())
		}
	}
	var ci *jetstream.ConsumerInfo
	retry(ctx, t, "consumer info", func(ctx context.Context) (err error) {
		ci, err = cons.Info(ctx)
		return err
	})
	if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.AckFloor.Stream != 100 {
		t.Fatalf("consumer after 100 acks: pending %d, ack pending %d, ack floor %d", ci.NumPending, ci.NumAckPending, ci.AckFloor.Stream)
	}

	// A restart keeps the URL (fixed host port) and the data, and the
	// client reconnects by itself.
	node := c.Node(0)
	if err := node.Stop(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	publishRange(ctx, t, js, "SINGLE", 100, 101)
	verifyStream(ctx, t, c, js, "SINGLE", 101)
	if r := nc.Stats().Reconnects; r == 0 {
		t.Fatalf("client did not reconnect after the restart")
	}
	if err := node.Partition(ctx); !errors.Is(err, natscluster.ErrSingleNode) {
		t.Fatalf("Partition of a single node: got %v, want ErrSingleNode", err)
	}
}

// TestThreeNodes runs the failure scenarios one after another on one
// three-node cluster, each with its own R3 stream. Each leaves the cluster
// healthy for the next.
func TestThreeNodes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 8*time.Minute)
	c := natscluster.Start(ctx, t, natscluster.WithNodes(3))
	if got := len(c.URLs()); got != 3 {
		t.Fatalf("URLs: got %d, want 3", got)
	}
	nc := c.Connect(t)
	js := newJS(t, nc)

	t.Run("KillConnectedNode", func(t *testing.T) {
		const name = "KILL"
		createStream(ctx, t, js, name, 3)
		publishRange(ctx, t, js, name, 0, 1000)

		victim := c.NodeByName(nc.ConnectedServerName())
		if victim == nil {
			t.Fatalf("connected to unknown server %q", nc.ConnectedServerName())
		}
		t.Logf("killing %s, the node the client is connected to", victim.Name())
		if err := victim.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		publishRange(ctx, t, js, name, 1000, 1500)
		if now := nc.ConnectedServerName(); now == victim.Name() || now == "" {
			t.Fatalf("client still on %q after %s was killed", now, victim.Name())
		}
		if err := victim.Start(ctx); err != nil {
			t.Fatal(err)
		}
		publishRange(ctx, t, js, name, 1500, 2000)
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		verifyStream(ctx, t, c, js, name, 2000)
	})

	t.Run("PartitionAndHeal", func(t *testing.T) {
		const name = "PART"
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		createStream(ctx, t, js, name, 3)
		publishRange(ctx, t, js, name, 0, 200)

		// Cut off the stream's leader: the majority must elect a new one.
		victim := streamLeader(ctx, t, c, js, name)
		jsOthers := newJS(t, othersConn(t, c, victim))
		ncVictim, err := nats.Connect(victim.URL(), nats.IgnoreDiscoveredServers())
		if err != nil {
			t.Fatal(err)
		}
		defer ncVictim.Close()
		t.Logf("partitioning %s, the leader of %s", victim.Name(), name)
		if err := victim.Partition(ctx); err != nil {
			t.Fatal(err)
		}
		healed := false
		t.Cleanup(func() {
			if !healed {
				_ = victim.Heal(context.Background())
			}
		})

		// The minority side: the client stays connected, JetStream can't
		// commit anything there.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = newJS(t, ncVictim).Publish(pctx, name+".minority", []byte("lost"), jetstream.WithMsgID("minority"))
		cancel()
		if err == nil {
			t.Fatalf("publish on the partitioned node %s succeeded", victim.Name())
		}
		t.Logf("publish on the partitioned node fails as expected: %v", err)
		// Its client port still works: a new connection, and core NATS
		// request/reply between two clients of that node.
		ncNew, err := nats.Connect(victim.URL(), nats.IgnoreDiscoveredServers())
		if err != nil {
			t.Fatalf("new connection to the partitioned node: %v", err)
		}
		defer ncNew.Close()
		if _, err := ncNew.Subscribe("local.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
			t.Fatal(err)
		}
		if err := ncNew.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := ncVictim.Request("local.echo", []byte("hi"), 2*time.Second); err != nil {
			t.Fatalf("core NATS on the partitioned node: %v", err)
		}

		publishRange(ctx, t, jsOthers, name, 200, 500)
		if st, err := victim.StreamState(ctx, name); err != nil || st.LastSeq >= 500 {
			t.Fatalf("partitioned node has %+v (err %v); it should be behind", st, err)
		}
		if err := victim.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		healed = true
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		verifyStream(ctx, t, c, js, name, 500)
	})

	t.Run("PauseUnpause", func(t *testing.T) {
		const name = "PAUSE"
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		createStream(ctx, t, js, name, 3)
		publishRange(ctx, t, js, name, 0, 200)

		victim := streamLeader(ctx, t, c, js, name)
		jsOthers := newJS(t, othersConn(t, c, victim))
		t.Logf("pausing %s, the leader of %s", victim.Name(), name)
		if err := victim.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		unpaused := false
		t.Cleanup(func() {
			if !unpaused {
				_ = victim.Unpause(context.Background())
			}
		})
		publishRange(ctx, t, jsOthers, name, 200, 500)
		if err := victim.Unpause(ctx); err != nil {
			t.Fatal(err)
		}
		unpaused = true
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		verifyStream(ctx, t, c, js, name, 500)
	})

	t.Run("StopAllStartAll", func(t *testing.T) {
		const name = "RESTART"
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		createStream(ctx, t, js, name, 3)
		publishRange(ctx, t, js, name, 0, 300)

		// Every stream's count before, to compare after the restart.
		var before map[string]uint64
		retry(ctx, t, "list streams", func(ctx context.Context) error {
			before = map[string]uint64{}
			l := js.ListStreams(ctx)
			for info := range l.Info() {
				before[info.Config.Name] = info.State.Msgs
			}
			return l.Err()
		})
		if len(before) < 1 || before[name] != 300 {
			t.Fatalf("streams before restart: %v", before)
		}

		for _, n := range c.Nodes() {
			if err := n.Stop(ctx, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		// Start doesn't wait for quorum, so starting one by one works.
		for _, n := range c.Nodes() {
			if err := n.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		for stream, msgs := range before {
			verifyStream(ctx, t, c, js, stream, int(msgs))
		}
		publishRange(ctx, t, js, name, 300, 400)
		verifyStream(ctx, t, c, js, name, 400)
	})
}
