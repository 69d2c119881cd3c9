package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// The test binary runs main itself when asked to, so that the tests below
// see the real process: exit statuses and signals.
func TestMain(m *testing.M) {
	if os.Getenv("PUBLISH_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func command(t *testing.T, natsURL string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PUBLISH_TEST_RUN_MAIN=1", "NATS_URL="+natsURL)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	return cmd, &out, &errOut
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("run: %v", err)
	return -1
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"revok"}, 2},
		{[]string{"revoke", "not-a-session"}, 2},
		{[]string{"revoke", "sess_1"}, 4}, // nothing listens on port 1
	}
	for _, tt := range tests {
		cmd, _, errOut := command(t, "nats://127.0.0.1:1", tt.args...)
		if got := exitCode(t, cmd.Run()); got != tt.want {
			t.Errorf("publish %v: exit %d, want %d; stderr: %s", tt.args, got, tt.want, errOut)
		}
	}
}

// TestInterrupt sends SIGINT to a slow replay: it stops between dead
// letters, reports what it did, and exits 130; nothing is lost.
func TestInterrupt(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker(), clerkjobstest.WithTopology(jobs.DefaultTopology()))
	js, topo := env.JetStream, env.Topology
	const n = 30
	for i := range n {
		d := jobs.DeadLetter{Subject: "sessions.revoke", Op: jobs.OpRevoke, Error: jobs.ErrorInfo{Class: jobs.ClassExhausted, Message: "x"}}
		m := nats.NewMsg(topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "j", Gen: "g", Seq: uint64(i + 1)}))
		m.Header, m.Data = d.Header(), []byte(`{"session_id":"sess_1"}`)
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	cmd, out, errOut := command(t, env.URL, "dlq", "replay", "--all", "--rate", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd.Wait()); code != 130 || !strings.Contains(errOut.String(), "interrupted") || !strings.Contains(out.String(), "not attempted") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	count := func(stream string) uint64 {
		st, err := js.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	replayed, left := count(topo.JobsStream), count(topo.DeadLetterStream)
	if replayed == 0 || replayed+left != n {
		t.Fatalf("%d replayed + %d left, want %d in all", replayed, left, n)
	}
}
