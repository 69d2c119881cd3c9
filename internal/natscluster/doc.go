// Package natscluster runs real NATS JetStream servers in Docker containers
// for tests: one node, or a cluster of several, which a test can kill, stop,
// restart, pause and cut off from its peers, to see how code using
// JetStream copes.
//
//	func TestWorker(t *testing.T) {
//		ctx := t.Context()
//		c := natscluster.Start(ctx, t, natscluster.WithNodes(3)) // skips without Docker
//		nc := c.Connect(t)                                      // all node URLs, closed by t.Cleanup
//		// ... create an R3 stream, run the code under test ...
//		_ = c.Node(0).Kill(ctx)  // SIGKILL
//		_ = c.Node(0).Start(ctx) // same URL as before
//		_ = c.WaitHealthy(ctx)   // caught up, every stream has a leader
//	}
//
// # Docker without a registry
//
// No image can be pulled on this project's machines and in CI. So:
//   - Ryuk, testcontainers' reaper, is disabled: the package sets
//     TESTCONTAINERS_RYUK_DISABLED=true (if unset) before its first
//     testcontainers call; do the same in a TestMain if other testcontainers
//     code in the same test binary can run first. Containers and networks are
//     removed by t.Cleanup instead, and CleanupLeftovers (run once per
//     process by Start) removes those of test binaries that died before
//     their cleanup.
//   - The NATS image is made locally: `go build` of
//     github.com/nats-io/nats-server/v2 at the version in go.mod (static,
//     for the engine's architecture), imported with the engine's image
//     import as a one-layer image with ENTRYPOINT ["/nats-server"], tagged
//     clerkjobs-natscluster/nats-server:<version>-r1. This happens at most
//     once per test binary, and not at all while the engine still has that
//     tag: the image is kept after the run as a cache (about a minute of
//     compiling saved).
//     `docker rmi $(docker images -q --filter label=io.clerkjobs.natscluster.image)`
//     removes it.
//   - CLERKJOBS_NATS_IMAGE (for example nats:2.12-alpine) selects a
//     ready-made image instead, where one can be pulled.
//   - REQUIRE_DOCKER=1 turns "no Docker engine" from a skip into a failure.
//
// # Topology
//
// Each node is a container named natscluster-<test>-<random>-n<i>, labelled
// io.clerkjobs.natscluster=1 (and with the test name and the PID of the test
// binary), configured by a config file copied in before start (the scratch
// image has no shell): server_name n<i>, JetStream with file storage in the
// container, and for a cluster, routes to the DNS aliases n1..n<N> on a
// private network. Client (4222) and monitoring (8222) ports are published
// on host ports picked up front and bound explicitly, so a node keeps its
// URL across Stop, Kill and Start; nodes advertise these host URLs to
// clients. The routes network is an internal network and every node is
// also on the default bridge, which carries the published ports: Docker
// never routes published ports through an internal network. Partition
// disconnects a node from the routes network only, so its peers lose it
// while its host port keeps working.
//
// # Things learned building this (checked on this project's machines)
//
//   - testcontainers' own host detection is wrong here: a /.dockerenv file
//     makes it believe it runs inside a container, and as the default
//     bridge's IPAM lists no gateway it falls back to the default route's
//     gateway (192.0.2.1), where nothing is published. So Container.Host,
//     Endpoint and friends give unreachable addresses on these machines
//     unless TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 is set. This package
//     works the host out itself.
//   - testcontainers silently falls back to /var/run/docker.sock when
//     DOCKER_HOST points to an engine that doesn't answer.
//   - /healthz answers 200 on every node of a freshly restarted cluster
//     seconds before the streams have leaders, and a JetStream request about
//     a leaderless stream gets no reply at all: no error, it just waits for
//     its context. WaitHealthy therefore also waits, through /jsz, until each
//     node knows a leader for every stream and consumer it hosts.
//   - JetStream API calls are core NATS requests, delivered at most once.
//     Right after a cluster formed, a CreateStream reply was lost once: the
//     stream existed, the call waited for the whole 8-minute test context.
//     Give every JetStream call a short timeout and retry it (creating a
//     stream with the same config is idempotent; publish with a Nats-Msg-Id
//     so that a retried publish is not stored twice). Start now also waits
//     until a request from each node's client reaches each other node.
//   - A publish right after CreateStream returned can fail with "no response
//     from stream" while the stream's leader is elected.
//   - A client connected to a partitioned node stays connected; core NATS
//     keeps working among that node's clients, but a JetStream publish just
//     times out ("context deadline exceeded", nothing about quorum). The
//     client does not fail over, since its connection is fine.
//   - A paused node's host port still accepts TCP connections (Docker's
//     proxy), which then hang; clients notice a frozen server only by missed
//     pings, after 2 minutes times 2 pings with nats.go's defaults.
//   - Files in a stopped or killed container survive until it is removed,
//     so JetStream file storage survives Stop/Kill and Start of every node.
//   - The engine here is Docker 20.10 (API 1.41); the moby client that
//     testcontainers v0.45.0 uses accepts API 1.40 and newer only.
package natscluster
