package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/worker"
)

// Exactly one terminal record per job, whatever the timing: these
// scenarios make two deliveries of the same job race to record it.

// TestLateWorker freezes a worker (SIGSTOP) while it holds jobs whose Clerk
// calls are under way, lets their redeliveries be recorded by another
// worker — as results, or as dead letters while Clerk fails — and thaws it:
// the late worker's calls succeed, and its records must not join the ones
// already stored.
func TestLateWorker(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault emulator.Faults // what the second worker's calls meet
		// What the late worker logs for each job it held: the result
		// found, or its own result replacing the dead letter (a result
		// wins: the job's Clerk call succeeded).
		late string
	}{
		{"redelivery succeeds", emulator.Faults{}, "job already recorded"},
		{"redelivery dead-lettered", emulator.Faults{ErrorRate: 1}, "dead letter removed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSystem(t, "late", emulator.WithLatency(3*time.Second, 0))
			s.publish(40)
			// The same consumer settings for both: the second delivery is
			// the last, so a failing one is dead-lettered quickly.
			args := []string{"--concurrency", "8", "--max-deliveries", "2", "--retry-budget", "500ms", "--nak-delay", "100ms"}
			a := s.startWorker("a", args...)
			s.waitInFlight("a", 8, time.Minute)
			// A job is in flight before its Clerk call is sent: stopped
			// then, the call would meet the faults set below once a is
			// thawed, and a would not be late. The emulator answers after
			// 3 s: a second lets every call reach it, and none return.
			// (A CI run failed here with 2 of the 8 calls unsent.)
			time.Sleep(time.Second)
			if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			s.emu.Emulator.SetFaults(emulator.Faults{ErrorRate: c.fault.ErrorRate, Latency: 50 * time.Millisecond})
			s.startWorker("b", args...)
			s.waitProgress(40, 2*time.Minute) // every job recorded by b, a still frozen
			if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			// a's calls answer now; each job must still end with one record.
			s.waitLog(a, 8, time.Minute, c.late, func(l logLine) bool { return strings.HasPrefix(l.Message, c.late) })
			got := s.check(time.Minute)
			if got.Succeeded < 8 {
				t.Errorf("%d jobs with a result; want at least the 8 the late worker revoked", got.Succeeded)
			}
			t.Logf("late worker: %s", got)
		})
	}
}

// TestRecordsThroughNATSKill SIGKILLs every NATS node mid-load, so that
// records are stored without their confirmation reaching the worker, and
// makes Clerk fail every call once the cluster is back: each redelivered
// job whose result was stored must find it, or have its dead letter
// removed once the result is seen, never keep both.
func TestRecordsThroughNATSKill(t *testing.T) {
	// 2 workers × 8 jobs / 100 ms: the load lasts about 12 s.
	s := newSystem(t, "unconf", emulator.WithLatency(100*time.Millisecond, 0))
	n := scale()
	// The second delivery is the last: a redelivery that misses its job's
	// result dead-letters it at once.
	s.startLoad(n, n/4, "--max-deliveries", "2")
	ctx := context.Background()
	fault := time.Now()
	for _, node := range s.cluster.Nodes() {
		if err := node.Kill(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.emu.Emulator.SetFaults(emulator.Faults{ErrorRate: 1, Latency: 10 * time.Millisecond})
	calls := len(s.emu.Emulator.Calls())
	if calls >= n {
		t.Fatalf("%d Clerk calls before the nodes were killed: the load was over, nothing tested", calls)
	}
	t.Logf("every node SIGKILLed after %d Clerk calls", calls)
	for _, node := range s.cluster.Nodes() {
		if err := node.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.waitRecovered(fault, 3*time.Minute)
	time.Sleep(10 * time.Second) // redeliveries meet the failing Clerk
	s.emu.Emulator.SetFaults(emulator.Faults{Latency: 10 * time.Millisecond})
	got := s.check(3 * time.Minute)
	found, removed := 0, 0
	for _, w := range s.workers {
		found += w.count(func(l logLine) bool { return l.Outcome == "already_recorded" })
		removed += w.count(func(l logLine) bool { return strings.HasPrefix(l.Message, "dead letter removed") })
	}
	t.Logf("after every node was SIGKILLed, then Clerk failed: %s; %d redeliveries found their job's record and were acked, %d dead letters were removed for their job's result", got, found, removed)
}

// waitInFlight waits until the worker named instance holds at least n jobs.
func (s *system) waitInFlight(instance string, n int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := s.nc.Request(fmt.Sprintf("clerkjobs.worker.%s.status", instance), nil, time.Second)
		var st worker.Status
		if err == nil && json.Unmarshal(m.Data, &st) == nil && st.InFlight >= n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("worker %s does not hold %d jobs after %s (last: %+v, %v)", instance, n, timeout, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logLine is what the scenarios read from a worker's JSON log.
type logLine struct {
	Message string `json:"message"`
	Outcome string `json:"outcome"`
	JobID   string `json:"job_id"`
}

// waitLog waits until at least n of w's log lines satisfy ok.
func (s *system) waitLog(w *workerProc, n int, timeout time.Duration, what string, ok func(logLine) bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		count := w.count(ok)
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("worker %s logged %d lines %s after %s; want %d:\n%s", w.name, count, what, timeout, n, w.tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// count counts w's log lines that satisfy ok.
func (w *workerProc) count(ok func(logLine) bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, line := range w.logs {
		var l logLine
		if json.Unmarshal([]byte(line), &l) == nil && ok(l) {
			n++
		}
	}
	return n
}

// calls429 counts the emulator's 429 answers.
func (s *system) calls429() int {
	n := 0
	for _, c := range s.emu.Emulator.Calls() {
		if c.Status == 429 {
			n++
		}
	}
	return n
}
