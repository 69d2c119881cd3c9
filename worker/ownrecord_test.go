package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestOwnRecordFoundAfterTheDedupWindowIsTheDeliverysOwn: a delivery's
// record was stored and its acknowledgement lost, and the delivery asks
// again only after the stream's deduplication window (JetStream out of
// reach for longer than that). The server refuses the record as the
// subject's second; the record found there carries this delivery's
// Nats-Msg-Id. It was taken for another delivery's: the job was acked as
// "already recorded", its requester never answered. It is this
// delivery's: answered, and acked as succeeded.
func TestOwnRecordFoundAfterTheDedupWindowIsTheDeliverysOwn(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(2*time.Second, 0))
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	ctx := context.Background()
	const instance = "w-own"
	env.StartWorker(t, func(c *worker.Config) { c.Instance = instance })
	s, err := env.JS.Stream(ctx, env.Topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = time.Second
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	sub, err := env.NC.SubscribeSync("_INBOX.own.answers")
	if err != nil {
		t.Fatal(err)
	}
	subject := env.Topology.Subjects.Job(jobs.OpRevoke)
	body := []byte(`{"job_id":"own-1","session_id":"` + sess + `","reply_to":"_INBOX.own.answers"}`)
	ack := env.PublishRaw(t, subject, body)
	// What the worker stored before its acknowledgement was lost, while
	// Clerk answers the revoke.
	k := jobs.RecordKey{Op: jobs.OpRevoke, JobID: "own-1", Gen: generation(t, env), Seq: ack.Sequence}
	rs := env.Topology.Subjects.Result(k)
	m := &nats.Msg{Subject: rs, Data: []byte(`{"job_id":"own-1","op":"revoke","outcome":"succeeded"}`), Header: nats.Header{
		jetstream.MsgIDHeader: {instance + "/1/" + rs}, jobs.HeaderJobDigest: {jobs.Digest(subject, body)},
	}}
	if _, err := env.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // past the window; Clerk answers after 2 s
	if _, err := sub.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("the requester was not answered: %v", err)
	}
	testenv.Eventually(t, 5*time.Second, "the job acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	if strings.Contains(env.Logs.String(), "already_recorded") {
		t.Errorf("the delivery's own record was taken for another delivery's")
	}
}
