package natscluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Labels put on every container and network this package creates. They make
// leftovers identifiable (docker ps --filter label=io.clerkjobs.natscluster)
// and let CleanupLeftovers tell a crashed run from a running one.
const (
	labelRoot  = "io.clerkjobs.natscluster"       // always "1"
	labelTest  = "io.clerkjobs.natscluster.test"  // t.Name() of the creating test
	labelPID   = "io.clerkjobs.natscluster.pid"   // PID of the creating test binary
	labelHost  = "io.clerkjobs.natscluster.host"  // hostname of the creating test binary
	labelImage = "io.clerkjobs.natscluster.image" // on images this package built
)

// EnvRequireDocker names the environment variable that turns a missing Docker
// engine from a skip into a failure (set it to 1 in CI).
const EnvRequireDocker = "REQUIRE_DOCKER"

// setupEnv disables Ryuk, testcontainers' reaper container, unless the
// environment already says otherwise. Ryuk is an image that testcontainers
// pulls on its first container or network, and on this project's machines no
// registry is reachable. testcontainers reads the variable only once per
// process, so this must run before the first testcontainers call; every
// exported function of this package calls it first. Without Ryuk nothing
// reaps containers of a killed test binary: t.Cleanup and CleanupLeftovers
// do that job.
func setupEnv() {
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// engine is the Docker engine shared by every cluster of the test binary.
type engine struct {
	cli     client.APIClient
	urlHost string     // host part of the URLs handed to clients
	bindIP  netip.Addr // host address ports are published on; zero means all
	goarch  string     // GOARCH matching the engine, for building nats-server
}

var engineState struct {
	sync.Once
	e   *engine
	err error
}

// getEngine connects to the Docker engine once per process; the outcome,
// failure included, is remembered so that skipping many tests stays fast.
func getEngine(ctx context.Context) (*engine, error) {
	setupEnv()
	engineState.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		engineState.e, engineState.err = connectEngine(ctx)
	})
	return engineState.e, engineState.err
}

func connectEngine(ctx context.Context) (e *engine, err error) {
	defer func() {
		// testcontainers panics on some broken setups (no socket found).
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("testcontainers: %v", r)
		}
	}()
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
	if err != nil {
		return nil, err
	}
	cli := p.Client()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return nil, fmt.Errorf("ping Docker engine: %w", err)
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("Docker engine info: %w", err)
	}
	e = &engine{cli: cli, goarch: goarchOf(info.Info.Architecture)}
	e.urlHost, e.bindIP = publishedHost(ctx, p)
	return e, nil
}

func goarchOf(dockerArch string) string {
	switch dockerArch {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return runtime.GOARCH
}

var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// publishedHost decides where published ports are reachable from this
// process, and on which host address to publish them.
//
// The usual case, an engine on this machine (or Docker Desktop), gets ports
// published on 127.0.0.1 only. testcontainers' own guess (DaemonHost, and so
// Container.Host) is not used there: it takes a file /.dockerenv to mean
// "we run in a container next to the engine" and then answers with the
// default bridge's gateway or, when the bridge's IPAM lists no gateway (as
// on this project's machines), with the default route's gateway: an address
// where nothing is published. Here /.dockerenv is a leftover of the VM image
// and the engine shares our network namespace, which shows as the default
// bridge's interface (docker0) being one of ours. Only without that do we
// believe testcontainers, and publish on all interfaces.
func publishedHost(ctx context.Context, p *testcontainers.DockerProvider) (string, netip.Addr) {
	if h := os.Getenv("TESTCONTAINERS_HOST_OVERRIDE"); h != "" {
		return h, netip.Addr{}
	}
	u, err := url.Parse(p.Client().DaemonHost())
	if err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") {
		h := u.Hostname()
		if ip, err := netip.ParseAddr(h); (err == nil && ip.IsLoopback()) || h == "localhost" {
			return loopback.String(), loopback
		}
		return h, netip.Addr{}
	}
	if _, err := os.Stat("/.dockerenv"); err != nil {
		return loopback.String(), loopback
	}
	if sharesNetns(ctx, p.Client()) {
		return loopback.String(), loopback
	}
	if h, err := p.DaemonHost(ctx); err == nil && h != "" {
		return h, netip.Addr{}
	}
	return loopback.String(), loopback
}

