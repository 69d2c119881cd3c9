package clustertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/natscluster"
)

// Each scenario: publish thousands of revoke jobs, start two workers, break
// something mid-load, repair it, and check that nothing was lost.

// TestNodeKill kills the NATS node a worker is connected to, mid-load, and
// brings it back. The streams and consumers that node led have no leader
// until the other two elect one (seconds): JetStream requests about them go
// unanswered, so the workers' fetches or records fail meanwhile (jobs are
// kept and retried) and their /readyz says why. The scenario then waits for
// what an operator would wait for (the cluster whole again), checks that
// nothing was lost, and that every worker is ready again by itself.
func TestNodeKill(t *testing.T) {
	s, node := loadAndPickNode(t, "kill")
	ctx := context.Background()
	fault := time.Now()
	if err := node.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the node stays down a while
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitRecovered(fault, 3*time.Minute)
	s.check(3 * time.Minute)
	s.waitReady(time.Minute)
	t.Logf("workers' /readyz while %s was killed and restarted:\n%s", node.Name(), &s.readiness)
}

// TestPartition cuts the node a worker is connected to off from its peers
// for a while, then heals it.
func TestPartition(t *testing.T) {
	s, node := loadAndPickNode(t, "part")
	ctx := context.Background()
	fault := time.Now()
	if err := node.Partition(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second)
	if err := node.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitRecovered(fault, 3*time.Minute)
	s.check(3 * time.Minute)
}

