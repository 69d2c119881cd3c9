package natscluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// ErrSingleNode is returned by Partition and Heal on a one-node cluster,
// which has no peers to be cut off from.
var ErrSingleNode = errors.New("natscluster: a single node has no peers to partition from")

// Node is one nats-server in its own container. Its controls return once
// Docker has made the change (Start: once nats-server accepts connections),
// not once the cluster has reacted to it; WaitHealthy waits for that.
// Different nodes may be controlled from different goroutines, for example
// to stop or start several at once.
type Node struct {
	c           *Cluster
	name        string
	clientPort  int
	monitorPort int
	ctr         *testcontainers.DockerContainer
	paused      atomic.Bool
}

// Name returns the node's server name (n1, n2, ...), which is also its DNS
// alias on the routes network.
func (n *Node) Name() string { return n.name }

// URL returns the node's client URL on the host side. It stays the same
// across Stop, Kill and Start because the host port is bound explicitly.
func (n *Node) URL() string {
	return "nats://" + net.JoinHostPort(n.c.e.urlHost, strconv.Itoa(n.clientPort))
}

// MonitorURL returns the node's HTTP monitoring base URL on the host side
// (for /healthz, /varz, /jsz, ...).
func (n *Node) MonitorURL() string {
	return "http://" + net.JoinHostPort(n.c.e.urlHost, strconv.Itoa(n.monitorPort))
}

// ContainerName returns the Docker container name, for docker logs and
// the like.
func (n *Node) ContainerName() string { return n.c.prefix + "-" + n.name }

// Kill sends SIGKILL to nats-server, like a crash or an OOM kill, and waits
// until the container has exited. Data already written survives: the
// container's filesystem stays, and a killed process loses no page cache.
// Unpause a paused node before Kill or Stop.
func (n *Node) Kill(ctx context.Context) error {
	if _, err := n.c.e.cli.ContainerKill(ctx, n.ctr.ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("natscluster: kill %s: %w", n.name, err)
	}
	w := n.c.e.cli.ContainerWait(ctx, n.ctr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-w.Result:
		return nil
	case err := <-w.Error:
		return fmt.Errorf("natscluster: wait for %s to exit: %w", n.name, err)
	}
}

// Stop stops the node gracefully: SIGTERM, then SIGKILL after timeout
// (Docker counts whole seconds, so timeout is rounded down to seconds).
func (n *Node) Stop(ctx context.Context, timeout time.Duration) error {
	if err := n.ctr.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("natscluster: stop %s: %w", n.name, err)
	}
	return nil
}

// Start starts a stopped or killed node on the same host ports and waits
// until nats-server accepts connections. It does not wait for the node to
// rejoin the cluster or catch up, since in a cluster that may need other
// nodes to start too; call WaitHealthy (of the node or the cluster) for that.
func (n *Node) Start(ctx context.Context) error {
	if err := n.ctr.Start(ctx); err != nil {
		return fmt.Errorf("natscluster: start %s: %w", n.name, err)
	}
	return n.waitStatus(ctx, "/healthz?js-server-only=true")
}

// Pause freezes every process of the node (cgroup freezer). Unlike Stop,
// its TCP connections stay open: peers and clients see a server that has
// gone silent and notice only through missed heartbeats and pings, and the
// host port still accepts connections (Docker's proxy answers) that then
// hang.
func (n *Node) Pause(ctx context.Context) error {
	if _, err := n.c.e.cli.ContainerPause(ctx, n.ctr.ID, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("natscluster: pause %s: %w", n.name, err)
	}
	n.paused.Store(true)
	return nil
}

// Unpause resumes a paused node. Call WaitHealthy to know it caught up.
func (n *Node) Unpause(ctx context.Context) error {
	if _, err := n.c.e.cli.ContainerUnpause(ctx, n.ctr.ID, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("natscluster: unpause %s: %w", n.name, err)
	}
	n.paused.Store(false)
	return nil
}

// Partition disconnects the node from the routes network: it can no longer
// reach its peers nor they it, and its routes break at once (the interface
// disappears). Its client port keeps working, because it is published
// through the separate bridge network. So a client connected to the
// partitioned node stays connected, as a client on the minority side of a
// real network split would: core NATS works among that node's own clients,
// but JetStream requests get no quorum and time out. Clients fail over only
// if their connection breaks, so give them a short ping interval or
// reconnect them yourself.
func (n *Node) Partition(ctx context.Context) error {
	if n.c.routesID == "" {
		return ErrSingleNode
	}
	if _, err := n.c.e.cli.NetworkDisconnect(ctx, n.c.routesID, client.NetworkDisconnectOptions{Container: n.ctr.ID}); err != nil {
		return fmt.Errorf("natscluster: partition %s: %w", n.name, err)
	}
	return nil
}

// Heal reconnects a partitioned node to the routes network under its DNS
// alias; its routes come back within a second or two. Call WaitHealthy to
// know it caught up.
func (n *Node) Heal(ctx context.Context) error {
	if n.c.routesID == "" {
		return ErrSingleNode
	}
	_, err := n.c.e.cli.NetworkConnect(ctx, n.c.routesID, client.NetworkConnectOptions{
		Container:      n.ctr.ID,
		EndpointConfig: &mobynet.EndpointSettings{Aliases: []string{n.name}},
	})
	if err != nil {
		return fmt.Errorf("natscluster: heal %s: %w", n.name, err)
	}
	return nil
}

