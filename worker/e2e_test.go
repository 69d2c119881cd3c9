package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// request submits a job with the client and returns the result the worker
// sent to its inbox, as the worker sent it (a failure included, and the
// secret of a token or refresh job).
func request(t *testing.T, env *testenv.Env, a jobs.Args) jobs.Result {
	t.Helper()
	r, err := requestAll(env, a, 15*time.Second, nil)
	if err != nil {
		t.Fatalf("no result for %s job: %v", a.Op(), err)
	}
	return r
}

func TestEveryOpEndToEnd(t *testing.T) {
	env := testenv.New(t, emulator.WithTemplate("hasura", map[string]any{"role": "admin"}, time.Minute))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 4)
	// A fifth session, ended: the list job's status filter must leave it out.
	if err := emu.SetSessionStatus(emu.CreateSessions(user, 1)[0], clerkapi.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	env.StartWorker(t)

	expired := emu.SessionToken(ids[3], -time.Minute)
	cases := []struct {
		name  string
		args  jobs.Args
		check func(t *testing.T, r jobs.Result)
	}{
		{"list", &jobs.ListArgs{UserID: user, Status: clerkapi.StatusActive, Paginated: true, Limit: 2}, func(t *testing.T, r jobs.Result) {
			var l clerkapi.SessionList
			testenv.DecodeJSON(t, r.Result, &l)
			if len(l.Data) != 2 || l.TotalCount != 4 {
				t.Errorf("list: %d sessions, total %d; want 2 of the 4 active", len(l.Data), l.TotalCount)
			}
		}},
		{"create", &jobs.CreateArgs{UserID: user}, func(t *testing.T, r jobs.Result) {
			var s clerkapi.Session
			testenv.DecodeJSON(t, r.Result, &s)
			if s.UserID != user || s.Status != clerkapi.StatusActive {
				t.Errorf("create: got %+v", s)
			}
		}},
		{"get", &jobs.GetArgs{SessionID: ids[0]}, func(t *testing.T, r jobs.Result) {
			var s clerkapi.Session
			testenv.DecodeJSON(t, r.Result, &s)
			if s.ID != ids[0] {
				t.Errorf("get: id %s, want %s", s.ID, ids[0])
			}
		}},
		{"token", &jobs.TokenArgs{SessionID: ids[1], ExpiresInSeconds: 120}, func(t *testing.T, r jobs.Result) {
			var tok clerkapi.Token
			testenv.DecodeJSON(t, r.Secret, &tok)
			if strings.Count(tok.JWT, ".") != 2 || !r.SecretDelivered || r.Result != nil {
				t.Errorf("token: jwt with %d parts, delivered %v, result %s", strings.Count(tok.JWT, ".")+1, r.SecretDelivered, r.Result)
			}
			// Not the emulator's default of 60 s: the job's lifetime reached Clerk.
			if c := testenv.JWTClaims(t, tok.JWT); c.Exp-c.Iat != 120 {
				t.Errorf("token: lifetime %d s, want the job's expires_in_seconds, 120", c.Exp-c.Iat)
			}
		}},
		{"token from template", &jobs.TokenArgs{SessionID: ids[1], TemplateName: "hasura"}, func(t *testing.T, r jobs.Result) {
			var tok clerkapi.Token
			testenv.DecodeJSON(t, r.Secret, &tok)
			if strings.Count(tok.JWT, ".") != 2 {
				t.Fatalf("template token: jwt with %d parts", strings.Count(tok.JWT, ".")+1)
			}
			// Only the template's token carries its claims: a plain
			// session token is a JWT too.
			if c := testenv.JWTClaims(t, tok.JWT); c.Role != "admin" {
				t.Errorf("template token: role claim %q, want the template's \"admin\"", c.Role)
			}
		}},
		{"refresh", &jobs.RefreshArgs{SessionID: ids[3], ExpiredToken: expired, RefreshToken: emu.RefreshToken(ids[3]), RequestOrigin: "https://app.example.com"}, func(t *testing.T, r jobs.Result) {
			var tok clerkapi.Token
			testenv.DecodeJSON(t, r.Secret, &tok)
			if tok.Object != "token" || tok.JWT == "" {
				t.Errorf("refresh: object %q, jwt empty %v", tok.Object, tok.JWT == "")
			}
		}},
		{"refresh as cookies", &jobs.RefreshArgs{SessionID: ids[3], ExpiredToken: expired, RefreshToken: emu.RefreshToken(ids[3]), RequestOrigin: "https://app.example.com", Format: "cookie"}, func(t *testing.T, r jobs.Result) {
			var c clerkapi.Cookies
			testenv.DecodeJSON(t, r.Secret, &c)
			if c.Object != "cookies" || len(c.Cookies) == 0 {
				t.Errorf("refresh cookies: object %q, %d cookies", c.Object, len(c.Cookies))
			}
		}},
		{"revoke", &jobs.RevokeArgs{SessionID: ids[2]}, func(t *testing.T, r jobs.Result) {
			if s, _ := emu.Session(ids[2]); s.Status != clerkapi.StatusRevoked {
				t.Errorf("revoke: session status %s", s.Status)
			}
		}},
		{"revoke again", &jobs.RevokeArgs{SessionID: ids[2]}, func(t *testing.T, r jobs.Result) {}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request(t, env, c.args)
			if r.Outcome != jobs.Succeeded {
				t.Fatalf("outcome %s: %+v", r.Outcome, r.Error)
			}
			if r.Op != c.args.Op() || r.JobID == "" || r.Attempts != 1 || r.Deliveries != 1 {
				t.Errorf("result header: op %s job %q attempts %d deliveries %d", r.Op, r.JobID, r.Attempts, r.Deliveries)
			}
			c.check(t, r)
		})
	}
	// Every job is recorded exactly once, and none is left behind.
	testenv.Eventually(t, 5*time.Second, "all results stored", func() bool {
		return len(env.Results(t)) == len(cases)
	})
	for _, r := range env.Results(t) {
		if r.Secret != nil {
			t.Errorf("stored %s result holds a secret", r.Op)
		}
		if r.Op.Secret() && !r.SecretDelivered {
			t.Errorf("stored %s result does not record the delivery", r.Op)
		}
	}
	if n := env.StreamCount(t, env.Topology.JobsStream); n != 0 {
		t.Errorf("%d jobs left in the jobs stream", n)
	}
}