// TestQuorumLoss kills two of the three NATS nodes mid-load: no stream or
// consumer has a quorum until they are back, however long that takes. The
// nodes stay down until every worker says so on /readyz (503 with the
// reason); once they are back the workers take jobs again by themselves
// and nothing is lost.
func TestQuorumLoss(t *testing.T) {
	s, survivor := loadAndPickNode(t, "quorum")
	ctx := context.Background()
	fault := time.Now()
	var down []*natscluster.Node
	for _, node := range s.cluster.Nodes() {
		if node != survivor {
			if err := node.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			down = append(down, node)
		}
	}
	s.waitWorkers(2*time.Minute, "reporting the outage", func(line string) bool {
		return strings.HasPrefix(line, "503 ready=false") &&
			(strings.Contains(line, "cannot fetch jobs") || strings.Contains(line, "wait to be recorded"))
	})
	for _, node := range down {
		if err := node.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.waitRecovered(fault, 3*time.Minute)
	s.check(3 * time.Minute)
	s.waitReady(time.Minute)
	t.Logf("workers' /readyz while %s and %s were down:\n%s", down[0].Name(), down[1].Name(), &s.readiness)
}

// loadAndPickNode publishes a scenario's jobs, starts two workers, waits
// until a fifth of the jobs are done, and returns the node worker "a" is
// connected to.
func loadAndPickNode(t *testing.T, name string) (*system, *natscluster.Node) {
	s := newSystem(t, name, emulator.WithLatency(20*time.Millisecond, 0))
	a := s.startLoad(scale(), scale()/5)
	return s, s.nodeOf(a.server())
}

// startLoad publishes n jobs, starts workers "a" and "b", and waits until
// done jobs are recorded: the scenario is mid-load. It returns worker a.
// Both workers get the extra flags.
func (s *system) startLoad(n, done int, extra ...string) *workerProc {
	s.t.Helper()
	s.publish(n)
	a := s.startWorker("a", extra...)
	s.startWorker("b", extra...)
	s.waitProgress(done, 2*time.Minute)
	return a
}

// TestWorkerSIGKILL kills a worker process mid-load while a second one
// shares the load, then starts a replacement.
func TestWorkerSIGKILL(t *testing.T) {
	s := newSystem(t, "crash", emulator.WithLatency(20*time.Millisecond, 0))
	a := s.startLoad(scale(), scale()/4)
	a.kill()
	s.startWorker("a2")
	got := s.check(3 * time.Minute)
	// Only jobs a held at the kill may have been revoked twice.
	if got.DuplicateCalls > 8 {
		t.Errorf("%d duplicate revokes; at most the 8 jobs in flight at the kill", got.DuplicateCalls)
	}
}

// TestClerkFaultStorms: 5xx storm, 429 storm, an outage longer than the retry
// budget (dead letters, then a replay once Clerk is back), and a rejected key.
func TestClerkFaultStorms(t *testing.T) {
	t.Run("30% 5xx", func(t *testing.T) {
		s := newSystem(t, "errs", emulator.WithLatency(5*time.Millisecond, 0))
		s.emu.Emulator.SetFaults(emulator.Faults{ErrorRate: 0.3, Latency: 5 * time.Millisecond})
		s.publish(scale())
		s.startWorker("a")
		s.startWorker("b")
		s.waitProgress(scale()/2, 2*time.Minute)
		s.emu.Emulator.SetFaults(emulator.Faults{Latency: 5 * time.Millisecond})
		if got := s.check(3 * time.Minute); got.Succeeded != got.Published {
			t.Errorf("with retries every job should succeed: %s", got)
		}
	})
	t.Run("429 storm", func(t *testing.T) {
		s := newSystem(t, "limit", emulator.WithRateLimit(200, time.Second))
		s.publish(scale())
		s.startWorker("a")
		s.startWorker("b")
		got := s.check(3 * time.Minute)
		if got.Succeeded != got.Published {
			t.Errorf("throttled jobs must wait, not fail: %s", got)
		}
		limited := 0
		for _, c := range s.emu.Emulator.Calls() {
			if c.Status == 429 {
				limited++
			}
		}
		if limited == 0 {
			t.Errorf("no 429 answered: the storm did not happen")
		}
		t.Logf("429 answers: %d", limited)
	})
	t.Run("outage longer than the retry budget", func(t *testing.T) {
		s := newSystem(t, "outage")
		s.emu.Emulator.SetFaults(emulator.Faults{ErrorRate: 1})
		s.publish(scale() / 2)
		t.Logf("published %s", time.Now().Format("15:04:05.000"))
		s.startWorker("a", "--max-deliveries", "2", "--retry-budget", "100ms", "--nak-delay", "50ms")
		s.startWorker("b", "--max-deliveries", "2", "--retry-budget", "100ms", "--nak-delay", "50ms")
		got := s.check(3 * time.Minute)
		if got.DeadLettered != got.Published || got.Classes["exhausted"] != got.Published {
			t.Fatalf("every job should be dead-lettered as exhausted: %s", got)
		}
		s.emu.Emulator.SetFaults(emulator.Faults{})
		out := s.runPublish("dlq", "replay", "--all")
		t.Logf("replay (%s): %s", time.Now().Format("15:04:05.000"), strings.TrimSpace(lastLine(out)))
		s.waitResults(got.Published, 3*time.Minute)
		if n := len(s.deadLetters()); n != 0 {
			t.Errorf("%d dead letters left after the replay", n)
		}
	})
	t.Run("key rejected", func(t *testing.T) {
		s := newSystem(t, "key")
		s.emu.Emulator.SetFaults(emulator.Faults{RejectKey: true})
		s.publish(scale())
		s.startWorker("a")
		s.startWorker("b")
		time.Sleep(3 * time.Second)
		if n := s.progress(); n != 0 {
			t.Fatalf("%d jobs recorded while Clerk rejected the key; want none (circuit open)", n)
		}
		s.emu.Emulator.SetFaults(emulator.Faults{})
		if got := s.check(3 * time.Minute); got.Succeeded != got.Published || got.DeadLettered != 0 {
			t.Errorf("after the key is accepted every job should succeed, none dead-lettered: %s", got)
		}
	})
}

// TestRestartAllNodes stops and starts every broker (file storage) mid-load.
func TestRestartAllNodes(t *testing.T) {
	s := newSystem(t, "restart", emulator.WithLatency(20*time.Millisecond, 0))
	s.startLoad(scale(), scale()/5)
	ctx := context.Background()
	fault := time.Now()
	for _, node := range s.cluster.Nodes() {
		if err := node.Stop(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range s.cluster.Nodes() {
		if err := node.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.waitRecovered(fault, 3*time.Minute)
	s.check(3 * time.Minute)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
