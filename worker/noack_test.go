package worker_test

import (
	"context"
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
// the job is answered, and the worker says why it waited.
func TestResultsStreamWithoutAcksStillAnswers(t *testing.T) {
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
	// Past the two unanswered publishes (20 s), short of the last look.
	rctx, cancel := context.WithTimeout(ctx, 28*time.Second)
	defer cancel()
	start := time.Now()
	res, err := env.Client.Request(rctx, &jobs.RevokeArgs{SessionID: id})
	if err != nil || res.Outcome != jobs.Succeeded {
		t.Fatalf("request: %+v, %v", res, err)
	}
	if took := time.Since(start); took > 25*time.Second {
		t.Errorf("answered after %s: the answer never came, the result was found at the request's deadline", took.Round(time.Second))
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
