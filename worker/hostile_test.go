package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/netproxy"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/schemas"
	"github.com/clerkjobs/clerkjobs/worker"
)

// publishMsg stores a message in the jobs stream as any NATS client could
// send it: any subject the stream captures, any headers, any body.
func publishMsg(t *testing.T, env *testenv.Env, subject string, h nats.Header, body string) *jetstream.PubAck {
	t.Helper()
	m := &nats.Msg{Subject: subject, Header: h, Data: []byte(body)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := env.JS.PublishMsg(ctx, m)
	if err != nil {
		t.Fatalf("publish to %.60s: %v", subject, err)
	}
	return ack
}

// deadLetters parses every dead letter, keyed by job id.
func deadLetters(t *testing.T, env *testenv.Env) map[string]jobs.DeadLetter {
	t.Helper()
	out := map[string]jobs.DeadLetter{}
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		dl, err := jobs.ParseDeadLetter(m.Header)
		if err != nil {
			t.Fatalf("dead letter %s: %v", m.Subject, err)
		}
		out[dl.JobID] = dl
	}
	return out
}

// TestOneMessageCannotStopTheWorker: values a publisher controls (headers,
// subject tokens, body) reach subjects, keys, headers and log lines only
// bounded and checked. A job id of 3,000 characters in Nats-Msg-Id once made
// the worker ask for a key beyond the server's control line, which closed
// its connection for good. Each hostile message is dead-lettered as invalid
// under a bounded id, and good jobs published after them succeed.
func TestOneMessageCannotStopTheWorker(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	sessions := emu.CreateSessions(user, 3)
	w := env.StartWorker(t)
	long := strings.Repeat("x", 3000)
	hostile := []struct {
		subject string
		header  nats.Header
		body    string
	}{
		{"sessions.revoke_all", nats.Header{jetstream.MsgIDHeader: {long}}, `{"user_id":"user_x"}`},
		{"sessions.revoke", nats.Header{jetstream.MsgIDHeader: {"id\x1b[2J\nforged line"}}, `{"session_id":"sess_1"}`},
		{"sessions.revoke", nats.Header{jobs.HeaderReplays: {long}}, `{"session_id":"sess_2","job_id":"h-3"}`},
		{"sessions." + long[:1000], nil, `{"session_id":"sess_1"}`},
		{"sessions.tenant." + long[:200] + ".revoke", nil, `{"session_id":"sess_1"}`},
		{"sessions.tenant.svc_a.revoke", nats.Header{jetstream.MsgIDHeader: {long + "y"}}, `{"session_id":"sess_1"}`},
		{"sessions.token.request", nil, `{"session_id":"sess_1","reply_to":"_INBOX.` + long[:300] + `"}`},
	}
	var seqs []uint64
	for _, h := range hostile {
		seqs = append(seqs, publishMsg(t, env, h.subject, h.header, h.body).Sequence)
	}
	for i, s := range sessions {
		env.Publish(t, &jobs.RevokeArgs{SessionID: s, Common: jobs.Common{JobID: fmt.Sprintf("good-%d", i)}})
	}
	testenv.Eventually(t, 20*time.Second, "the good jobs succeed", func() bool { return len(env.Results(t)) == len(sessions) })
	testenv.Eventually(t, 20*time.Second, "every hostile message dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == uint64(len(hostile))
	})
	if err := w.Worker.Ready(); err != nil {
		t.Errorf("worker not ready after hostile messages: %v", err)
	}
	if !env.NC.IsConnected() {
		t.Errorf("the connection did not survive")
	}
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		if len(m.Subject) > 200 {
			t.Errorf("dead-letter subject of %d bytes", len(m.Subject))
		}
		dl, err := jobs.ParseDeadLetter(m.Header)
		if err != nil {
			t.Fatal(err)
		}
		if dl.Error.Class != jobs.ClassInvalid && dl.JobID != "h-3" {
			t.Errorf("dead letter %q: class %s, want invalid", dl.JobID, dl.Error.Class)
		}
		if err := jobs.CheckJobID(dl.JobID); err != nil {
			t.Errorf("dead letter recorded under an unusable id: %v", err)
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if len(v) > 4096 || strings.ContainsAny(v, "\r\n\x1b") {
					t.Errorf("header %s is %d bytes or holds control characters", k, len(v))
				}
			}
		}
	}
	// The long Nats-Msg-Id job is recorded as seq-<n>.
	if _, ok := deadLetters(t, env)[fmt.Sprintf("seq-%d", seqs[0])]; !ok {
		t.Errorf("the job with the 3,000-character Nats-Msg-Id is not dead-lettered as seq-%d", seqs[0])
	}
	for _, line := range strings.Split(env.Logs.String(), "\n") {
		if len(line) > 8192 {
			t.Errorf("a log line of %d bytes", len(line))
		}
	}
}

// TestConnectionClosedEndsRun: a connection the client gives up on is not
// a live process doing nothing: Run returns ErrConnectionClosed and Live
// fails, so that /healthz fails and the supervisor restarts the process.
// That holds while the worker takes no jobs too: with the circuit open
// (Clerk refuses the key), the fetch loop waited for it to close and never
// looked at the connection, and Run never returned.
func TestConnectionClosedEndsRun(t *testing.T) {
	for _, circuitOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "taking jobs", true: "circuit open"}[circuitOpen], func(t *testing.T) {
			env := testenv.New(t)
			nc, err := nats.Connect(env.NATSURL)
			if err != nil {
				t.Fatal(err)
			}
			w, err := worker.New(nc, env.ClerkClient(t, ""), env.WorkerConfig())
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- w.Run(context.Background()) }()
			testenv.Eventually(t, 10*time.Second, "ready", func() bool { return w.Ready() == nil })
			if circuitOpen {
				emu := env.Clerk.Emulator
				id := emu.CreateSessions(emu.CreateUser(), 1)[0]
				emu.SetFaults(emulator.Faults{RejectKey: true})
				env.Publish(t, &jobs.RevokeArgs{SessionID: id})
				testenv.Eventually(t, 10*time.Second, "circuit open", func() bool { return w.Status().CircuitOpen })
			}
			nc.Close()
			select {
			case err := <-done:
				if !errors.Is(err, worker.ErrConnectionClosed) {
					t.Errorf("Run = %v, want ErrConnectionClosed", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after the connection closed")
			}
			if w.Live() == nil {
				t.Errorf("Live() = nil with the connection closed")
			}
			rec := httptest.NewRecorder()
			w.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("/healthz = %d with the connection closed, want 503", rec.Code)
			}
		})
	}
}

