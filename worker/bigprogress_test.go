package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestRevokeAllOutgrowingItsCheckpoint: a revoke_all's progress is one
// key-value entry, about 45 bytes per session handled, and NATS takes at
// most max_payload in one message (1 MB by default: some 20,000 sessions).
// A job past that revoked every session, then failed to save its progress
// at the end and counted that as its own failure: retried on every
// delivery, it ended dead-lettered as exhausted. A checkpoint that cannot
// be saved costs only a recount after a crash; the job succeeds. Here the
// server takes 100 KB, about 2,000 sessions.
func TestRevokeAllOutgrowingItsCheckpoint(t *testing.T) {
	nc := testenv.ConnectWithMaxPayload(t, "100KB")
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	bulkWorker(&cfg)
	emu := runWorkerOn(t, nc, cfg)
	user := emu.Emulator.CreateUser()
	const n = 3000
	ids := emu.Emulator.CreateSessions(user, n)
	c, err := clerkjobs.NewClient(nc, clerkjobs.WithTopology(cfg.Topology))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.Request(ctx, &jobs.RevokeAllArgs{UserID: user})
	if err != nil {
		t.Fatalf("revoke_all of %d sessions: %v", n, err)
	}
	var sum jobs.RevokeAllSummary
	if err := json.Unmarshal(res.Result, &sum); err != nil || sum.Revoked != n {
		t.Errorf("summary %+v (%v): want %d revoked", sum, err, n)
	}
	for _, id := range ids {
		if s, _ := emu.Emulator.Session(id); s.Status == clerkapi.StatusActive {
			t.Fatalf("session %s still active", id)
		}
	}
}

// TestRevokeAllNamesAtMostAThousandFailures: the result named every session
// that could not be revoked, so enough of them (some 30,000 at NATS's
// default max_payload) made a result too big to store. It names the first
// 1,000, sorted, and counts them all; each one's dead letter names it.
func TestRevokeAllNamesAtMostAThousandFailures(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	const n = jobs.MaxFailedSessionIDs + 1
	for _, id := range emu.CreateSessions(user, n) {
		emu.FailSession(id, 422) // refused for good
	}
	env.StartWorker(t, bulkWorker)
	r, _, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	var sum jobs.RevokeAllSummary
	testenv.DecodeJSON(t, r.Result, &sum)
	if sum.Failed != n || len(sum.FailedSessionIDs) != jobs.MaxFailedSessionIDs || !slices.IsSorted(sum.FailedSessionIDs) {
		t.Errorf("failed %d, %d ids named (sorted: %v); want %d failed, the first %d named", sum.Failed, len(sum.FailedSessionIDs), slices.IsSorted(sum.FailedSessionIDs), n, jobs.MaxFailedSessionIDs)
	}
	if got := env.StreamCount(t, env.Topology.DeadLetterStream); got != n {
		t.Errorf("%d dead letters, want one per failed session (%d)", got, n)
	}
}

// TestResultLargerThanMaxPayloadIsDeadLettered: a result no NATS server of
// the cluster takes in one message (here a list of 200 sessions on a server
// that takes 16 KB) was parked like a record refused by a full stream:
// kept and retried for ever, the worker not ready and its slot held, and
// the requester waiting for nothing. Sending it again cannot help, so the
// job is dead-lettered at once, saying which limit and what to do.
func TestResultLargerThanMaxPayloadIsDeadLettered(t *testing.T) {
	nc := testenv.ConnectWithMaxPayload(t, "16KB")
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	emu := runWorkerOn(t, nc, cfg)
	user := emu.Emulator.CreateUser()
	emu.Emulator.CreateSessions(user, 200)
	c, err := clerkjobs.NewClient(nc, clerkjobs.WithTopology(cfg.Topology))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Request(ctx, &jobs.ListArgs{UserID: user, Limit: 200})
	var je *clerkjobs.JobError
	if !errors.As(err, &je) {
		t.Fatalf("list of 200 sessions on a server taking 16 KB: %+v, %v; want the job dead-lettered", res, err)
	}
	if je.Class != jobs.ClassPermanent || !strings.Contains(je.Message, "max_payload") || !strings.Contains(je.Message, "16384") {
		t.Errorf("dead-lettered as %s: %q; want permanent, naming max_payload and its 16384 bytes", je.Class, je.Message)
	}
	// The small result of another job is stored as before: nothing is
	// left waiting.
	if _, err := c.Request(ctx, &jobs.ListArgs{UserID: user, Limit: 2}); err != nil {
		t.Errorf("a list of 2 sessions after it: %v", err)
	}
}