// generation is the jobs stream's generation token (jobs.Generation).
func generation(t *testing.T, env *testenv.Env) string {
	t.Helper()
	s, err := env.JS.Stream(context.Background(), env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	return jobs.Generation(s.CachedInfo().Created)
}

// TestNatsPubContract is the README's promise: a bare JSON body published by
// any NATS client, without headers, is a job.
func TestNatsPubContract(t *testing.T) {
	env := testenv.New(t)
	id := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]
	env.StartWorker(t)
	ack := env.PublishRaw(t, "sessions.revoke", []byte(fmt.Sprintf(`{"session_id":%q}`, id)))
	testenv.Eventually(t, 5*time.Second, "result on sessions.results.revoke", func() bool { return len(env.Results(t)) == 1 })
	r := env.Results(t)[0]
	if r.JobID != fmt.Sprintf("seq-%d", ack.Sequence) || r.Outcome != jobs.Succeeded {
		t.Errorf("result %+v; want job id seq-%d, succeeded", r, ack.Sequence)
	}
	if s, _ := env.Clerk.Emulator.Session(id); s.Status != clerkapi.StatusRevoked {
		t.Errorf("session status %s, want revoked", s.Status)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	env.StartWorker(t)
	env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	testenv.Eventually(t, 5*time.Second, "a few failed calls", func() bool { return len(emu.Calls()) >= 4 })
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 10*time.Second, "the result", func() bool { return len(env.Results(t)) == 1 })
	r := env.Results(t)[0]
	if r.Outcome != jobs.Succeeded || r.Attempts+r.Deliveries < 3 {
		t.Errorf("result %+v: want success after retries", r)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// TestRetryAfterPausesEveryCall: Clerk's limit is per key, so one 429 must
// hold back every job of the worker until Retry-After, not just the job that
// got it. Without the shared pause, eight jobs retrying on their own backoff
// (5-20 ms) would draw hundreds of 429s per second.
func TestRetryAfterPausesEveryCall(t *testing.T) {
	env := testenv.New(t, emulator.WithRateLimit(5, time.Second))
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 20)
	env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 8; c.RateLimit = worker.RateLimit{} })
	start := time.Now()
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 30*time.Second, "20 results", func() bool { return len(env.Results(t)) == 20 })
	elapsed := time.Since(start)
	var limited int
	for _, c := range emu.Calls() {
		if c.Status == 429 {
			limited++
		}
	}
	// At most one 429 per job in flight per window: the calls already on
	// the wire when the first 429 arrives.
	windows := int(elapsed/time.Second) + 2
	if limit := 8 * windows; limited > limit {
		t.Errorf("%d answers were 429 over %s; with a shared Retry-After pause at most %d", limited, elapsed.Round(time.Millisecond), limit)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

func TestPermanentErrorDeadLettersWithHeaders(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	body := []byte(`{"session_id":"sess_doesnotexist","job_id":"job-404"}`)
	ack := env.PublishRaw(t, "sessions.revoke", body)
	testenv.Eventually(t, 5*time.Second, "a dead letter", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	m := env.StreamMsgs(t, env.Topology.DeadLetterStream)[0]
	wantSubject := env.Topology.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "job-404", Gen: generation(t, env), Seq: ack.Sequence})
	if m.Subject != wantSubject || string(m.Data) != string(body) {
		t.Errorf("dead letter on %s with body %s; want %s with the original bytes", m.Subject, m.Data, wantSubject)
	}
	dl, err := jobs.ParseDeadLetter(m.Header)
	if err != nil {
		t.Fatalf("parse dead letter: %v", err)
	}
	want := map[string]any{
		"subject": dl.Subject == "sessions.revoke", "seq": dl.StreamSeq == ack.Sequence, "job id": dl.JobID == "job-404",
		"class": dl.Error.Class == jobs.ClassPermanent, "status": dl.Error.HTTPStatus == 404,
		"code": dl.Error.ClerkCode == "resource_not_found", "message": dl.Error.ClerkMessage != "",
		"trace": dl.Error.TraceID != "", "attempts": dl.Attempts == 1, "deliveries": dl.Deliveries == 1,
		"first failure": !dl.FirstFailure.IsZero(), "last failure": !dl.LastFailure.Before(dl.FirstFailure),
		"worker": dl.Worker != "", "history": len(dl.History) == 1, "op": dl.Op == jobs.OpRevoke,
	}
	for k, ok := range want {
		if ok != true {
			t.Errorf("dead letter %s wrong: %+v", k, dl)
		}
	}
	if n := env.StreamCount(t, env.Topology.JobsStream); n != 0 {
		t.Errorf("job not acked: %d left", n)
	}
}