// WaitHealthy waits until the node's /healthz answers 200 (JetStream is
// running, the node knows the meta leader and is current with it, and every
// stream and consumer replica it hosts has caught up) and, in a cluster,
// until the node knows a leader for every stream and consumer it hosts.
//
// The second condition matters: right after a restart /healthz already says
// ok while stream leaders are still being elected, and a JetStream request
// about a leaderless stream gets no answer at all (not an error): it just
// times out.
func (n *Node) WaitHealthy(ctx context.Context) error {
	if err := n.waitStatus(ctx, "/healthz"); err != nil {
		return err
	}
	if len(n.c.nodes) < 2 {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	err := retry(ctx, 100*time.Millisecond, func() error {
		leaderless, err := n.leaderless(ctx)
		if err == nil && leaderless != "" {
			err = errors.New(leaderless + " has no leader")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("natscluster: node %s: %w", n.name, err)
	}
	return nil
}

// jsz is the part of /jsz?accounts=true&streams=true&consumers=true that
// this package reads.
type jsz struct {
	Accounts []struct {
		Name    string `json:"name"`
		Streams []struct {
			Name      string      `json:"name"`
			Cluster   *jszCluster `json:"cluster"`
			State     StreamState `json:"state"`
			Consumers []struct {
				Name    string      `json:"name"`
				Cluster *jszCluster `json:"cluster"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

type jszCluster struct {
	Leader string `json:"leader"`
}

func (n *Node) jsz(ctx context.Context) (*jsz, error) {
	code, body, err := n.get(ctx, "/jsz?accounts=true&streams=true&consumers=true")
	if err != nil {
		return nil, fmt.Errorf("natscluster: node %s: /jsz: %w", n.name, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("natscluster: node %s: /jsz: status %d", n.name, code)
	}
	var j jsz
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("natscluster: node %s: /jsz: %w", n.name, err)
	}
	return &j, nil
}

// leaderless names a stream or consumer hosted here whose leader this node
// doesn't know, or returns "".
func (n *Node) leaderless(ctx context.Context) (string, error) {
	j, err := n.jsz(ctx)
	if err != nil {
		return "", err
	}
	for _, a := range j.Accounts {
		for _, s := range a.Streams {
			if s.Cluster == nil || s.Cluster.Leader == "" {
				return fmt.Sprintf("stream %s > %s", a.Name, s.Name), nil
			}
			for _, c := range s.Consumers {
				if c.Cluster == nil || c.Cluster.Leader == "" {
					return fmt.Sprintf("consumer %s > %s > %s", a.Name, s.Name, c.Name), nil
				}
			}
		}
	}
	return "", nil
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// waitStatus polls a monitoring path until it answers 200.
func (n *Node) waitStatus(ctx context.Context, path string) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	err := retry(ctx, 200*time.Millisecond, func() error {
		code, body, err := n.get(ctx, path)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, strings.TrimSpace(string(body)))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("natscluster: node %s: %s not OK (last answer: %v): %w", n.name, path, err, ctx.Err())
	}
	return nil
}

func (n *Node) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.MonitorURL()+path, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	return res.StatusCode, body, err
}

// StreamState is a stream's state as stored on one node.
type StreamState struct {
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Leader   string `json:"-"` // the stream's leader as this node sees it ("" for R1 or none)
}

// StreamState returns the state of this node's own replica of a stream,
// read from its /jsz monitoring endpoint, whether or not the node leads the
// stream. (JetStream's stream info is answered by the leader only.) Use it
// to check that a follower caught up. It searches all accounts and returns
// the first stream with that name.
func (n *Node) StreamState(ctx context.Context, stream string) (StreamState, error) {
	j, err := n.jsz(ctx)
	if err != nil {
		return StreamState{}, err
	}
	for _, a := range j.Accounts {
		for _, s := range a.Streams {
			if s.Name != stream {
				continue
			}
			st := s.State
			if s.Cluster != nil {
				st.Leader = s.Cluster.Leader
			}
			return st, nil
		}
	}
	return StreamState{}, fmt.Errorf("natscluster: stream not on this node: %s on %s", stream, n.name)
}

// Logs returns the last lines (all if lines <= 0) of the node's output.
func (n *Node) Logs(ctx context.Context, lines int) (string, error) {
	rc, err := n.ctr.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var all []string
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
		if lines > 0 && len(all) > 2*lines {
			all = append(all[:0], all[len(all)-lines:]...)
		}
	}
	if lines > 0 && len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n"), sc.Err()
}

// terminate removes the container; registered with t.Cleanup by Start.
func (n *Node) terminate() {
	t := n.c.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if t.Failed() {
		if logs, err := n.Logs(ctx, 40); err == nil {
			t.Logf("natscluster: last lines of node %s (%s):\n%s", n.name, n.ContainerName(), logs)
		}
	}
	if n.paused.Load() {
		_ = n.Unpause(ctx)
	}
	if err := n.ctr.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
		t.Errorf("natscluster: remove container %s: %v", n.ContainerName(), err)
	}
}
