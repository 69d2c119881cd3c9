package publishcli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

const fakeJWT = "eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN.sig"

// fakeWorker answers jobs on their reply subjects the way the worker does,
// so --wait can be tested without Clerk. It reads the jobs as any core
// subscriber of the job subjects would; JetStream still stores them.
// Sessions named sess_fail fail, sess_silent get no answer, revoke_all
// sends progress updates first.
func fakeWorker(t *testing.T, h *harness) {
	t.Helper()
	sub, err := h.nc.Subscribe("sessions.>", func(m *nats.Msg) {
		tenant, op := h.topo.Subjects.ParseJob(m.Subject) // as the worker, which the client checks
		if op == jobs.OpUnknown {
			return
		}
		var body struct {
			JobID     string `json:"job_id"`
			ReplyTo   string `json:"reply_to"`
			SessionID string `json:"session_id"`
		}
		if json.Unmarshal(m.Data, &body) != nil || body.ReplyTo == "" || body.SessionID == "sess_silent" {
			return
		}
		// The real worker reports the job's sequence in the jobs stream,
		// which the client checks: find it by the job's Nats-Msg-Id.
		r := jobs.Result{JobID: body.JobID, Op: op, Outcome: jobs.Succeeded, Attempts: 1, Deliveries: 1, FinishedAt: time.Now(), DurationMS: 12, Worker: "fake-1", Tenant: tenant,
			StreamSeq: storedSeq(h, m.Header.Get(jetstream.MsgIDHeader))}
		switch {
		case leaks[body.SessionID] != "":
			// A failure whose message carries what a proxy echoed.
			r.Outcome = jobs.Failed
			r.Error = &jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: leaks[body.SessionID], HTTPStatus: 502, ClerkCode: "proxy_error", ClerkMessage: leaks[body.SessionID]}
		case body.SessionID == "sess_fail":
			r.Outcome = jobs.Failed
			r.Error = &jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "session not found", HTTPStatus: 404, ClerkCode: "resource_not_found", TraceID: "tr-9"}
		case op == jobs.OpToken:
			r.Secret = json.RawMessage(`{"object":"token","jwt":"` + fakeJWT + `"}`)
			r.SecretDelivered = true
		case op == jobs.OpRevokeAll:
			// The listing's reports (pages read, nothing to count yet),
			// then the revokes'.
			for pages := range 2 {
				p, _ := json.Marshal(jobs.Progress{JobID: body.JobID, Op: op, Outcome: jobs.InProgress, PagesRead: pages + 1,
					Progress: jobs.RevokeAllSummary{UserID: "user_1"}})
				_ = h.nc.Publish(body.ReplyTo, p)
			}
			for i := range 3 {
				p, _ := json.Marshal(jobs.Progress{JobID: body.JobID, Op: op, Outcome: jobs.InProgress, Done: i + 1, Total: 3,
					Progress: jobs.RevokeAllSummary{UserID: "user_1", Revoked: i + 1}})
				_ = h.nc.Publish(body.ReplyTo, p)
			}
			r.Result, _ = json.Marshal(jobs.RevokeAllSummary{UserID: "user_1", Revoked: 3, Excepted: 1, Passes: 3, Remaining: 2})
		default:
			r.Result = json.RawMessage(`{"object":"session","id":"` + body.SessionID + `","status":"revoked","user_id":"user_1"}`)
		}
		b, _ := json.Marshal(r)
		_ = h.nc.Publish(body.ReplyTo, b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// storedSeq is the sequence of the job stored under msgID in the jobs
// stream (0 when not found within a second): a core subscriber may see a
// job before JetStream has stored it.
func storedSeq(h *harness, msgID string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	stream, err := h.js.Stream(ctx, h.topo.JobsStream)
	if err != nil {
		return 0
	}
	for ctx.Err() == nil {
		info, err := stream.Info(ctx)
		if err != nil {
			return 0
		}
		for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0; seq-- {
			m, err := stream.GetMsg(ctx, seq)
			if err == nil && m.Header.Get(jetstream.MsgIDHeader) == msgID {
				return seq
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

func TestWait(t *testing.T) {
	h := newHarness(t)
	fakeWorker(t, h)

	// A token is printed on stdout only.
	r := h.run(t, "token", "sess_1", "--wait")
	if r.code != 0 || !matches(r.stdout, `token\s+`+regexp.QuoteMeta(fakeJWT)) || strings.Contains(r.stderr, "SECRET-TOKEN") || !strings.Contains(r.stderr, "queued on sessions.token.request") {
		t.Fatalf("%v", r)
	}
	r = h.run(t, "token", "sess_1", "--wait", "--json", "--job-id", "tok-1")
	var res jobs.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); r.code != 0 || err != nil || res.JobID != "tok-1" || !strings.Contains(string(res.Secret), fakeJWT) {
		t.Fatalf("%v", r)
	}
	// The stored job carries the private inbox as reply_to.
	msgs := h.jobsMsgs(t)
	var stored jobs.TokenArgs
	if err := json.Unmarshal(msgs[len(msgs)-1].Data, &stored); err != nil || !strings.HasPrefix(stored.ReplyTo, "_INBOX.") {
		t.Fatalf("stored job %s", msgs[len(msgs)-1].Data)
	}

	r = h.run(t, "revoke", "sess_1", "--wait")
	if r.code != 0 || !matches(r.stdout, `outcome\s+succeeded`) || !strings.Contains(r.stdout, "sess_1  revoked  user user_1") {
		t.Fatalf("%v", r)
	}

	// A failed job: exit 1, the error and where to look.
	r = h.run(t, "revoke", "sess_fail", "--wait", "--job-id", "will-fail")
	if r.code != publishcli.ExitJobFailed || !strings.Contains(r.stdout, "permanent: session not found") ||
		!strings.Contains(r.stdout, "HTTP 404 resource_not_found") || !strings.Contains(r.stdout, "publish dlq list --job-id will-fail") {
		t.Fatalf("%v", r)
	}

	// No answer: exit 3, and what became of the job.
	r = h.run(t, "revoke", "sess_silent", "--wait", "--timeout", "300ms", "--job-id", "slow")
	if r.code != publishcli.ExitTimeout || !strings.Contains(r.stderr, "no result within 300ms") || !strings.Contains(r.stderr, "job slow was accepted (stream SESSION_JOBS, seq") {
		t.Fatalf("%v", r)
	}

	// revoke-all: progress updates, then the result.
	r = h.run(t, "revoke-all", "--user", "user_1", "--except", "sess_keep", "--wait")
	if r.code != 0 || !strings.Contains(r.stderr, "progress: 3/3") || !matches(r.stdout, `revoked\s+3 sessions of user_1 \(0 had ended already, 1 kept as asked\)`) {
		t.Fatalf("%v", r)
	}
	// Sessions still active when the passes ran out, which only a lock
	// stops: said, with what to do.
	if !matches(r.stdout, `active\s+2 sessions still, created as fast as they were revoked: lock the user \(--lock\)`) {
		t.Errorf("the sessions left active: %v", r)
	}
	// The listing's reports say what they are: "0/0" read as nothing to do.
	if !strings.Contains(r.stderr, "progress: listing the sessions (pages read: 2)") || strings.Contains(r.stderr, "progress: 0/0") {
		t.Errorf("the listing's progress: %v", r)
	}
	r = h.runWith(t, runOpts{tty: true}, "revoke-all", "--user", "user_1", "--wait")
	if r.code != 0 || !matches(r.stdout, `outcome\s+succeeded`) {
		t.Fatalf("%v", r)
	}

	// A batch with --wait: a result per job, then a summary.
	file := writeFile(t, "tokens.ndjson", "{\"session_id\":\"sess_1\"}\n{\"session_id\":\"sess_2\"}\n{\"session_id\":\"sess_fail\"}\n")
	r = h.run(t, "token", "--file", file, "--wait", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != publishcli.ExitJobFailed || len(lines) != 4 || strings.Count(r.stdout, fakeJWT) != 2 || !strings.Contains(lines[3], `"succeeded":2,"failed":1,"no_result":0`) {
		t.Fatalf("%v", r)
	}
	file = writeFile(t, "revokes.ndjson", "{\"session_id\":\"sess_1\"}\n{\"session_id\":\"sess_silent\"}\n")
	r = h.run(t, "revoke", "--file", file, "--wait", "--timeout", "300ms")
	if r.code != publishcli.ExitTimeout || !strings.Contains(r.stdout, "1 succeeded, 0 failed, 1 without a result") {
		t.Fatalf("%v", r)
	}
}

func matches(s, pattern string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// TestTokenRequestedTwice: `token --wait --job-id X` run again found the
// first request's record, printed it without a token, and exited 0. Now
// it exits 6 and says the token went to the first request.
func TestTokenRequestedTwice(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t)
	for _, tc := range []struct {
		name   string
		code   int
		stdout string
		stderr string
	}{
		{name: "first", code: 0, stdout: "token"},
		{name: "again", code: publishcli.ExitJobIDReused, stderr: "request a new one with another --job-id"},
	} {
		r := h.run(t, "token", sess, "--wait", "--job-id", "tok-twice", "--timeout", "20s")
		if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
			t.Fatalf("%s: want exit %d: %v", tc.name, tc.code, r)
		}
		if tc.code != 0 && strings.Contains(r.stdout, "eyJ") {
			t.Fatalf("%s: a token printed: %v", tc.name, r)
		}
	}
}

// TestTenantReplyTo: `--tenant svc_a --reply-to _INBOX.svc_b.x` was
// queued, then dead-lettered by the worker as invalid. Now it is refused
// before publishing, naming the flag (or the line's reply_to).
func TestTenantReplyTo(t *testing.T) {
	h := newHarness(t)
	batch := writeFile(t, "batch.ndjson", `{"session_id":"sess_1","reply_to":"_INBOX.svc_b.x"}`+"\n"+`{"session_id":"sess_2","reply_to":"_INBOX.svc_b.x"}`+"\n")
	own := writeFile(t, "own.ndjson", `{"session_id":"sess_1"}`+"\n"+`{"session_id":"sess_2"}`+"\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"another tenant's inbox", []string{"--tenant", "svc_a", "revoke", "sess_1", "--reply-to", "_INBOX.svc_b.x"}, publishcli.ExitUsage, "--reply-to _INBOX.svc_b.x is not an inbox of tenant svc_a"},
		{"the tenant name as the last token", []string{"--tenant", "svc_a", "revoke", "sess_1", "--reply-to", "_INBOX.svc_a"}, publishcli.ExitUsage, "--reply-to _INBOX.svc_a is not an inbox of tenant svc_a"},
		{"in a batch", []string{"--tenant", "svc_a", "revoke", "--file", batch}, publishcli.ExitUsage, "reply_to _INBOX.svc_b.x is not an inbox of tenant svc_a"},
		{"--wait with another tenant's inboxes", []string{"--tenant", "svc_a", "--nats-inbox-prefix", "_INBOX.svc_b", "revoke", "sess_1", "--wait", "--timeout", "1s"}, publishcli.ExitUsage, "--nats-inbox-prefix _INBOX.svc_b is not an inbox of tenant svc_a"},
		{"a batch's --wait with another tenant's inboxes", []string{"--tenant", "svc_a", "--nats-inbox-prefix", "_INBOX.svc_b", "revoke", "--file", own, "--wait", "--timeout", "1s"}, publishcli.ExitUsage, "--nats-inbox-prefix _INBOX.svc_b is not an inbox of tenant svc_a"},
		{"its own inbox", []string{"--tenant", "svc_a", "revoke", "sess_1", "--reply-to", "_INBOX.svc_a.x"}, 0, ""},
		{"another inbox prefix without --wait", []string{"--tenant", "svc_a", "--nats-inbox-prefix", "_INBOX.svc_b", "revoke", "sess_1"}, 0, ""},
		{"no tenant", []string{"revoke", "sess_1", "--reply-to", "_INBOX.svc_b.x"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.jobsMsgs(t))
			r := h.run(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("want exit %d and %q: %v", tc.code, tc.stderr, r)
			}
			if after := len(h.jobsMsgs(t)); tc.code != 0 && after != before {
				t.Fatalf("refused, yet %d jobs published", after-before)
			}
		})
	}
}

// TestWaitWhenNATSGoes: a NATS server gone while --wait waited for the
// result of a job JetStream had stored was reported as "publish job X to
// sessions.revoke: NATS unavailable: read the reply inbox ...", as if the
// job had not been published, and an operator would publish it again
// under another id. It exits 4 still, saying the job was accepted and may
// still run, and where its result will be.
func TestWaitWhenNATSGoes(t *testing.T) {
	kit := clerkjobstest.New(t, clerkjobstest.WithoutWorker(), clerkjobstest.WithTopology(jobs.DefaultTopology()))
	h := &harness{url: kit.URL, nc: kit.Conn, js: kit.JetStream, topo: kit.Topology}
	done := make(chan result, 1)
	go func() { done <- h.run(t, "revoke", "sess_1", "--job-id", "gone-nats-1", "--wait", "--timeout", "60s") }()
	for deadline := time.Now().Add(10 * time.Second); len(h.jobsMsgs(t)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the job was not published")
		}
	}
	kit.NATS.Shutdown()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("publish --wait still waits 30s after NATS went")
	}
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "job gone-nats-1 was accepted") || strings.Contains(r.stderr, "publish job") {
		t.Fatalf("want exit 4 saying the job was accepted: %v", r)
	}
}

// TestRevokeAllSaysTheLock: `revoke-all --lock --wait` printed what was
// revoked and nothing of the lock asked for: whether the user is locked,
// and until when, is what the operator of an account takeover needs next.
func TestRevokeAllSaysTheLock(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []emulator.Option
		want string
	}{
		{"a lock that ends", nil, `locked\s+until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(it ends on its own`},
		{"a lock without an end", []emulator.Option{emulator.WithLockoutDuration(emulator.IndefiniteLockout)}, `locked\s+with no end \(unlock in the Clerk dashboard\)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, h := e2e(t, tc.opts...)
			emu := env.Clerk.Emulator
			user := emu.CreateUser()
			emu.CreateSessions(user, 2)
			env.StartWorker(t)
			r := h.run(t, "revoke-all", "--user", user, "--lock", "--wait", "--timeout", "20s")
			if r.code != 0 || !matches(r.stdout, `revoked\s+2 sessions`) || !matches(r.stdout, tc.want) {
				t.Fatalf("want the sessions revoked and the lock said (%s): %v", tc.want, r)
			}
			r = h.run(t, "revoke-all", "--user", user, "--wait", "--timeout", "20s")
			if r.code != 0 || matches(r.stdout, `locked`) {
				t.Fatalf("a revoke-all without --lock says locked: %v", r)
			}
		})
	}
}

// TestRevokeAllSaysNotLockedWhileItRuns: a lock Clerk refuses was told
// only at the job's end, after every session was revoked (and, for a lock
// Clerk does not confirm, after five deliveries and their backoff). The
// operator of a takeover hears it from the first progress update, on a
// terminal or not, and can lock the user in the dashboard meanwhile.
func TestRevokeAllSaysNotLockedWhileItRuns(t *testing.T) {
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
			env, h := e2e(t)
			emu := env.Clerk.Emulator
			user := emu.CreateUser()
			emu.CreateSessions(user, 2)
			emu.FailUser(user, 403)
			env.StartWorker(t)
			r := h.runWith(t, runOpts{tty: tty}, "revoke-all", "--user", user, "--lock", "--wait", "--timeout", "20s")
			want := "progress: user NOT locked (Clerk refused the lock, HTTP 403): the sessions are revoked all the same; lock the user in the Clerk dashboard if the account is being taken over\n"
			if r.code == 0 || strings.Count(r.stderr, want) != 1 {
				t.Fatalf("want the job failed and, once, %q: %v", want, r)
			}
		})
	}
}

// TestRevokeAllNotLockedOnlyFromTheWorkersWords: progress comes from an
// inbox anyone allowed under its prefix may publish to, and only moves a
// bar. A not_locked on a job that did not ask for the lock was printed as
// "user NOT locked ... lock the user in the Clerk dashboard", and its
// reason, whatever words it held, as the worker's.
func TestRevokeAllNotLockedOnlyFromTheWorkersWords(t *testing.T) {
	for _, tc := range []struct {
		name, why string
		args      []string
		want      string // "": nothing said of the lock
	}{
		{"no lock asked", "Clerk refused the lock, HTTP 403", nil, ""},
		{"not the worker's words", "Clerk refused the lock, HTTP 403): all is well, ignore this (", []string{"--lock"},
			"progress: user NOT locked (a reason not in the worker's words): the sessions are revoked all the same"},
		{"the worker's words", "Clerk refused the lock, HTTP 403", []string{"--lock"},
			"progress: user NOT locked (Clerk refused the lock, HTTP 403): the sessions are revoked all the same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, h := e2e(t) // no worker: the job waits, and only the forger answers
			done := make(chan result, 1)
			go func() {
				done <- h.runWith(t, runOpts{}, append([]string{"revoke-all", "--user", "user_1", "--wait", "--timeout", "30s"}, tc.args...)...)
			}()
			var job struct {
				JobID   string `json:"job_id"`
				ReplyTo string `json:"reply_to"`
			}
			var seq uint64
			testenv.Eventually(t, 10*time.Second, "the job queued", func() bool {
				msgs := h.jobsMsgs(t)
				if len(msgs) != 1 || json.Unmarshal(msgs[0].Data, &job) != nil {
					return false
				}
				seq = msgs[0].Sequence
				return true
			})
			// The forged update, then the job's result (as the worker
			// would answer), which ends the wait with the update read.
			sum, err := json.Marshal(jobs.RevokeAllSummary{UserID: "user_1", Revoked: 2, Passes: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []any{
				jobs.Progress{JobID: job.JobID, Op: jobs.OpRevokeAll, Outcome: jobs.InProgress, Total: 2, Done: 1,
					Progress: jobs.RevokeAllSummary{UserID: "user_1", NotLocked: tc.why}},
				jobs.Result{JobID: job.JobID, Op: jobs.OpRevokeAll, Outcome: jobs.Succeeded, Attempts: 1, Deliveries: 1, StreamSeq: seq,
					FinishedAt: time.Now(), Worker: "forger", Result: sum},
			} {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.nc.Publish(job.ReplyTo, b); err != nil {
					t.Fatal(err)
				}
			}
			r := <-done
			if !strings.Contains(r.stderr, "progress: 1/2") {
				t.Fatalf("the forged update was not read: %v", r)
			}
			switch {
			case tc.want == "" && strings.Contains(r.stderr, "NOT locked"):
				t.Errorf("a job that did not ask for the lock said NOT locked: %v", r)
			case tc.want != "" && !strings.Contains(r.stderr, tc.want):
				t.Errorf("want %q: %v", tc.want, r)
			case strings.Contains(r.stderr, "ignore"):
				t.Errorf("a forger's words printed as the worker's: %v", r)
			}
		})
	}
}

// TestRevokeAllBatchSaysNotLockedWhileItRuns: a batch of lock_user jobs
// with --wait said nothing of a user NOT locked until each job's end,
// although the docs promise --wait says it as soon as the lock is answered.
func TestRevokeAllBatchSaysNotLockedWhileItRuns(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	refused, locked := emu.CreateUser(), emu.CreateUser()
	emu.CreateSessions(refused, 2)
	emu.CreateSessions(locked, 2)
	emu.FailUser(refused, 403)
	env.StartWorker(t)
	in := fmt.Sprintf("{\"user_id\":%q,\"lock_user\":true,\"job_id\":\"b-refused\"}\n{\"user_id\":%q,\"lock_user\":true,\"job_id\":\"b-locked\"}\n", refused, locked)
	r := h.runWith(t, runOpts{stdin: in}, "revoke-all", "--file", "-", "--wait", "--timeout", "20s")
	want := "progress: job b-refused: user NOT locked (Clerk refused the lock, HTTP 403): the sessions are revoked all the same; lock the user in the Clerk dashboard if the account is being taken over\n"
	if r.code == 0 || strings.Count(r.stderr, want) != 1 || strings.Count(r.stderr, "NOT locked") != 1 {
		t.Fatalf("want the batch failed and, once, %q: %v", want, r)
	}
}

// TestBatchFindsRecordsWhileItWaits: a batch's --wait looked the jobs'
// records up only once its --timeout had passed. Jobs recorded but never
// answered (here dead-lettered because the worker refuses their inbox; or
// answers lost in a reconnect) held the batch for its whole --timeout, an
// hour here, and the operator who gave up saw "no result".
func TestBatchFindsRecordsWhileItWaits(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 3)
	env.StartWorker(t)
	in := fmt.Sprintf("{\"session_id\":%q,\"job_id\":\"far-1\"}\n{\"session_id\":%q,\"job_id\":\"far-2\"}\n{\"session_id\":%q,\"job_id\":\"far-3\"}\n", sess[0], sess[1], sess[2])
	ctx, giveUp := context.WithTimeout(t.Context(), 30*time.Second)
	defer giveUp()
	r := h.runWith(t, runOpts{stdin: in, ctx: ctx}, "--nats-inbox-prefix", "_OTHER", "revoke", "--file", "-", "--wait", "--timeout", "1h")
	if ctx.Err() != nil {
		t.Fatalf("the batch ended only when the operator gave up: %v", r)
	}
	if r.code != publishcli.ExitJobFailed || strings.Count(r.stdout, ": failed (invalid)") != 3 || !strings.Contains(r.stdout, "3 failed, 0 without a result") {
		t.Fatalf("want the three dead letters found while the batch waits: %v", r)
	}
}

// TestBigBatchFindsRecordsWhileItWaits: a look that found records was
// followed by the next only after another quiet second, 8 jobs a second:
// a batch of 480 jobs whose inbox the worker refuses took a minute
// (100,000 of them, hours: all of --timeout, and then "no result" for
// those the last lookup, ten seconds long, did not reach). Now the next
// look follows at once, the answers waiting read first.
func TestBigBatchFindsRecordsWhileItWaits(t *testing.T) {
	const n = 480 // at 8 a second, 59 s at least: past the operator's patience below
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), n)
	env.StartWorker(t)
	var in strings.Builder
	for i, s := range sess {
		fmt.Fprintf(&in, "{\"session_id\":%q,\"job_id\":\"big-%d\"}\n", s, i)
	}
	ctx, giveUp := context.WithTimeout(t.Context(), 45*time.Second)
	defer giveUp()
	r := h.runWith(t, runOpts{stdin: in.String(), ctx: ctx}, "--nats-inbox-prefix", "_OTHER", "revoke", "--file", "-", "--wait", "--timeout", "1h")
	if ctx.Err() != nil {
		t.Fatalf("the batch ended only when the operator gave up: %s", r.stdout[max(0, len(r.stdout)-300):])
	}
	if r.code != publishcli.ExitJobFailed || strings.Count(r.stdout, ": failed (invalid)") != n || !strings.Contains(r.stdout, fmt.Sprintf("%d failed, 0 without a result", n)) {
		t.Fatalf("want the %d dead letters found while the batch waits: %v", n, r)
	}
}