func TestInvalidMessagesDeadLetteredAsIs(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	cases := []struct {
		subject, body, field string
	}{
		{"sessions.revoke", `not json`, ""},
		{"sessions.revoke", `{"session_id":42}`, "/session_id"},
		{"sessions.revoke", `{"sesion_id":"sess_1"}`, "/sesion_id"},
		{"sessions.frobnicate", `{"session_id":"sess_1"}`, ""},
		{"sessions.token.request", `{"session_id":"sess_1"}`, "/reply_to"},
		{"sessions.token.request", `{"session_id":"sess_1","reply_to":"sessions.results.token"}`, "/reply_to"},
	}
	for _, c := range cases {
		env.PublishRaw(t, c.subject, []byte(c.body))
	}
	testenv.Eventually(t, 5*time.Second, "every invalid job dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == uint64(len(cases))
	})
	// Jobs run concurrently: match dead letters to cases by subject and body.
	want := map[string]string{}
	for _, c := range cases {
		want[c.subject+" "+c.body] = c.field
	}
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		dl, err := jobs.ParseDeadLetter(m.Header)
		if err != nil {
			t.Fatal(err)
		}
		key := dl.Subject + " " + string(m.Data)
		field, ok := want[key]
		if !ok {
			t.Errorf("dead letter %q matches no published job byte for byte", key)
			continue
		}
		delete(want, key)
		if dl.Error.Class != jobs.ClassInvalid || dl.Error.Field != field {
			t.Errorf("%s: class %s field %q; want invalid %q (error: %s)", key, dl.Error.Class, dl.Error.Field, field, dl.Error.Message)
		}
	}
	if n := len(env.Clerk.Emulator.Calls()); n != 0 {
		t.Errorf("invalid jobs made %d Clerk calls", n)
	}
}