// TestResultLargerThanItsStreamTakesIsDeadLettered: the same for a results
// stream given a max message size by an operator (nats stream edit): the
// stream refuses the result however often it is sent (until a worker's
// start sets the stream back), so its job is dead-lettered, naming the
// stream.
func TestResultLargerThanItsStreamTakesIsDeadLettered(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := env.JS.Stream(ctx, env.Topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 8 << 10
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	user := env.Clerk.Emulator.CreateUser()
	env.Clerk.Emulator.CreateSessions(user, 100)
	res, err := env.Client.Request(ctx, &jobs.ListArgs{UserID: user, Limit: 100})
	var je *clerkjobs.JobError
	if !errors.As(err, &je) {
		t.Fatalf("list of 100 sessions to a results stream taking 8 KiB: %+v, %v; want the job dead-lettered", res, err)
	}
	if je.Class != jobs.ClassPermanent || !strings.Contains(je.Message, env.Topology.ResultsStream) || !strings.Contains(je.Message, "8192") {
		t.Errorf("dead-lettered as %s: %q; want permanent, naming the stream %s and its 8192 bytes", je.Class, je.Message, env.Topology.ResultsStream)
	}
	if _, err := env.Client.Request(ctx, &jobs.ListArgs{UserID: user, Limit: 2}); err != nil {
		t.Errorf("a list of 2 sessions after it: %v", err)
	}
}

// TestDeadLetterLargerThanMaxPayloadIsStoredWithoutTheBody: a dead letter
// is the job's body and headers that say why (the error, the history, up
// to some 10 KB), so a job a little under max_payload made a dead letter
// over it. It was parked like a record refused by a full stream, and
// retried for ever: the worker not ready, its slot held, and raising
// max_payload does not reach a connected client. No retry can store it,
// so it is stored without the body, which its Dlq-Redacted header says
// (not replayable), and the job is acked.
func TestDeadLetterLargerThanMaxPayloadIsStoredWithoutTheBody(t *testing.T) {
	// Invalid (an unknown member), and some 16 KB: the job fits, its
	// dead letter would not.
	body := `{"session_id":"sess_1","note":"` + strings.Repeat("word ", 3250) + `"}`
	js, cfg, dl, data := bigJobsDeadLetter(t, body)
	if dl.Error.Class != jobs.ClassInvalid || !slices.Contains(dl.Redacted, "body") || dl.Replayable() || len(data) != 0 {
		t.Errorf("dead letter %+v with %d bytes of body; want the job's, invalid, without its body and saying so", dl, len(data))
	}
	jst, err := js.Stream(t.Context(), cfg.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the job acked", func() bool {
		info, err := jst.Info(t.Context())
		return err == nil && info.State.Msgs == 0
	})
}

// bigJobsDeadLetter runs a worker on a server whose max_payload is 16 KB,
// publishes body as a revoke job, and returns its dead letter once stored.
func bigJobsDeadLetter(t *testing.T, body string) (jetstream.JetStream, worker.Config, jobs.DeadLetter, []byte) {
	t.Helper()
	nc := testenv.ConnectWithMaxPayload(t, "16KB")
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	runWorkerOn(t, nc, cfg)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, cfg.Topology.Subjects.Job(jobs.OpRevoke), []byte(body)); err != nil {
		t.Fatal(err)
	}
	dlq, err := js.Stream(ctx, cfg.Topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the job dead-lettered", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	m, err := dlq.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := jobs.ParseDeadLetter(m.Header)
	if err != nil {
		t.Fatal(err)
	}
	return js, cfg, dl, m.Data
}