// TestFlakyNetworkNeverBlamesJobsForTheKey: with the key rejected and
// connections dropped, a dropped probe once counted as "Clerk accepts the
// key", and jobs refused 401 again were dead-lettered as permanent. Only an
// answer that proves the key accepted may close the circuit: nothing is
// dead-lettered, and every job succeeds once the key is accepted.
func TestFlakyNetworkNeverBlamesJobsForTheKey(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 20)
	emu.SetFaults(emulator.Faults{RejectKey: true, DropRate: 0.3})
	w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 4 })
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 10*time.Second, "circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	// Many probes (every 50 ms), a third of them dropped.
	testenv.Eventually(t, 20*time.Second, "60 probes", func() bool { return len(emu.Calls()) >= 60 })
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Fatalf("%d jobs dead-lettered while Clerk rejected the key: %v", n, deadLetters(t, env))
	}
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 20*time.Second, "every job done once the key is accepted", func() bool { return len(env.Results(t)) == len(ids) })
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	if err := w.Worker.Ready(); err == nil {
		// Ready is nil: the /readyz reason never held upstream text anyway.
	} else {
		t.Errorf("not ready after recovery: %v", err)
	}
}

// takeDelivery plays a worker that took one delivery of every job waiting
// and died: the next delivery is the second.
func takeDelivery(t *testing.T, env *testenv.Env, n int) {
	t.Helper()
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range b.Messages() {
		got++
	}
	if got != n {
		t.Fatalf("took %d deliveries, want %d", got, n)
	}
}

// TestRedeliveredJobFindsItsRecord: a job whose result an earlier delivery
// stored (and whose acknowledgement was lost) is acked without calling
// Clerk again, and never gets a second record — not a second result, not a
// dead letter when Clerk now fails — however long after.
func TestRedeliveredJobFindsItsRecord(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 2)
	gen := generation(t, env)
	var keys []jobs.RecordKey
	for i, id := range ids {
		jobID := fmt.Sprintf("recorded-%d", i)
		ack := env.Publish(t, &jobs.RevokeArgs{SessionID: id, Common: jobs.Common{JobID: jobID}})
		keys = append(keys, jobs.RecordKey{Op: jobs.OpRevoke, JobID: jobID, Gen: gen, Seq: ack.Sequence})
	}
	takeDelivery(t, env, 2) // the first deliveries, never settled
	// What the dead worker stored before it died.
	for _, k := range keys {
		r, _ := json.Marshal(jobs.Result{JobID: k.JobID, Op: k.Op, Outcome: jobs.Succeeded, StreamSeq: k.Seq, FinishedAt: time.Now()})
		if _, err := env.JS.Publish(context.Background(), env.Topology.Subjects.Result(k), r); err != nil {
			t.Fatal(err)
		}
	}
	emu.SetFaults(emulator.Faults{ErrorRate: 1}) // a call now would fail
	env.StartWorker(t)
	testenv.Eventually(t, 20*time.Second, "both jobs acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	if n := len(emu.Calls()); n != 0 {
		t.Errorf("%d Clerk calls for jobs already recorded", n)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters for jobs already recorded", n)
	}
	if n := len(env.Results(t)); n != 2 {
		t.Errorf("%d results, want the 2 stored before", n)
	}
	// The server itself refuses a second record on a job's subject.
	if _, err := env.JS.Publish(context.Background(), env.Topology.Subjects.Result(keys[0]), []byte(`{}`)); err == nil {
		t.Errorf("a second result on %s was stored", env.Topology.Subjects.Result(keys[0]))
	}
}

// TestDeletedConsumerIsRecreated: the consumer deleted under a running
// worker once left it stalled and ready. It is recreated and jobs flow.
func TestDeletedConsumerIsRecreated(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 5)
	w := env.StartWorker(t)
	ctx := context.Background()
	if err := env.JS.DeleteConsumer(ctx, env.Topology.JobsStream, env.Topology.Consumer); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 30*time.Second, "every job done on a recreated consumer", func() bool { return len(env.Results(t)) == len(ids) })
	if err := w.Worker.Ready(); err != nil {
		t.Errorf("not ready after recovering: %v", err)
	}
	if !strings.Contains(env.Logs.String(), "created it again") {
		t.Errorf("the worker did not say it recreated the consumer")
	}
}

