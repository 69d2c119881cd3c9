package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestReplyToCheckFailureLogsNoSecret: a job's reply_to is the
// publisher's text, stored nowhere and cleared of anything shaped like a
// secret in every error about it. When whether a stream captures it
// cannot be found out (JetStream does not answer), the job is naked to be
// tried again, and that nak's log line quoted the reply_to as it came: a
// key pasted into it reached the log.
func TestReplyToCheckFailureLogsNoSecret(t *testing.T) {
	// The worker's user may not ask which stream captures a subject:
	// the check fails as it does while JetStream cannot answer.
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["$JS.API.STREAM.NAMES"]}}`)
	admin, workerNC := testenv.ConnectAs(t, s, "admin"), testenv.ConnectAs(t, s, "worker")
	logs := &testenv.SyncBuffer{}
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	cfg.Logger = zerolog.New(logs)
	emu := runWorkerOn(t, workerNC, cfg)
	sess := emu.Emulator.UserSessionIDs(emu.Emulator.Seed(1, 1)[0])[0]

	const key = "sk_" + "live_0123456789abcdefghij" // built, so no scanner takes the file for a leak
	body := `{"job_id":"r1","session_id":"` + sess + `","reply_to":"_INBOX.` + key + `.x"}`
	if err := admin.Publish(cfg.Topology.Subjects.Job(jobs.OpRevoke), []byte(body)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the reply_to check failed and the job was naked", func() bool {
		return strings.Contains(logs.String(), "cannot check the reply subject")
	})
	if strings.Contains(logs.String(), key) {
		t.Errorf("the key in reply_to reached the log:\n%s", logs.String())
	}
}

// runWorkerOn runs a worker with cfg on nc, a connection to a server the
// test configured itself, against an emulator of its own, which it
// returns.
func runWorkerOn(t *testing.T, nc *nats.Conn, cfg worker.Config) *emulator.Server {
	t.Helper()
	emu := emulator.NewServer()
	t.Cleanup(emu.Close)
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(emu.URL))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(nc, clerk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	clerkjobstest.Run(t, w)
	return emu
}
