package natscluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
)

// Paths and ports inside a node's container.
const (
	confPath    = "/natscluster/nats.conf"
	storeDir    = "/natscluster/jetstream"
	clientPort  = "4222/tcp"
	monitorPort = "8222/tcp"
	clusterName = "natscluster"
	// defaultReadyTimeout bounds Start's wait when ctx has no deadline.
	defaultReadyTimeout = 2 * time.Minute
)

// Option configures Start.
type Option func(*options)

type options struct {
	nodes int
}

// WithNodes sets the number of nodes (default 1). With more than one, the
// nodes form a JetStream cluster; use 3 for R3 streams and for a quorum that
// survives the loss of one node.
func WithNodes(n int) Option { return func(o *options) { o.nodes = n } }

// Cluster is a set of nats-server nodes in Docker containers, owned by one
// test and removed by its t.Cleanup.
type Cluster struct {
	t          testing.TB
	e          *engine
	image      string
	prefix     string            // container name prefix, unique per Start
	labels     map[string]string // put on containers and networks
	routesID   string            // network carrying the cluster routes, "" for one node
	routesName string
	nodes      []*Node
}

// Start starts the nodes (one unless WithNodes says otherwise) and waits
// until the cluster is ready: every node passes WaitHealthy (JetStream up, a
// meta leader elected and known to all), a request from a client of each
// node reaches a client of each other node, and JetStream answers an
// account info request. It fails the test (t.Fatal) when that does not
// happen before ctx ends (when ctx has no deadline: 2 minutes), and skips
// it like Require when there is no Docker engine.
//
// The first Start of a test binary may build the NATS image (see the
// package documentation); later ones reuse it.
//
// Every container and network is removed by t.Cleanup, which also prints
// the last lines of each node's log when the test failed.
func Start(ctx context.Context, t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	Require(t)
	o := options{nodes: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if o.nodes < 1 {
		t.Fatalf("natscluster: WithNodes(%d): need at least one node", o.nodes)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	e, err := getEngine(ctx)
	if err != nil {
		t.Fatalf("natscluster: %v", err)
	}
	cleanupLeftoversOnce(t)

	c := &Cluster{t: t, e: e}
	if c.image, err = natsImage(ctx, e, t.Logf); err != nil {
		t.Fatalf("natscluster: %v", err)
	}
	c.prefix = fmt.Sprintf("natscluster-%s-%06x", sanitizeName(t.Name()), rand.Uint32()&0xffffff)
	host, _ := os.Hostname()
	c.labels = map[string]string{
		labelRoot: "1",
		labelTest: t.Name(),
		labelPID:  strconv.Itoa(os.Getpid()),
		labelHost: host,
	}
	for i := range o.nodes {
		c.nodes = append(c.nodes, &Node{c: c, name: fmt.Sprintf("n%d", i+1)})
	}

	if o.nodes > 1 {
		if err := c.createRoutesNetwork(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err = c.eachNode(func(n *Node) error { return n.create(ctx) })
	for _, n := range c.nodes {
		if n.ctr != nil {
			t.Cleanup(n.terminate)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.checkClient(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// sanitizeName turns a test name into a piece of a container name.
func sanitizeName(s string) string {
	s = strings.Trim(nameUnsafe.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	return cmp.Or(s, "test")
}

// createRoutesNetwork creates the network for the cluster routes. It is an
// internal network: Docker never picks an internal network for a
// container's default gateway and published ports, so these go through the
// default bridge network, which every node joins as well. That is what lets
// Partition cut the routes while the node's client port stays reachable.
func (c *Cluster) createRoutesNetwork(ctx context.Context) error {
	c.routesName = c.prefix + "-routes"
	res, err := c.e.cli.NetworkCreate(ctx, c.routesName, client.NetworkCreateOptions{
		Driver:   "bridge",
		Internal: true,
		Labels:   c.labels,
	})
	if err != nil {
		return fmt.Errorf("natscluster: create network %s: %w", c.routesName, err)
	}
	c.routesID = res.ID
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.e.cli.NetworkRemove(ctx, c.routesID, client.NetworkRemoveOptions{}); err != nil {
			c.t.Errorf("natscluster: remove network %s: %v", c.routesName, err)
		}
	})
	return nil
}

// config renders a node's nats-server config file.
func (c *Cluster) config(n *Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\n", n.name)
	b.WriteString("listen: \"0.0.0.0:4222\"\n")
	b.WriteString("http: \"0.0.0.0:8222\"\n")
	// Clients learn the other nodes' URLs from the INFO they get (connect_urls);
	// advertise the host-side URL, not the container's address.
	fmt.Fprintf(&b, "client_advertise: %q\n", net.JoinHostPort(c.e.urlHost, strconv.Itoa(n.clientPort)))
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", storeDir)
	if len(c.nodes) > 1 {
		routes := make([]string, len(c.nodes))
		for i, m := range c.nodes {
			routes[i] = fmt.Sprintf("%q", "nats://"+m.name+":6222")
		}
		b.WriteString("cluster {\n")
		fmt.Fprintf(&b, "  name: %q\n", clusterName)
		b.WriteString("  listen: \"0.0.0.0:6222\"\n")
		// Gossip only the DNS alias, which resolves on the routes network
		// alone; an advertised IP could let peers route around a Partition
		// through the bridge network.
		fmt.Fprintf(&b, "  advertise: %q\n", n.name+":6222")
		fmt.Fprintf(&b, "  routes: [%s]\n", strings.Join(routes, ", "))
		b.WriteString("}\n")
	}
	return b.String()
}

// create picks the node's host ports and creates and starts its
// container, retrying with new host ports if the picked ones were taken in
// the meantime.
func (n *Node) create(ctx context.Context) error {
	c := n.c
	var lastErr error
	for range 3 {
		var err error
		if n.clientPort, err = pickPort(c.e.bindIP); err == nil {
			n.monitorPort, err = pickPort(c.e.bindIP)
		}
		if err != nil {
			return err
		}
		opts := []testcontainers.ContainerCustomizer{
			testcontainers.WithName(c.prefix + "-" + n.name),
			testcontainers.WithLabels(c.labels),
			testcontainers.WithLogger(tclog.TestLogger(c.t)),
			testcontainers.WithCmd("--config", confPath),
			testcontainers.WithFiles(testcontainers.ContainerFile{
				Reader:            strings.NewReader(c.config(n)),
				ContainerFilePath: confPath,
				FileMode:          0o644,
			}),
			testcontainers.WithExposedPorts(clientPort, monitorPort),
			// Fixed host ports: without them a restarted container gets new
			// ones, and clients holding the old URLs never reconnect.
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.PortBindings = mobynet.PortMap{
					mobynet.MustParsePort(clientPort):  {{HostIP: c.e.bindIP, HostPort: strconv.Itoa(n.clientPort)}},
					mobynet.MustParsePort(monitorPort): {{HostIP: c.e.bindIP, HostPort: strconv.Itoa(n.monitorPort)}},
				}
			}),
		}
		if c.routesName != "" {
			opts = append(opts,
				network.WithNetworkName([]string{n.name}, c.routesName),
				network.WithBridgeNetwork())
		}
		ctr, err := testcontainers.Run(ctx, c.image, opts...)
		if err == nil {
			n.ctr = ctr
			return nil
		}
		lastErr = fmt.Errorf("natscluster: start node %s: %w", n.name, err)
		if ctr != nil {
			rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_ = ctr.Terminate(rmCtx)
			cancel()
		}
		msg := err.Error()
		if !strings.Contains(msg, "port is already allocated") && !strings.Contains(msg, "address already in use") {
			return lastErr
		}
	}
	return lastErr
}

// checkClient connects to every node through its host port, checks that a
// request from each node's client reaches a responder on each other node
// (routes up and subscription interest propagated), and asks for the
// JetStream account info, which needs a meta leader.
func (c *Cluster) checkClient(ctx context.Context) error {
	conns := make([]*nats.Conn, len(c.nodes))
	defer func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	for i, n := range c.nodes {
		nc, err := nats.Connect(n.URL(), nats.Timeout(5*time.Second), nats.IgnoreDiscoveredServers())
		if err != nil {
			return fmt.Errorf("natscluster: connect to node %s at %s: %w", n.name, n.URL(), err)
		}
		conns[i] = nc
		if _, err := nc.Subscribe("_natscluster.ready."+n.name, func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
			return err
		}
		if err := nc.Flush(); err != nil {
			return err
		}
	}
	for _, from := range conns {
		for _, to := range c.nodes {
			err := retry(ctx, 100*time.Millisecond, func() error {
				_, err := from.Request("_natscluster.ready."+to.name, nil, time.Second)
				return err
			})
			if err != nil {
				return fmt.Errorf("natscluster: no request/reply from %s to node %s: %w", from.ConnectedServerName(), to.name, err)
			}
		}
	}
	js, err := jetstream.New(conns[0])
	if err != nil {
		return err
	}
	err = retry(ctx, 200*time.Millisecond, func() error {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(actx)
		return err
	})
	if err != nil {
		return fmt.Errorf("natscluster: JetStream not ready: %w", err)
	}
	return nil
}

// retry calls try every interval until it succeeds or ctx ends; then it
// returns try's last error.
func retry(ctx context.Context, every time.Duration, try func() error) error {
	for {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(every):
		}
	}
}

// withDefaultTimeout bounds ctx by defaultReadyTimeout when it has no
// deadline of its own.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultReadyTimeout)
}

// URLs returns one client URL per node, host side (nats://127.0.0.1:port on
// a local engine). A node keeps its URL across Stop, Kill and Start.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.URL()
	}
	return urls
}

// ConnectURL returns all node URLs joined by commas, the form nats.Connect
// takes for a server list.
func (c *Cluster) ConnectURL() string { return strings.Join(c.URLs(), ",") }

// Nodes returns the nodes in order n1, n2, ...
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// Node returns node i, counting from 0 (its name is n<i+1>).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// NodeByName returns the node with this server name (as in
// nats.Conn.ConnectedServerName or a stream's cluster leader), or nil.
func (c *Cluster) NodeByName(name string) *Node {
	if i := slices.IndexFunc(c.nodes, func(n *Node) bool { return n.name == name }); i >= 0 {
		return c.nodes[i]
	}
	return nil
}

// WaitHealthy waits until every node's /healthz answers 200. Call it after
// Start, Unpause or Heal of nodes to know that they caught up. It fails
// while a node is stopped, paused or partitioned.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.eachNode(func(n *Node) error { return n.WaitHealthy(ctx) })
}

// eachNode runs f on every node at once and joins their errors.
func (c *Cluster) eachNode(f func(*Node) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = f(n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Connect returns a client connected to all nodes and closed by t.Cleanup.
// Its defaults suit failover tests: reconnect forever every 250ms, and ping
// every 2s so that a paused or partitioned-away server is noticed within
// seconds instead of the default 2 minutes times 2 pings. opts come after
// the defaults and so override them.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.Timeout(5 * time.Second),
	}, opts...)
	nc, err := nats.Connect(c.ConnectURL(), all...)
	if err != nil {
		t.Fatalf("natscluster: connect to %s: %v", c.ConnectURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}
