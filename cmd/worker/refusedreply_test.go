package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRefusedReplyLogsNoSecret: a job's reply_to is the publisher's text,
// and a key pasted into it is kept out of every log line about the job.
// The server's refusal of the answer comes back as an asynchronous NATS
// error that quotes the subject, and the worker logged it as it came.
func TestRefusedReplyLogsNoSecret(t *testing.T) {
	// The worker's user may not publish to the reply subject, nor read
	// its own permissions: the server's refusal is the only check.
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["_INBOX.denied.>", "$SYS.REQ.USER.INFO"]}}`)
	emu := emulator.NewServer()
	t.Cleanup(emu.Close)
	session := emu.Emulator.UserSessionIDs(emu.Emulator.Seed(1, 1)[0])[0]
	env := map[string]string{"NATS_URL": s.ClientURL(), "NATS_USER": "worker", "NATS_PASSWORD": "worker",
		"CLERK_SECRET_KEY": emulator.DefaultSecretKey, "CLERK_API_URL": emu.URL}
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--metrics-addr", "", "--log-format", "json", "--instance", "w1"}, func(k string) string { return env[k] }, logs, logs)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the worker did not stop")
		}
	}()
	testenv.Eventually(t, 20*time.Second, "worker started", func() bool { return strings.Contains(logs.String(), "worker started") })
	admin, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	const key = "sk_" + "live_0123456789abcdefghij"
	body := `{"job_id":"r1","session_id":"` + session + `","reply_to":"_INBOX.denied.` + key + `.x"}`
	if err := admin.Publish(jobs.Subjects{}.Job(jobs.OpRevoke), []byte(body)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the refusal logged", func() bool {
		return strings.Contains(logs.String(), `Publish to \"_INBOX.denied.`)
	})
	if strings.Contains(logs.String(), key) {
		t.Errorf("the key in reply_to reached the log:\n%s", logs.String())
	}
}