// TestDeletedResultsStreamNoRepeatedClerkCalls: with the results stream
// deleted, every delivery once called Clerk again (102 calls for 20 jobs).
// The outcome is kept while the stream is recreated: one call per job.
func TestDeletedResultsStreamNoRepeatedClerkCalls(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 20)
	env.StartWorker(t)
	if err := env.JS.DeleteStream(context.Background(), env.Topology.ResultsStream); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 30*time.Second, "20 results in a recreated stream", func() bool {
		s, err := env.JS.Stream(context.Background(), env.Topology.ResultsStream)
		return err == nil && s.CachedInfo().State.Msgs == 20
	})
	for _, id := range ids {
		if n := emu.RevokeCount(id); n != 1 {
			t.Errorf("session %s revoked %d times, want once", id, n)
		}
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// TestDeletedRateBucketHeals: the rate-budget bucket deleted by hand is
// created again like the worker's streams, and jobs go on through the
// fleet's budget. Before, every budget operation failed for good: the
// worker spent what it held, then no call went (no reserve at this limit)
// and no job finished.
func TestDeletedRateBucketHeals(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 15)
	ctx := context.Background()
	env.StartWorker(t, func(c *worker.Config) { c.RateLimit = worker.RateLimit{N: 50, Per: time.Second} })
	for _, id := range ids[:5] {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 30*time.Second, "5 results", func() bool { return len(env.Results(t)) == 5 })
	if err := env.JS.DeleteKeyValue(ctx, env.Topology.RateBucket); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[5:] {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 30*time.Second, "15 results after the bucket was deleted", func() bool { return len(env.Results(t)) == len(ids) })
	if _, err := env.JS.KeyValue(ctx, env.Topology.RateBucket); err != nil {
		t.Errorf("the rate-budget bucket: %v", err)
	}
}

// TestFullDeadLetterStreamKeepsTheClass: invalid jobs kept while the
// dead-letter stream was full once became max_deliveries (worth replaying,
// says the runbook) after it was raised; readiness flipped back after one
// success; 8 stuck jobs wrote 280 log lines a minute. The outcome is kept
// with its class, the worker stays not ready until every one is recorded,
// and logging stays bounded.
func TestFullDeadLetterStreamKeepsTheClass(t *testing.T) {
	t.Parallel() // a server of its own
	env := testenv.New(t)
	ctx := context.Background()
	topo := fillDeadLetters(t, env)
	w := env.StartWorker(t, func(c *worker.Config) { c.Topology = topo })
	for i := range 8 {
		publishMsg(t, env, "sessions.revoke", nats.Header{jetstream.MsgIDHeader: {fmt.Sprintf("bad-%d", i)}}, `not json`)
	}
	testenv.Eventually(t, 10*time.Second, "not ready: records refused", func() bool {
		err := w.Worker.Ready()
		return err != nil && strings.Contains(err.Error(), "8 job outcomes")
	})
	logsBefore := strings.Count(env.Logs.String(), "\n")
	// Longer than every delivery the jobs had (ack wait 2 s × 5): the old
	// worker naked them into max_deliveries by now.
	time.Sleep(3 * topo.AckWait * time.Duration(topo.MaxDeliver+jobs.BackstopMargin) / 2)
	if lines := strings.Count(env.Logs.String(), "\n") - logsBefore; lines > 20 {
		t.Errorf("%d log lines while 8 outcomes waited: logging must stay bounded", lines)
	}
	if n := env.StreamCount(t, topo.JobsStream); n != 8 {
		t.Fatalf("jobs stream holds %d, want the 8 jobs kept", n)
	}
	// Make room for all but a few: the worker stays not ready until all are in.
	s, _ := env.JS.Stream(ctx, topo.DeadLetterStream)
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "all 8 recorded", func() bool {
		return env.StreamCount(t, topo.JobsStream) == 0
	})
	for id, dl := range deadLetters(t, env) {
		if dl.Error.Class != jobs.ClassInvalid {
			t.Errorf("%s: class %s, want invalid", id, dl.Error.Class)
		}
	}
	if n := len(deadLetters(t, env)); n != 8 {
		t.Errorf("%d dead letters, want 8", n)
	}
	testenv.Eventually(t, 5*time.Second, "ready again", func() bool { return w.Worker.Ready() == nil })
}