func TestRequesterHearsAboutFailure(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	r := request(t, env, &jobs.GetArgs{SessionID: "sess_missing"})
	if r.Outcome != jobs.Failed || r.Error == nil || r.Error.Class != jobs.ClassPermanent || r.Error.HTTPStatus != 404 {
		t.Errorf("reply %+v; want a failed result with the 404", r)
	}
}

func TestStoppedWorkerJobsAreRedelivered(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(300*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 40)
	first := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 8; c.DrainTimeout = 0 })
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 5*time.Second, "jobs in flight", func() bool { return first.Worker.Status().InFlight >= 4 })
	first.Stop(t) // drain timeout 0: the jobs in flight are naked, not finished
	env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 16 })
	testenv.Eventually(t, 20*time.Second, "every job settled", func() bool { return len(env.Results(t)) == len(ids) })
	seen := map[string]bool{}
	for _, r := range env.Results(t) {
		if seen[r.JobID] {
			t.Errorf("job %s recorded twice", r.JobID)
		}
		seen[r.JobID] = true
	}
	for _, id := range ids {
		if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Errorf("session %s not revoked", id)
		}
	}
}

func TestShutdownDrainsJobsInFlight(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(400*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 4)
	w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 4 })
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 5*time.Second, "4 jobs in flight", func() bool { return w.Worker.Status().InFlight == 4 })
	w.Stop(t)
	if n := len(env.Results(t)); n != 4 {
		t.Errorf("%d results after a graceful stop, want the 4 in flight finished", n)
	}
}

func TestMaxDeliveriesBackstop(t *testing.T) {
	for _, tt := range []struct {
		name               string
		full, late, missed bool
	}{
		{name: "dead-letter stream full false"},
		{name: "dead-letter stream full true", full: true},
		// The last delivery's ack wait is over before the worker starts:
		// JetStream gives up on the jobs, and sends its only advisory, at
		// the worker's first pull, so the backstop must be listening
		// before that pull (the sweep finds them too, a sweep later).
		{name: "given up at the first pull", late: true},
		// JetStream gave up on the jobs, and sent its advisories, before
		// any worker listened: only the sweep can find them, and with
		// nothing acked since, the consumer's ack floor is below them.
		{name: "advisory unheard", late: true, missed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each on a server of its own, mostly waiting out ack waits
			testMaxDeliveriesBackstop(t, tt.full, tt.late, tt.missed)
		})
	}
}

