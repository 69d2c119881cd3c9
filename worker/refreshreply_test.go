package worker_test

import (
	"fmt"
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

// TestRefreshWhoseReplyFailsIsNotSentAgain: Clerk carried out a refresh,
// and its answer could not be delivered to reply_to (the server refused
// the publish; a connection lost before the flush is answered ends the
// same way). The job was naked and its spent refresh token sent to Clerk
// again on the next delivery. The refresh cannot be done again: it is
// dead-lettered as permanent after its one call.
func TestRefreshWhoseReplyFailsIsNotSentAgain(t *testing.T) {
	// The worker's user may not publish to the reply subject, and may not
	// read its own permissions, so only the server's refusal tells.
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["_INBOX.denied.>", "$SYS.REQ.USER.INFO"]}}`)
	admin, workerNC := testenv.ConnectAs(t, s, "admin"), testenv.ConnectAs(t, s, "worker")
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	cfg.Logger = zerolog.New(&testenv.SyncBuffer{})
	srv := runWorkerOn(t, workerNC, cfg)
	emu := srv.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	refreshToken := emu.RefreshToken(id)
	body, err := jobs.Encode(&jobs.RefreshArgs{Common: jobs.Common{JobID: "refresh-unreplied", ReplyTo: "_INBOX.denied.req"},
		SessionID: id, ExpiredToken: emu.SessionToken(id, -time.Minute), RefreshToken: refreshToken, RequestOrigin: "https://app.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Publish(cfg.Topology.Subjects.Job(jobs.OpRefresh), body); err != nil {
		t.Fatal(err)
	}
	refreshes := func() int { return callsTo(emu, emulator.OpRefreshSession) }
	testenv.Eventually(t, 10*time.Second, "the refresh sent", func() bool { return refreshes() >= 1 })
	time.Sleep(3 * time.Second) // a redelivery's time (nak delays of milliseconds)
	if n := refreshes(); n != 1 {
		t.Errorf("the refresh was sent %d times; want once", n)
	}
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	msgs := testenv.StreamMsgs(t, js, cfg.Topology.DeadLetterStream)
	if len(msgs) != 1 {
		t.Fatalf("%d dead letters; want the refresh's", len(msgs))
	}
	dl, err := jobs.ParseDeadLetter(msgs[0].Header)
	if err != nil || dl.Error.Class != jobs.ClassPermanent {
		t.Errorf("dead letter %+v, %v; want a permanent one", dl.Error, err)
	}
	if all := fmt.Sprint(msgs[0].Header) + string(msgs[0].Data); strings.Contains(all, refreshToken) {
		t.Errorf("the refresh token is in the dead letter")
	}
}