// fillDeadLetters shrinks the dead-letter stream to 1 MiB and fills it: it
// refuses every letter. It returns the topology to start a worker with.
func fillDeadLetters(t *testing.T, env *testenv.Env) jobs.Topology {
	t.Helper()
	ctx := context.Background()
	topo := env.Topology
	topo.DeadLetterMaxBytes = 1 << 20
	if _, err := topo.Ensure(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	for n, size := 0, 64<<10; size >= 16; size /= 8 {
		for ; ; n++ {
			if _, err := env.JS.Publish(ctx, fmt.Sprintf("sessions.dlq.filler.%d", n), make([]byte, size)); err != nil {
				break
			}
		}
	}
	return topo
}

// TestReplyGoesNowhereItCannotBeDelivered: a token is minted only for a
// reply_to that a stream does not capture, and under the tenant's own inbox
// for a tenant's job.
func TestReplyGoesNowhereItCannotBeDelivered(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	ctx := context.Background()
	if _, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "LEAK", Subjects: []string{"_INBOX.leak.>"}}); err != nil {
		t.Fatal(err)
	}
	env.StartWorker(t)
	cases := []struct {
		subject, replyTo, why string
	}{
		{"sessions.token.request", "_INBOX.leak.tokens", "LEAK"},
		{"sessions.token.request", "orders.created", "allowed reply prefix"},
		{"sessions.tenant.svc_a.token.request", "_INBOX.svc_b.x", "allowed reply prefix"},
		{"sessions.tenant.svc_a.token.request", "_INBOX.x", "allowed reply prefix"},
		{"sessions.token.request", "_INBOX.a\x00b", "reply_to"},
		{"sessions.token.request", "_INBOX.a\u00a0b", "reply_to"},
	}
	var seqs []uint64
	for i, c := range cases {
		body, _ := json.Marshal(map[string]string{"job_id": fmt.Sprintf("r-%d", i), "session_id": id, "reply_to": c.replyTo})
		seqs = append(seqs, publishMsg(t, env, c.subject, nil, string(body)).Sequence)
	}
	testenv.Eventually(t, 10*time.Second, "every job dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == uint64(len(cases))
	})
	bySeq := map[uint64]jobs.DeadLetter{}
	for _, dl := range deadLetters(t, env) {
		bySeq[dl.StreamSeq] = dl
	}
	for i, c := range cases {
		dl := bySeq[seqs[i]]
		if dl.Error.Class != jobs.ClassInvalid || dl.Error.Field != "/reply_to" || !strings.Contains(dl.Error.Message, c.why) {
			t.Errorf("reply_to %q on %s: %+v; want invalid /reply_to mentioning %q", c.replyTo, c.subject, dl.Error, c.why)
		}
	}
	if n := len(emu.Calls()); n != 0 {
		t.Errorf("%d Clerk calls: no token may be minted for a reply that cannot be delivered", n)
	}
	if n := env.StreamCount(t, "LEAK"); n != 0 {
		t.Errorf("%d messages in LEAK", n)
	}
	// The tenant's own inbox (_INBOX.svc_a.…) works, and the record says
	// whose job it was.
	svcA, err := clerkjobs.NewClient(env.NC, clerkjobs.WithTopology(env.Topology), clerkjobs.WithTenant("svc_a"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := svcA.Request(ctx, &jobs.TokenArgs{Common: jobs.Common{JobID: "mine"}, SessionID: id})
	if err != nil || r.Tenant != "svc_a" || r.Secret.IsZero() {
		t.Errorf("the tenant's request: %+v, %v", r, err)
	}
	testenv.Eventually(t, 5*time.Second, "the result stored", func() bool { return len(env.Results(t)) == 1 })
	if s := env.StreamMsgs(t, env.Topology.ResultsStream)[0].Subject; !strings.HasPrefix(s, "sessions.results.svc_a.token.mine.") {
		t.Errorf("result on %s, want the tenant's subject", s)
	}
}

// TestSameJobIDInTwoTenantsAreTwoJobs: job ids are kept apart per tenant:
// records and progress of two tenants' "incident-77" never meet.
func TestSameJobIDInTwoTenantsAreTwoJobs(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	a, b := emu.CreateUser(), emu.CreateUser()
	emu.CreateSessions(a, 3)
	emu.CreateSessions(b, 3)
	env.StartWorker(t)
	publishMsg(t, env, "sessions.tenant.svc_a.revoke_all", nats.Header{jetstream.MsgIDHeader: {"a:incident-77"}}, fmt.Sprintf(`{"job_id":"incident-77","user_id":%q}`, a))
	publishMsg(t, env, "sessions.tenant.svc_b.revoke_all", nats.Header{jetstream.MsgIDHeader: {"b:incident-77"}}, fmt.Sprintf(`{"job_id":"incident-77","user_id":%q}`, b))
	testenv.Eventually(t, 20*time.Second, "both jobs done", func() bool { return len(env.Results(t)) == 2 })
	tenants := map[string]bool{}
	for _, r := range env.Results(t) {
		tenants[r.Tenant] = true
		var sum jobs.RevokeAllSummary
		testenv.DecodeJSON(t, r.Result, &sum)
		if sum.Revoked != 3 {
			t.Errorf("tenant %s: revoked %d, want 3", r.Tenant, sum.Revoked)
		}
	}
	if !tenants["svc_a"] || !tenants["svc_b"] {
		t.Errorf("results of tenants %v", tenants)
	}
	for _, u := range []string{a, b} {
		for _, s := range emu.UserSessionIDs(u) {
			if st, _ := emu.Session(s); st.Status != clerkapi.StatusRevoked {
				t.Errorf("session %s of %s still %s", s, u, st.Status)
			}
		}
	}
}

// echoingClerk stands for Clerk, or a proxy in front of it, that quotes the
// request in its error answers (the Authorization header, the body) with
// the given status.
func echoingClerk(t *testing.T, status *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errors":         []map[string]any{{"code": "echo " + auth, "message": "your key " + auth, "long_message": "you sent " + string(body)}},
			"clerk_trace_id": auth + string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestHostileUpstreamLeaksNoSecret: an upstream that echoes the key and a
// refresh job's tokens put them in Dlq-Error, Dlq-Clerk-Message,
// Dlq-Trace-Id, Dlq-History, the requester's reply, five log lines and
// /readyz. Every text from outside is cleared of the worker's key, the
// job's secrets and anything shaped like a secret before it goes anywhere.
func TestHostileUpstreamLeaksNoSecret(t *testing.T) {
	env := testenv.New(t)
	const key = "sk_test_echoedSecretKey0123456789"
	var status atomic.Int32
	status.Store(400)
	up := echoingClerk(t, &status)
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(key), clerkapi.WithBaseURL(up.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.WorkerConfig()
	cfg.Logger = cfg.Logger.Level(-1) // everything
	w := env.StartWorkerWith(t, clerk, cfg)
	const refresh = "opaque-refresh-token-0123456789"
	emu := env.Clerk.Emulator
	expired := emu.SessionToken(emu.CreateSessions(emu.CreateUser(), 1)[0], -time.Minute)
	results := map[string]jobs.Result{}
	for _, a := range []jobs.Args{
		&jobs.RefreshArgs{SessionID: "sess_1", ExpiredToken: expired, RefreshToken: refresh, RequestOrigin: "https://a.example",
			RequestHeaders: map[string]any{"Cookie": "__client=cookie-secret-0123456789"}},
		&jobs.TokenArgs{SessionID: "sess_2"},
		&jobs.RevokeArgs{SessionID: "sess_3"},
	} {
		results[string(a.Op())] = request(t, env, a)
	}
	status.Store(401) // a key rejection, echoed: /readyz must not repeat it
	env.Publish(t, &jobs.RevokeArgs{SessionID: "sess_4"})
	testenv.Eventually(t, 10*time.Second, "circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	rec := httptest.NewRecorder()
	w.Worker.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))

	var everything strings.Builder
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		fmt.Fprintf(&everything, "%v %s\n", m.Header, m.Data)
	}
	for op, r := range results {
		if r.Outcome != jobs.Failed {
			t.Errorf("%s: outcome %s, want failed", op, r.Outcome)
		}
		b, _ := json.Marshal(r)
		everything.Write(b)
	}
	everything.WriteString(env.Logs.String())
	everything.WriteString(rec.Body.String())
	for name, s := range map[string]string{"key": key, "refresh token": refresh, "expired token": expired, "cookie": "cookie-secret-0123456789"} {
		if strings.Contains(everything.String(), s) {
			t.Errorf("the %s reached a dead letter, a reply, a log line or /readyz", name)
		}
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 3 {
		t.Errorf("%d dead letters, want 3 (the proof above needs them)", n)
	}
	if !strings.Contains(everything.String(), "[REDACTED]") {
		t.Errorf("nothing redacted: the upstream's echo did not arrive, and the check proves nothing")
	}
	if !strings.Contains(rec.Body.String(), "HTTP 401") {
		t.Errorf("/readyz = %s: want the state (HTTP 401), not the upstream's text", rec.Body.String())
	}
}

// TestTraceHeadersCarryNoSecret: a job's baggage and tracestate travel
// into its records, so a secret a publisher put there (a bearer token, a
// session cookie) must not: the record keeps the trace, not the secret.
func TestTraceHeadersCarryNoSecret(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t)
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEiLCJzaWQiOiJzZXNzXzEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	h := nats.Header{
		"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"tracestate":  {"vendor=" + jwt},
		"baggage":     {"tenant=acme,authorization=Bearer%20" + jwt + ",cookie=__session%3D" + jwt},
	}
	publishMsg(t, env, "sessions.revoke", h, `{"session_id":"`+sess+`","job_id":"traced-ok"}`)
	publishMsg(t, env, "sessions.revoke", h, `{"session_id":"sess_missing","job_id":"traced-bad"}`)
	testenv.Eventually(t, 10*time.Second, "both recorded", func() bool {
		return len(env.Results(t)) == 1 && env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	for _, stream := range []string{env.Topology.ResultsStream, env.Topology.DeadLetterStream} {
		for _, m := range env.StreamMsgs(t, stream) {
			if !strings.Contains(m.Header.Get("traceparent"), "0af7651916cd43dd8448eb211c80319c") || m.Header.Get("baggage") != "tenant=acme" {
				t.Errorf("%s record: traceparent %q, baggage %q; want the trace and tenant=acme carried on", stream, m.Header.Get("traceparent"), m.Header.Get("baggage"))
			}
			for k, vs := range m.Header {
				if strings.Contains(strings.Join(vs, " "), jwt[:40]) {
					t.Errorf("%s record: header %s holds the JWT", stream, k)
				}
			}
		}
	}
}

// TestAnotherJobsRecordIsNotTheJobs: a job is acked as "already recorded"
// only on a record of its own (its Job-Digest). A record of another job on
// its subject (written by hand here) once passed for the job's: the job,
// which failed, was acked with no dead letter. Now it is kept, the worker
// says why, and it is recorded once the subject is free.
func TestAnotherJobsRecordIsNotTheJobs(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	// The job to come: the jobs stream's first message, id seq-1.
	key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: "seq-1", Gen: generation(t, env), Seq: 1}
	forged := &nats.Msg{Subject: env.Topology.Subjects.Result(key), Header: nats.Header{jobs.HeaderJobDigest: {"another-job"}}, Data: []byte(`{}`)}
	fack, err := env.JS.PublishMsg(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	w := env.StartWorker(t)
	publishMsg(t, env, "sessions.revoke", nil, `{"session_id":"sess_missing"}`) // fails: a 404
	testenv.Eventually(t, 10*time.Second, "the job kept, and the worker not ready", func() bool {
		st := w.Worker.Status()
		return !st.Ready && strings.Contains(st.Reason, "another job's record")
	})
	if n := env.StreamCount(t, env.Topology.JobsStream); n != 1 || strings.Contains(env.Logs.String(), "already_recorded") {
		t.Fatalf("%d jobs in the stream; logs: %s; want the job kept, not acked as recorded", n, env.Logs.String())
	}
	results, err := env.JS.Stream(ctx, env.Topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := results.DeleteMsg(ctx, fack.Sequence); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the job dead-lettered once the subject is free", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 && env.StreamCount(t, env.Topology.JobsStream) == 0
	})
}

// TestRecreatedJobsStreamUnseen: the jobs stream and its consumer are
// deleted and created again (by an operator, or another worker's recovery)
// while a worker's connection stalls, so that the worker keeps the old
// generation. Its new jobs, numbered from 1 again, meet the old jobs'
// records on their subjects; they were acked on them. Now each is recorded
// under the stream's new generation.
func TestRecreatedJobsStreamUnseen(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	const n = 5
	ids := emu.CreateSessions(emu.CreateUser(), n)
	px := netproxy.Start(t, env.NATSURL)
	startWorkerVia(t, px, env)
	for _, id := range ids { // no job_id: seq-1 to seq-5
		env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+id+`"}`))
	}
	testenv.Eventually(t, 10*time.Second, "the first jobs' results", func() bool { return len(env.Results(t)) == n })
	time.Sleep(1100 * time.Millisecond) // a generation is a second: the next stream's differs

	recreateJobsStreamUnseen(t, px, env)
	for i := range n { // they fail (no such session): each must be dead-lettered
		env.PublishRaw(t, "sessions.revoke", []byte(fmt.Sprintf(`{"session_id":"sess_missing%d"}`, i)))
	}
	testenv.Eventually(t, 30*time.Second, "every new job dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == n && env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	if strings.Contains(env.Logs.String(), "already_recorded") {
		t.Errorf("a new job was acked on an old job's record: %s", env.Logs.String())
	}
}