// testMaxDeliveriesBackstop: jobs JetStream gave up on are dead-lettered;
// with the dead-letter stream full, they are kept, and the backstop says so
// without a log line a second, nor a line a job, until there is room.
func testMaxDeliveriesBackstop(t *testing.T, full, late, missed bool) {
	env := testenv.New(t)
	ctx := context.Background()
	topo := env.Topology
	if full {
		topo = fillDeadLetters(t, env)
	}
	const stuck = 3
	for i := range stuck {
		env.PublishRaw(t, "sessions.revoke", fmt.Appendf(nil, `{"session_id":"sess_crashloop%d"}`, i))
	}
	// Play a worker that crashes on every delivery: take the job, never
	// settle it, until JetStream stops delivering it.
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < env.Topology.MaxDeliver+jobs.BackstopMargin; i++ {
		got := 0
		for got < stuck {
			b, err := cons.Fetch(stuck-got, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := got
			for range b.Messages() {
				got++
			}
			if got == n {
				t.Fatalf("delivery %d: got %d of %d jobs", i+1, got, stuck)
			}
		}
	}
	if n := env.StreamCount(t, env.Topology.JobsStream); n != stuck {
		t.Fatalf("jobs stream holds %d, want the %d stuck jobs", n, stuck)
	}
	if late {
		time.Sleep(env.Topology.AckWait + time.Second)
	}
	if missed {
		// The crashing worker's next pull is the one JetStream gives up at.
		b, err := cons.Fetch(stuck, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			t.Fatalf("job seq delivered again past max deliveries: %s", m.Subject())
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending != 0 || info.Delivered.Stream != stuck {
			t.Fatalf("delivered %d, pending %d: JetStream has not given up on the jobs",
				info.Delivered.Stream, info.NumAckPending)
		}
	}
	env.StartWorker(t, func(c *worker.Config) {
		c.Topology = topo
		if late && !missed {
			c.SweepInterval = time.Hour // the advisory alone must find them
		}
	})
	if full {
		const failed = "could not dead-letter a job past max deliveries"
		testenv.Eventually(t, 20*time.Second, "the rescue refused", func() bool { return strings.Contains(env.Logs.String(), failed) })
		time.Sleep(8 * time.Second) // a line a second before
		if n := strings.Count(env.Logs.String(), failed); n > 1 {
			t.Errorf("%d log lines about %d jobs in 8 s: logging must stay bounded", n, stuck)
		}
		if n := env.StreamCount(t, topo.JobsStream); n != stuck {
			t.Fatalf("jobs stream holds %d, want the %d jobs kept", n, stuck)
		}
		s, err := env.JS.Stream(ctx, topo.DeadLetterStream)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(ctx); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 40*time.Second, "the stuck jobs dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == stuck && env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		dl, err := jobs.ParseDeadLetter(m.Header)
		if err != nil || dl.Error.Class != jobs.ClassMaxDeliveries {
			t.Errorf("dead letter %+v (%v); want class max_deliveries", dl, err)
		}
	}
}

func TestCircuitOpensOnRejectedKey(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 5)
	emu.SetFaults(emulator.Faults{RejectKey: true})
	w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 2 })
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 5*time.Second, "circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	if err := w.Worker.Ready(); err == nil || !strings.Contains(err.Error(), "circuit open") {
		t.Errorf("Ready() = %v, want circuit open", err)
	}
	// While open, only the prober calls Clerk: held jobs wait, and no new
	// job is taken.
	emu.ResetCalls()
	time.Sleep(500 * time.Millisecond) // several probe intervals
	calls := emu.Calls()
	if len(calls) == 0 {
		t.Fatalf("no probe while the circuit is open")
	}
	// A job in the other slot may have passed the circuit just before it
	// opened, its call still on the wire when the calls were reset: at
	// most concurrency-1 such calls. Nothing else may go but probes.
	late := 0
	for _, c := range calls {
		if c.SessionID != "sess_circuitprobe" {
			late++
			if late > 1 {
				t.Errorf("call %s %s while the circuit is open; only probes may go", c.Method, c.Path)
			}
		}
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Fatalf("%d jobs dead-lettered while the key was rejected", n)
	}
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 10*time.Second, "all jobs done once the key is accepted", func() bool { return len(env.Results(t)) == 5 })
	if err := w.Worker.Ready(); err != nil {
		t.Errorf("Ready() = %v after recovery", err)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// TestCircuitOpensOnRedirect: Clerk's API never redirects, so a redirect
// says the base URL is wrong (http:// for https://, a moved host, a proxy
// in front). Taken as retryable, it had every job spend its deliveries and
// end dead-lettered as exhausted; now the circuit holds the jobs, /readyz
// says to check the base URL, and they run once it answers again.
func TestCircuitOpensOnRedirect(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 3)
	clerkURL, err := url.Parse(env.Clerk.URL)
	if err != nil {
		t.Fatal(err)
	}
	var redirect atomic.Bool
	redirect.Store(true)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: clerkURL.Scheme, Host: clerkURL.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if redirect.Load() {
			http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusMovedPermanently)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(front.URL+clerkURL.Path))
	if err != nil {
		t.Fatal(err)
	}
	w := env.StartWorkerWith(t, clerk, env.WorkerConfig())
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 5*time.Second, "circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	if err := w.Worker.Ready(); err == nil || !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), "HTTP 301") {
		t.Errorf("Ready() = %v, want the circuit open on a redirect (HTTP 301)", err)
	}
	time.Sleep(500 * time.Millisecond) // several probe intervals
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Fatalf("%d jobs dead-lettered while the base URL redirected", n)
	}
	redirect.Store(false)
	testenv.Eventually(t, 10*time.Second, "all jobs done once Clerk answers", func() bool { return len(env.Results(t)) == 3 })
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