// sharesNetns reports whether the interface of Docker's default bridge
// network is one of ours, with an address in the bridge's subnet: then the
// engine runs in our network namespace and publishes ports on our 127.0.0.1.
func sharesNetns(ctx context.Context, cli client.APIClient) bool {
	res, err := cli.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err != nil {
		return false
	}
	name := res.Network.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return false
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		for _, cfg := range res.Network.IPAM.Config {
			if cfg.Subnet.Contains(ip.Unmap()) {
				return true
			}
		}
	}
	return false
}

// Require skips the test when no Docker engine answers, with the reason in
// the skip message. When the environment variable REQUIRE_DOCKER is 1 (set it
// in CI), it fails the test instead, so that a broken engine can't turn the
// whole suite into silent skips. Start calls Require itself.
func Require(t testing.TB) {
	t.Helper()
	_, err := getEngine(context.Background())
	if err == nil {
		return
	}
	if os.Getenv(EnvRequireDocker) == "1" {
		t.Fatalf("natscluster: %s=1 but no usable Docker engine: %v", EnvRequireDocker, err)
	}
	t.Skipf("natscluster: skipping, no usable Docker engine (set %s=1 to fail instead): %v", EnvRequireDocker, err)
}

// Host ports are picked at random from portLow..portHigh, below Linux's
// ephemeral range (32768-60999), so that a port left free while its node is
// stopped is unlikely to be taken by an outgoing connection meanwhile.
const (
	portLow  = 20000
	portHigh = 32767
)

var ports = struct {
	sync.Mutex
	used map[int]bool
}{used: map[int]bool{}}

// pickPort returns a host port that is free right now on bind (zero: all
// interfaces) and that this process has not handed out before.
func pickPort(bind netip.Addr) (int, error) {
	ports.Lock()
	defer ports.Unlock()
	host := "0.0.0.0"
	if bind.IsValid() {
		host = bind.String()
	}
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow+1)
		if ports.used[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		ports.used[p] = true
		return p, nil
	}
	return 0, errors.New("natscluster: no free host port found")
}

// CleanupLeftovers removes the containers and networks this package created
// in test binaries that no longer run on this host: a binary killed by
// go test's -timeout, a crash or a Ctrl-C never runs t.Cleanup, and without
// Ryuk nothing else would remove them. Resources of running processes are
// never touched, so it is safe while other packages' tests use natscluster
// on the same engine. Start calls it once per process.
//
// To remove everything by hand instead (also resources of running tests):
//
//	docker rm -f $(docker ps -aq --filter label=io.clerkjobs.natscluster)
//	docker network prune -f --filter label=io.clerkjobs.natscluster
func CleanupLeftovers(ctx context.Context) (removed int, err error) {
	e, err := getEngine(ctx)
	if err != nil {
		return 0, err
	}
	host, _ := os.Hostname()
	stale := func(labels map[string]string) bool {
		if labels[labelHost] != host {
			return false
		}
		pid, err := strconv.Atoi(labels[labelPID])
		return err == nil && pid > 0 && pid != os.Getpid() && !processAlive(pid)
	}
	var errs []error
	// remove removes a resource of a stale test binary with rm.
	remove := func(labels map[string]string, rm func() error) {
		if !stale(labels) {
			return
		}
		if err := rm(); err != nil {
			errs = append(errs, err)
			return
		}
		removed++
	}
	cs, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", labelPID),
	})
	if err != nil {
		return 0, fmt.Errorf("natscluster: list containers: %w", err)
	}
	for _, c := range cs.Items {
		remove(c.Labels, func() error {
			_, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			return err
		})
	}
	ns, err := e.cli.NetworkList(ctx, client.NetworkListOptions{
		Filters: make(client.Filters).Add("label", labelPID),
	})
	if err != nil {
		return removed, fmt.Errorf("natscluster: list networks: %w", err)
	}
	for _, n := range ns.Items {
		remove(n.Labels, func() error {
			_, err := e.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
			return err
		})
	}
	return removed, errors.Join(errs...)
}

var leftovers sync.Once

func cleanupLeftoversOnce(t testing.TB) {
	t.Helper()
	leftovers.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := CleanupLeftovers(ctx)
		if err != nil {
			t.Logf("natscluster: cleaning up leftovers of earlier runs: %v", err)
		}
		if n > 0 {
			t.Logf("natscluster: removed %d leftover containers/networks of earlier, dead test runs", n)
		}
	})
}