// TestHistoryIsTheJobsOwn: a job fails and waits for its redelivery;
// the jobs stream is deleted and created again while the worker's
// connection stalls, and a new job gets the old one's sequence. The new
// job's dead letter told the old job's failures as its own (the history
// was kept by sequence alone): another job's errors, maybe another
// tenant's. The history is now the stored message's: sequence and time.
func TestHistoryIsTheJobsOwn(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	px := netproxy.Start(t, env.NATSURL)
	startWorkerVia(t, px, env, func(c *worker.Config) { c.Retry.NakDelay, c.Retry.NakDelayMax = time.Minute, time.Minute })
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	old := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+sess+`"}`))
	testenv.Eventually(t, 10*time.Second, "the first job naked", func() bool { return strings.Contains(env.Logs.String(), "job will be retried") })
	emu.SetFaults(emulator.Faults{})

	recreateJobsStreamUnseen(t, px, env)
	ack := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_missing"}`))
	if ack.Sequence != old.Sequence {
		t.Fatalf("the new job is stored at %d, the old one was at %d: the test needs them equal", ack.Sequence, old.Sequence)
	}
	testenv.Eventually(t, 10*time.Second, "the new job dead-lettered", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	dl, err := jobs.ParseDeadLetter(env.StreamMsgs(t, env.Topology.DeadLetterStream)[0].Header)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dl.History {
		if f.Status != http.StatusNotFound {
			t.Errorf("the dead letter of a job Clerk answered 404 holds another job's failure: %+v", f)
		}
	}
	if len(dl.History) != 1 {
		t.Errorf("history of %d failures, want the one: %+v", len(dl.History), dl.History)
	}
}