func TestSecretsOnlyReachReplyTo(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t, func(c *worker.Config) { c.Logger = c.Logger.Level(-1) }) // trace level: everything
	tok := request(t, env, &jobs.TokenArgs{SessionID: id})
	var token clerkapi.Token
	testenv.DecodeJSON(t, tok.Secret, &token)
	refreshToken := emu.RefreshToken(id)
	expired := emu.SessionToken(id, -time.Minute)
	ref := request(t, env, &jobs.RefreshArgs{SessionID: id, ExpiredToken: expired, RefreshToken: refreshToken, RequestOrigin: "https://a.example"})
	var refreshed clerkapi.Token
	testenv.DecodeJSON(t, ref.Secret, &refreshed)
	// A refresh that fails is dead-lettered: its secrets must not be.
	bad := request(t, env, &jobs.RefreshArgs{SessionID: id, ExpiredToken: expired, RefreshToken: "wrong_" + refreshToken, RequestOrigin: "https://a.example"})
	if bad.Outcome != jobs.Failed {
		t.Fatalf("refresh with a wrong token: %+v", bad)
	}
	secrets := map[string]string{"token": token.JWT, "refreshed": refreshed.JWT, "refresh token": refreshToken, "expired token": expired, "secret key": emulator.DefaultSecretKey}
	// The jobs stream holds a job, its secrets with it, until the worker's
	// ack, which comes just after the answer the request returned on.
	testenv.Eventually(t, 10*time.Second, "every job acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	for _, stream := range []string{env.Topology.JobsStream, env.Topology.ResultsStream, env.Topology.DeadLetterStream} {
		for _, m := range env.StreamMsgs(t, stream) {
			for name, s := range secrets {
				if strings.Contains(string(m.Data), s) || strings.Contains(fmt.Sprint(m.Header), s) {
					t.Errorf("the %s appears in stream %s seq %d", name, stream, m.Sequence)
				}
			}
		}
	}
	logs := env.Logs.String()
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s appears in the worker's log", name)
		}
	}
	if !strings.Contains(logs, "job succeeded") {
		t.Errorf("log holds no job outcome lines; the check above proves nothing")
	}
}

