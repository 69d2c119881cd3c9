// Package clustertest proves, with real NATS servers in containers, that no
// session job is lost: a three-node JetStream cluster with replicated
// streams, real worker processes (a go build of cmd/worker), the Clerk
// emulator, thousands of jobs in flight, and then things break — a broker
// node killed or cut off, two of three killed (no quorum), a worker
// SIGKILLed, Clerk failing, rate limiting, rejecting the key, every broker
// restarted.
//
// Each scenario ends with a check that every published job reached exactly
// one terminal record (a result or a dead letter), that Clerk saw every
// revocation, and prints the counts: published, succeeded, dead-lettered,
// duplicate records, duplicate API calls, lost. Lost must be 0; duplicate
// API calls (a revoke repeated after a crash) are bounded by the jobs in
// flight at the moment of the fault, and reported.
//
// The tests need a Docker engine; without one they skip, unless
// REQUIRE_DOCKER=1 (CI) makes that a failure. CLERKJOBS_SOAK=1 runs longer
// variants (more jobs, longer faults).
package clustertest
