package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestOldRefusalOfAReplySubjectIsNotThisReplys: the NATS connection keeps
// its last error until another replaces it, and a secret answer counted as
// refused whenever that error named its subject. An error from before the
// answer was sent (a reply refused under permissions since widened, or, as
// here, a refusal on the same connection that names the subject) made
// every secret answer to that subject count as refused, though the server
// took it: the token job was naked, minted and sent again at each
// delivery, and never recorded. Only an error that comes while the answer
// is sent counts.
func TestOldRefusalOfAReplySubjectIsNotThisReplys(t *testing.T) {
	const reply = "_INBOX.fixed.answers"
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["$SYS.REQ.USER.INFO"]}, subscribe: {deny: ["`+reply+`"]}}`)
	admin, workerNC := testenv.ConnectAs(t, s, "admin"), testenv.ConnectAs(t, s, "worker")
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	cfg.Logger = zerolog.New(&testenv.SyncBuffer{})
	srv := runWorkerOn(t, workerNC, cfg)
	emu := srv.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	// The connection's last error names the reply subject.
	if _, err := workerNC.SubscribeSync(reply); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the refusal on the connection", func() bool {
		err := workerNC.LastError()
		return err != nil && strings.Contains(err.Error(), `"`+reply+`"`)
	})
	sub, err := admin.SubscribeSync(reply)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jobs.Encode(&jobs.TokenArgs{Common: jobs.Common{JobID: "token-1", ReplyTo: reply}, SessionID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Publish(cfg.Topology.Subjects.Job(jobs.OpToken), b); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the token job recorded", func() bool {
		return len(testenv.StreamMsgs(t, js, cfg.Topology.ResultsStream)) == 1
	})
	time.Sleep(time.Second)
	if n, _, _ := sub.Pending(); n != 1 {
		t.Errorf("%d answers to one token job; want 1, its token", n)
	}
	tokens := callsTo(emu, emulator.OpCreateSessionToken)
	if tokens != 1 {
		t.Errorf("%d tokens minted for one job; want 1", tokens)
	}
}