func TestBoundedInFlightWithBacklog(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(time.Millisecond, 0))
	ctx := context.Background()
	const n = 2000
	for i := 0; i < n; i++ {
		m, err := jobs.NewMessage(env.Topology.Subjects, &jobs.GetArgs{SessionID: fmt.Sprintf("sess_%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.JS.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	<-env.JS.PublishAsyncComplete()
	w := env.StartWorker(t, func(c *worker.Config) { c.Concurrency = 8 })
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	// The worker holds at most its concurrency. JetStream counts more as
	// pending: the prefetched jobs (2 here), and jobs whose acks are on
	// the wire, which a loaded machine (the suite's other packages beside)
	// leaves there for a while: up to 25 were seen at a moment, at most 16
	// nine times in ten. A worker pulling beyond its slots keeps JetStream
	// counting many more most of the time (up to the consumer's
	// max_ack_pending, 1000).
	maxHeld := 0
	var pending []int
	for env.StreamCount(t, env.Topology.DeadLetterStream) < n {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, info.NumAckPending)
		maxHeld = max(maxHeld, w.Worker.Status().InFlight)
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(pending)
	p90, most := pending[len(pending)*9/10], pending[len(pending)-1]
	if maxHeld > 8 || p90 > 16 || most > 64 {
		t.Errorf("up to %d jobs held, and %d pending nine times in ten (%d at most), with concurrency 8: the worker takes more than its slots", maxHeld, p90, most)
	}
	if maxHeld == 0 {
		t.Errorf("never saw a job in flight; the check proves nothing")
	}
}

// TestPrefetchedJobsGoBackAtShutdown: the jobs a worker prefetched and
// never started are handed back when it stops, so that the next worker
// runs them first; left to the ack wait, they would sit idle for it (30 s
// by default) after every deploy, and newer jobs would pass them.
func TestPrefetchedJobsGoBackAtShutdown(t *testing.T) {
	// The check below has until the first jobs end (the latency) to see
	// every slot busy: 300 ms was missed once under -race on a loaded
	// machine.
	env := testenv.New(t, emulator.WithLatency(time.Second, 0))
	emu := env.Clerk.Emulator
	ctx := context.Background()
	for _, id := range emu.CreateSessions(emu.CreateUser(), 12) {
		env.Publish(t, &jobs.GetArgs{SessionID: id})
	}
	first := env.StartWorker(t, func(c *worker.Config) { c.Instance, c.Concurrency = "first", 8 })
	cons, err := env.JS.Consumer(ctx, env.Topology.JobsStream, env.Topology.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "every slot busy and jobs prefetched beside them", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && first.Worker.Status().InFlight == 8 && info.NumAckPending > 8
	})
	first.Stop(t) // the running jobs finish within the drain timeout
	env.StartWorker(t, func(c *worker.Config) { c.Instance, c.Concurrency = "second", 1 })
	testenv.Eventually(t, 20*time.Second, "every job done", func() bool { return len(env.Results(t)) == 12 })
	var next *jobs.Result
	for _, r := range env.Results(t) {
		if r.Worker == "second" && (next == nil || r.StartedAt.Before(next.StartedAt)) {
			next = &r
		}
	}
	if next == nil || next.Deliveries != 2 {
		t.Errorf("the next worker's first job: %+v; want one the stopped worker had prefetched (its second delivery)", next)
	}
}

func TestSeveralWorkersShareTheLoad(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(2*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 200)
	a := env.StartWorker(t, func(c *worker.Config) { c.Instance = "a" })
	b := env.StartWorker(t, func(c *worker.Config) { c.Instance = "b" })
	for _, id := range ids {
		env.Publish(t, &jobs.RevokeArgs{SessionID: id})
	}
	testenv.Eventually(t, 20*time.Second, "200 results", func() bool { return len(env.Results(t)) == 200 })
	by := map[string]int{}
	for _, r := range env.Results(t) {
		by[r.Worker]++
	}
	if by["a"] == 0 || by["b"] == 0 {
		t.Errorf("work split %v: both workers should take jobs", by)
	}
	_, _ = a, b
	for _, id := range ids {
		if c := emu.RevokeCount(id); c != 1 {
			t.Errorf("session %s revoked %d times", id, c)
		}
	}
}

func TestFullDeadLetterStreamKeepsTheJob(t *testing.T) {
	env := testenv.New(t)
	// Fill the dead-letter stream to its byte limit.
	ctx := context.Background()
	topo := env.Topology
	topo.DeadLetterMaxBytes = 1 << 20
	if _, err := topo.Ensure(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, size := range []int{64 << 10, 1 << 10, 16} {
		for ; ; n++ {
			if _, err := env.JS.Publish(ctx, fmt.Sprintf("sessions.dlq.filler.%d", n), make([]byte, size)); err != nil {
				break
			}
		}
	}
	w := env.StartWorker(t, func(c *worker.Config) { c.Topology = topo })
	env.PublishRaw(t, "sessions.revoke", []byte(`not json`))
	testenv.Eventually(t, 5*time.Second, "the worker reports the refusal", func() bool {
		err := w.Worker.Ready()
		return err != nil && strings.Contains(err.Error(), "refuses")
	})
	if n := env.StreamCount(t, topo.JobsStream); n != 1 {
		t.Fatalf("jobs stream holds %d, want the job kept", n)
	}
	// Make room: the job is dead-lettered on a later delivery.
	s, _ := env.JS.Stream(ctx, topo.DeadLetterStream)
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the job dead-lettered once there is room", func() bool {
		return env.StreamCount(t, topo.DeadLetterStream) == 1 && env.StreamCount(t, topo.JobsStream) == 0
	})
}

// TestStartRefusesStreamsItCannotUpdate: a jobs stream made by hand with
// another storage type can't be updated in place; the worker says so
// instead of running against it.
func TestStartRefusesStreamsItCannotUpdate(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	topo := env.Topology
	topo.JobsStream, topo.Subjects.Prefix, topo.Consumer = "OTHER_JOBS", "other", "other-worker"
	topo.ResultsStream, topo.DeadLetterStream, topo.ProgressBucket = "OTHER_RESULTS", "OTHER_DLQ", "OTHER_PROGRESS"
	cfg := topo.JobsStreamConfig()
	cfg.Storage = jetstream.MemoryStorage
	if _, err := env.JS.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	wcfg := env.WorkerConfig()
	wcfg.Topology = topo
	w, err := worker.New(env.NC, env.ClerkClient(t, ""), wcfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = w.Run(rctx)
	var drift *jobs.DriftError
	if !errors.As(err, &drift) || !strings.Contains(err.Error(), "OTHER_JOBS") || !strings.Contains(err.Error(), "storage") {
		t.Errorf("Run = %v; want a drift error naming OTHER_JOBS and its storage", err)
	}
}

func TestReplyPrefixesAreEnforced(t *testing.T) {
	env := testenv.New(t)
	id := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]
	env.StartWorker(t, func(c *worker.Config) { c.ReplyPrefixes = []string{"_INBOX.svc_a."} })
	env.Publish(t, &jobs.TokenArgs{SessionID: id, Common: jobs.Common{ReplyTo: "elsewhere.reply"}})
	testenv.Eventually(t, 5*time.Second, "the job dead-lettered", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	dl, err := jobs.ParseDeadLetter(env.StreamMsgs(t, env.Topology.DeadLetterStream)[0].Header)
	if err != nil || dl.Error.Class != jobs.ClassInvalid || dl.Error.Field != "/reply_to" {
		t.Errorf("dead letter %+v (%v); want invalid /reply_to", dl.Error, err)
	}
	if n := len(env.Clerk.Emulator.Calls()); n != 0 {
		t.Errorf("%d Clerk calls: no token may be minted for a reply that cannot be delivered", n)
	}
}
