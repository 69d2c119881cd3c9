package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestResultsStreamWithoutAcksStillAnswers: a results stream set to no_ack
// while the workers ran (nats stream edit --no-ack) stores each result and
// never confirms it. The worker asked twice, 10 s each, then found the
// record and took it for another delivery's: the job was acked as "already
// recorded" and its requester never answered (a Request learned the result
// only from its last look at its deadline), and nothing said why. The
// record carries this delivery's Nats-Msg-Id, so it is taken as its own:
// the job is answered, and the worker says why it waited. (A plain inbox
// hears the answer: the Go client now finds such a record by itself.)
func TestResultsStreamWithoutAcksStillAnswers(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t)
	ctx := context.Background()
	s, err := env.JS.Stream(ctx, env.Topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.NoAck = true
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// The answer itself, on a plain inbox: the Go client would find the
	// record on its own while it waits.
	inbox := env.NC.NewInbox()
	sub, err := env.NC.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if _, err := jobs.Publish(ctx, env.JS, env.Topology.Subjects, &jobs.RevokeArgs{SessionID: id, Common: jobs.Common{ReplyTo: inbox}}); err != nil {
		t.Fatal(err)
	}
	// Past the two unanswered publishes (20 s).
	answer, err := sub.NextMsg(40 * time.Second)
	if err != nil {
		t.Fatalf("no answer on the job's reply_to: %v", err)
	}
	var res jobs.Result
	if err := json.Unmarshal(answer.Data, &res); err != nil || res.Outcome != jobs.Succeeded {
		t.Fatalf("answer %s: %v; want succeeded", answer.Data, err)
	}
	logs := env.Logs.String()
	if strings.Contains(logs, "already recorded by another delivery") {
		t.Errorf("the delivery's own result was taken for another delivery's")
	}
	if !strings.Contains(logs, "no_ack") {
		t.Errorf("the worker did not say why records wait")
	}
	if n := emu.RevokeCount(id); n != 1 {
		t.Errorf("revoked %d times", n)
	}
}