// TestStoredTimeIsOneForDeliveryAndGet: the history a delivery keeps is
// found by the backstop, which reads the job with a get, by its sequence
// and stored time: both reads must give the same time to the nanosecond.
func TestStoredTimeIsOneForDeliveryAndGet(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	ack := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"sess_1"}`))
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := env.JS.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if !raw.Time.Equal(meta.Timestamp) || raw.Time.UnixNano() != meta.Timestamp.UnixNano() {
		t.Errorf("stored at %s by the delivery, %s by a get", meta.Timestamp.Format(time.RFC3339Nano), raw.Time.Format(time.RFC3339Nano))
	}
}

// TestLostRecordAckIsTheDeliverysOwn: the acknowledgement of a worker's
// own result is lost (the network stalls just after the worker sent it).
// The worker took the record it then found for another delivery's: the
// job was acked as already recorded, and its requester never answered.
// Now it asks again, JetStream answers "duplicate" for its own record, and
// the job is settled as recorded by this delivery.
func TestLostRecordAckIsTheDeliverysOwn(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	px := netproxy.Start(t, env.NATSURL)
	// Stall once the result is on its way, for longer than the worker
	// waits for its acknowledgement (10 s).
	px.HoldAfter([]byte("PUB "+env.Topology.Subjects.Prefix+".results."), 11*time.Second)
	startWorkerVia(t, px, env)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	rep, err := env.Client.NewReplies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	sub, err := env.Client.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "lost-ack-1", ReplyTo: rep.Subject()}, SessionID: sess})
	if err != nil {
		t.Fatal(err)
	}
	r, err := rep.Next(ctx, func(id string) (clerkjobs.Expect, bool) {
		return clerkjobs.Expect{Op: jobs.OpRevoke, Seq: sub.Seq}, id == sub.JobID
	}, nil)
	if err != nil || r.Outcome != jobs.Succeeded {
		t.Fatalf("the requester's answer: %+v, %v; want it succeeded", r, err)
	}
	if n := len(env.Results(t)); n != 1 || strings.Contains(env.Logs.String(), "already_recorded") {
		t.Errorf("%d results; logs %s; want one, recorded by this delivery", n, env.Logs.String())
	}
}

// startWorkerVia runs a worker of env whose connection goes through px.
func startWorkerVia(t *testing.T, px *netproxy.Proxy, env *testenv.Env, edits ...func(*worker.Config)) {
	t.Helper()
	nc, err := nats.Connect(px.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := env.WorkerConfig()
	for _, f := range edits {
		f(&cfg)
	}
	w, err := worker.New(nc, env.ClerkClient(t, ""), cfg)
	if err != nil {
		t.Fatal(err)
	}
	clerkjobstest.Run(t, w)
}

// recreateJobsStreamUnseen deletes the jobs stream and creates it again
// while the worker's connection (through px) stalls: the worker does not
// see it happen.
func recreateJobsStreamUnseen(t *testing.T, px *netproxy.Proxy, env *testenv.Env) {
	t.Helper()
	ctx := context.Background()
	px.Hold(func() {
		if err := env.JS.DeleteStream(ctx, env.Topology.JobsStream); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Topology.Ensure(ctx, env.JS); err != nil {
			t.Fatal(err)
		}
	})
}

// leaky fails to encode with an error that quotes its value, as a careless
// MarshalJSON might.
type leaky string

func (l leaky) MarshalJSON() ([]byte, error) { return nil, fmt.Errorf("cannot encode %s", string(l)) }

func resultSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := schemas.FS.Open("result.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("result.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("result.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

const answerSecret = "eyJhbGciOiJSUzI1NiJ9.SECRET-ANSWER"

// TestHandlerAnswers: whatever a custom handler answers, the job ends at
// once in one record that says what happened. A typed answer is stored as
// its JSON and bytes as the JSON they hold. An answer that cannot be
// encoded dead-letters the job as permanent after one delivery (it used
// to be nakked until its deliveries ran out, repeating the Clerk call each
// time), and a secret that cannot be encoded reaches neither the reply nor
// the dead letter nor the log.
func TestHandlerAnswers(t *testing.T) {
	env := testenv.New(t)
	answers := map[string]handlers.Answer{
		"sess_typed":       {Result: struct{ Status string }{"revoked"}},
		"sess_bytes":       {Result: []byte(`{"status":"revoked"}`)},
		"sess_none":        {Result: json.RawMessage(nil)},
		"sess_badjson":     {Result: json.RawMessage(`{"status":`)},
		"sess_badvalue":    {Result: leaky("not secret")},
		"sess_secret":      {Secret: struct{ JWT string }{answerSecret}},
		"sess_nowhere":     {Secret: leaky(answerSecret)},
		"sess_tokenresult": {Result: struct{ JWT string }{answerSecret}},
		"sess_tokenempty":  {Secret: json.RawMessage{}},
		"sess_leakysecret": {Secret: leaky(answerSecret)},
	}
	h := handlers.HandlerFunc(func(_ context.Context, a jobs.Args) (handlers.Answer, error) {
		var id string
		switch a := a.(type) {
		case *jobs.GetArgs:
			id = a.SessionID
		case *jobs.TokenArgs:
			id = a.SessionID
		}
		if out, ok := answers[id]; ok {
			return out, nil
		}
		return handlers.Answer{}, errors.New("no answer for " + id)
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(h))

	stored := []struct {
		session, want string // want: the stored result's "result", "" for none
	}{
		{"sess_typed", `{"Status":"revoked"}`},
		{"sess_bytes", `{"status":"revoked"}`},
		{"sess_none", ""},
		{"sess_nowhere", ""}, // a secret, and no reply_to to send it to: dropped unencoded
	}
	for _, c := range stored {
		env.Publish(t, &jobs.GetArgs{Common: jobs.Common{JobID: c.session}, SessionID: c.session})
	}
	failing := []string{"sess_badjson", "sess_badvalue"}
	for _, s := range failing {
		env.Publish(t, &jobs.GetArgs{Common: jobs.Common{JobID: s}, SessionID: s})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tok, err := env.Client.Request(ctx, &jobs.TokenArgs{Common: jobs.Common{JobID: "sess_secret"}, SessionID: "sess_secret"})
	if err != nil {
		t.Fatalf("typed secret: %v", err)
	}
	if string(tok.Secret.Reveal()) != `{"JWT":"`+answerSecret+`"}` || !tok.SecretDelivered {
		t.Errorf("typed secret: %+v, %v; want it delivered to the requester", tok, err)
	}
	// A token job's answer is a secret or nothing: a secret that cannot be
	// encoded, a Result in its place, or an empty one fails the job.
	badSecrets := []string{"sess_leakysecret", "sess_tokenresult", "sess_tokenempty"}
	var replies strings.Builder
	for _, id := range badSecrets {
		bad, err := env.Client.Request(ctx, &jobs.TokenArgs{Common: jobs.Common{JobID: id}, SessionID: id})
		if err == nil || (bad != nil && !bad.Secret.IsZero()) {
			t.Errorf("%s: %+v, %v; want a failure without a secret", id, bad, err)
		}
		fmt.Fprintf(&replies, "%+v %v\n", bad, err)
	}

	testenv.Eventually(t, 10*time.Second, "every job recorded", func() bool {
		return len(env.Results(t)) == len(stored)+1 && len(deadLetters(t, env)) == len(failing)+len(badSecrets)
	})
	byID := map[string]jobs.Result{}
	for _, r := range env.Results(t) {
		byID[r.JobID] = r
	}
	for _, c := range stored {
		if got := string(byID[c.session].Result); got != c.want {
			t.Errorf("%s: stored result %q, want %q", c.session, got, c.want)
		}
	}
	if r := byID["sess_secret"]; r.Result != nil || r.Secret != nil || !r.SecretDelivered {
		t.Errorf("stored result of the secret answer: %+v; want no answer, no secret, secret_delivered", r)
	}
	if byID["sess_nowhere"].SecretDelivered || !strings.Contains(env.Logs.String(), "secret answer was dropped") {
		t.Errorf("a secret answer to a job without reply_to: recorded as delivered, or dropped without a word")
	}
	dls := deadLetters(t, env)
	for _, c := range []struct{ id, says string }{
		{"sess_badjson", "cannot be encoded as JSON"},
		{"sess_badvalue", "cannot be encoded as JSON"},
		{"sess_leakysecret", "cannot be encoded as JSON"},
		{"sess_tokenresult", "must be a Secret"},
		{"sess_tokenempty", "must be a Secret"},
	} {
		dl := dls[c.id]
		if dl.Error.Class != jobs.ClassPermanent || dl.Deliveries != 1 || !strings.Contains(dl.Error.Message, c.says) {
			t.Errorf("%s: dead letter %+v after %d deliveries; want permanent, one delivery, saying %q", c.id, dl.Error, dl.Deliveries, c.says)
		}
	}
	// What the worker wrote is what schemas/result.json describes.
	sch := resultSchema(t)
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Data))
		if err == nil {
			err = sch.Validate(doc)
		}
		if err != nil {
			t.Errorf("stored result %s does not fit schemas/result.json: %v", m.Data, err)
		}
	}
	var stream strings.Builder
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		stream.Write(m.Data)
	}
	for where, text := range map[string]string{
		"results stream": stream.String(),
		"dead letters":   fmt.Sprintf("%+v", dls),
		"replies":        replies.String(),
		"worker log":     env.Logs.String(),
	} {
		if strings.Contains(text, "SECRET-ANSWER") {
			t.Errorf("the secret answer reached the %s", where)
		}
	}
}

// TestTraceHeadersCarryNoEncodedSecret: W3C baggage percent-encodes the
// values of a member's properties (a space, an '=' must be), and a record
// carries the job's baggage on. A secret in a property value (a bearer
// token, a __session cookie, a JWT or a Clerk key, escaped as any baggage
// writer may) is left out like one in a member's value: no record's
// baggage holds it, decoded or not.
func TestTraceHeadersCarryNoEncodedSecret(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEiLCJzaWQiOiJzZXNzXzEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	key := "sk_" + "live_PropertyKey0123456789"
	h := nats.Header{
		"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"baggage": {"tenant=acme" +
			",a=1;auth=Bearer%20" + key +
			",b=1;jwt=" + strings.ReplaceAll(jwt, ".", "%2E") +
			",c=1;cookie=%5F%5Fsession%3D" + jwt +
			",d=1;k=" + strings.ReplaceAll(key, "_", "%5F")},
	}
	publishMsg(t, env, "sessions.revoke", h, `{"session_id":"sess_missing","job_id":"traced-bad"}`)
	testenv.Eventually(t, 10*time.Second, "the dead letter", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	m := env.StreamMsgs(t, env.Topology.DeadLetterStream)[0]
	if got := m.Header.Get("baggage"); got != "tenant=acme" {
		t.Errorf("the dead letter's baggage is %q; want tenant=acme alone", got)
	}
	for k, vs := range m.Header {
		decoded, err := url.PathUnescape(strings.Join(vs, " "))
		if err != nil {
			decoded = strings.Join(vs, " ")
		}
		for _, s := range []string{jwt[:40], "PropertyKey0123456789"} {
			if strings.Contains(decoded, s) {
				t.Errorf("the dead letter's header %s holds a secret once decoded: %s", k, decoded)
			}
		}
	}
}

// TestTracestateCarriesNoEncodedSecret: a record carries the job's
// tracestate on, as it does its baggage. A Clerk key, bearer token or
// session cookie written into it percent- or form-encoded (as into a
// baggage value) is as much a secret to whoever decodes it: the
// tracestate is left out, as it is for one written plainly.
func TestTracestateCarriesNoEncodedSecret(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	key := "sk_" + "live_TracestateKey0123456789"
	states := []string{
		"vendor=" + strings.ReplaceAll(key, "_", "%5F"),
		"vendor=Bearer%20Zm9vYmFyYmF6cXV4MTIzNDU2",
		"vendor=Bearer+Zm9vYmFyYmF6cXV4MTIzNDU2",
		"vendor=%5F%5Fsession%3DZm9vYmFyYmF6cXV4MTIzNDU2",
	}
	for i, ts := range states {
		h := nats.Header{
			"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			"tracestate":  {ts},
		}
		publishMsg(t, env, "sessions.revoke", h, fmt.Sprintf(`{"session_id":"sess_missing","job_id":"tracestate-%d"}`, i))
	}
	testenv.Eventually(t, 10*time.Second, "the dead letters", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == uint64(len(states))
	})
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		for k, vs := range m.Header {
			joined := strings.Join(vs, " ")
			decoded, err := url.QueryUnescape(joined)
			if err != nil {
				decoded = joined
			}
			for _, s := range []string{"TracestateKey0123456789", "Zm9vYmFyYmF6cXV4MTIzNDU2"} {
				if strings.Contains(decoded, s) {
					t.Errorf("the dead letter's header %s holds a secret once decoded: %s", k, joined)
				}
			}
		}
	}
}

// TestForgedReplayCountIsNotCarried: any publisher may set Replay-Count on
// a job. A count that is not one (here the largest int64) was copied into
// the job's dead letter, and its replay sent the count plus one: a
// negative count, on a message id nobody expected. The worker now reads it
// as 0, and the replay counts 1.
func TestForgedReplayCountIsNotCarried(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	h := nats.Header{}
	h.Set(jobs.HeaderReplays, "9223372036854775807")
	publishMsg(t, env, env.Topology.Subjects.Job(jobs.OpRevoke), h, `{"job_id":"forged-count","session_id":"sess_missing"}`)
	testenv.Eventually(t, 10*time.Second, "a dead letter", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	dl := env.StreamMsgs(t, env.Topology.DeadLetterStream)[0]
	if v := dl.Header.Get(jobs.HeaderReplays); v != "" {
		t.Errorf("the dead letter carries %s %q; want none", jobs.HeaderReplays, v)
	}
	q, err := dlq.Open(t.Context(), env.JS, env.Topology)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := q.Replay(t.Context(), []uint64{dl.Sequence})
	if err != nil || rep.Replayed != 1 {
		t.Fatalf("replay = %+v, %v", rep, err)
	}
	testenv.Eventually(t, 10*time.Second, "the replayed job's dead letter", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 && env.StreamMsgs(t, env.Topology.DeadLetterStream)[0].Sequence != dl.Sequence
	})
	if v := env.StreamMsgs(t, env.Topology.DeadLetterStream)[0].Header.Get(jobs.HeaderReplays); v != "1" {
		t.Errorf("after one replay the dead letter counts %q replays; want 1", v)
	}
}

func TestReplayCount(t *testing.T) {
	for v, want := range map[string]int{"": 0, "3": 3, "-1": 0, "x": 0, "9223372036854775807": 0, "1048576": 1 << 20, "1048577": 0} {
		h := nats.Header{}
		if v != "" {
			h.Set(jobs.HeaderReplays, v)
		}
		if got := jobs.ReplayCount(h); got != want {
			t.Errorf("ReplayCount(%q) = %d, want %d", v, got, want)
		}
	}
}
