// Package nats_test proves the server configurations in this directory:
// each one parses, and accounts.conf gives every principal what it needs
// and no more. The servers run in-process (nats-server as a library), from
// the very files an operator deploys.
package nats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	dlqpkg "github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// errorLog records a connection's asynchronous errors, where the server's
// permission violations arrive.
type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err.Error())
}

func (l *errorLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// waitViolation waits for the server to refuse a publish to subject.
func (l *errorLog) waitViolation(t *testing.T, op, subject string) {
	t.Helper()
	want := strings.ToLower(`permissions violation for ` + op + ` to "` + subject + `"`)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range l.all() {
			if strings.Contains(strings.ToLower(e), want) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("no permission violation for %s to %q; errors seen: %q", op, subject, l.all())
}

type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs *errorLog
}

// connect connects as user the way the clerkjobs programs do (natsconn),
// making inboxes under inboxPrefix when it is set.
func connect(t *testing.T, url, user, password, inboxPrefix string, extra ...nats.Option) *client {
	t.Helper()
	c := &client{errs: &errorLog{}}
	opts := append([]nats.Option{nats.ErrorHandler(c.errs.handler), nats.PermissionErrOnSubscribe(true)}, extra...)
	if inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(inboxPrefix))
	}
	nc, err := natsconn.Options{URL: url, User: user, Password: password, Name: "test " + user}.Connect(opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// refusedSubscribe checks that the server refuses a subscription to subject.
func (c *client) refusedSubscribe(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	defer sub.Unsubscribe()
	if _, err := sub.NextMsg(3 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("subscribe %s: NextMsg = %v, want a permissions violation", subject, err)
	}
}

// refusedRequests checks that the server refuses to let c publish to any of
// subjects (JetStream API requests, say): none is answered, and the server
// reports a violation for each.
func (c *client) refusedRequests(t *testing.T, subjects ...string) {
	t.Helper()
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for _, s := range subjects {
		if err := c.nc.PublishRequest(s, inbox, []byte("{}")); err != nil {
			t.Fatalf("publish to %s: %v", s, err)
		}
	}
	for _, s := range subjects {
		c.errs.waitViolation(t, "publish", s)
	}
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("a refused request was answered: %s", m.Data)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tenant is a client of a publishing service: its connection as its NATS
// user, and the Go client publishing as its tenant.
type tenant struct {
	*client
	jobs *clerkjobs.Client
}

func connectTenant(t *testing.T, url, user, password string, topo jobs.Topology) tenant {
	t.Helper()
	c := connect(t, url, user, password, "_INBOX."+user)
	jc, err := clerkjobs.NewClient(c.nc, clerkjobs.WithTopology(topo), clerkjobs.WithTenant(user))
	if err != nil {
		t.Fatal(err)
	}
	return tenant{c, jc}
}

func TestConfigsParse(t *testing.T) {
	testenv.DeployPasswords(t)
	t.Setenv("NATS_SERVER_NAME", "nats-2")
	o, err := server.ProcessConfigFile("cluster.conf")
	if err != nil {
		t.Fatalf("cluster.conf: %v", err)
	}
	if o.ServerName != "nats-2" || o.Cluster.Name != "clerkjobs" || len(o.Routes) != 3 || !o.JetStream {
		t.Errorf("cluster.conf: server %q, cluster %q, %d routes, JetStream %v", o.ServerName, o.Cluster.Name, len(o.Routes), o.JetStream)
	}
	o, err = server.ProcessConfigFile("server.conf")
	if err != nil {
		t.Fatalf("server.conf: %v", err)
	}
	if !o.JetStream || o.MaxPayload < jobs.MaxJobBytes+4096 {
		t.Errorf("server.conf: JetStream %v, max payload %d", o.JetStream, o.MaxPayload)
	}
	// JetStream reserves a capped stream's max_bytes against
	// max_file_store when the stream is created: the jobs, results and
	// dead-letter caps must fit, with room for the buckets, or the worker
	// cannot create its streams.
	top := jobs.DefaultTopology()
	reserved := top.JobsMaxBytes + top.ResultsMaxBytes + top.DeadLetterMaxBytes
	for _, f := range []string{"server.conf", "cluster.conf"} { // tls.conf: 10GB, as server.conf
		o, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if o.JetStreamMaxStore < reserved+256<<20 {
			t.Errorf("%s: max_file_store %d bytes; the default caps of the streams reserve %d of it, and the buckets need room beside them: want at least %d", f, o.JetStreamMaxStore, reserved, reserved+256<<20)
		}
	}
	// A missing password stops the server from starting: no user is ever
	// left without one.
	t.Setenv("CLERKJOBS_OPS_PASSWORD", "") // restored at the end
	if err := os.Unsetenv("CLERKJOBS_OPS_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ProcessConfigFile("server.conf"); err == nil || !strings.Contains(err.Error(), "CLERKJOBS_OPS_PASSWORD") {
		t.Errorf("server.conf without CLERKJOBS_OPS_PASSWORD: %v, want an error naming it", err)
	}
}

// The whole system under accounts.conf: a worker as user "worker", two
// services, an operator.
func TestPermissions(t *testing.T) {
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "server.conf")
	url := s.ClientURL()

	// Anonymous clients are refused.
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}

	emu := emulator.NewServer()
	t.Cleanup(emu.Close)
	userID := emu.Emulator.Seed(1, 4)[0]
	sessions := emu.Emulator.UserSessionIDs(userID)
	otherUser := emu.Emulator.Seed(1, 3)[0]
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(emu.URL))
	if err != nil {
		t.Fatal(err)
	}

	// The worker, with its default inbox prefix, creates the streams and
	// runs; any permission it lacks shows in wk.errs.
	wk := connect(t, url, "worker", pw["worker"], "")
	logs := &testenv.SyncBuffer{}
	cfg := workerConfig(logs)
	w, err := worker.New(wk.nc, clerk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
		if e := wk.errs.all(); len(e) > 0 {
			t.Errorf("the worker hit errors under its user: %q", e)
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	testenv.Eventually(t, 10*time.Second, "worker ready", func() bool { return w.Ready() == nil })
	if drifts, err := cfg.Topology.Check(ctxT(t), wk.js); err != nil || len(drifts) != 0 {
		t.Errorf("Check as the worker user = %v, %v", drifts, err)
	}

	subj := cfg.Topology.Subjects
	a := connectTenant(t, url, "svc_a", pw["svc_a"], cfg.Topology)
	b := connectTenant(t, url, "svc_b", pw["svc_b"], cfg.Topology)
	ops := connect(t, url, "ops", pw["ops"], "_INBOX.ops")

	t.Run("a service gets its token and no one else can listen", func(t *testing.T) {
		b.refusedSubscribe(t, "_INBOX.svc_a.>")
		b.refusedSubscribe(t, "_INBOX.>")
		b.refusedSubscribe(t, ">")
		ops.refusedSubscribe(t, "_INBOX.svc_a.>")

		tok, err := a.jobs.SessionToken(ctxT(t), sessions[0], nil)
		if err != nil || strings.Count(tok.JWT(), ".") != 2 {
			t.Fatalf("service A's token: %v", err)
		}
	})

	t.Run("publish --wait works as a restricted service with --tenant", func(t *testing.T) {
		var stdout, stderr strings.Builder
		env := map[string]string{"NATS_PASSWORD": pw["svc_a"]}
		code := publishcli.RunEnv(ctxT(t), []string{"--nats-url", url, "--nats-user", "svc_a", "--tenant", "svc_a",
			"token", sessions[2], "--wait", "--json", "--timeout", "10s"},
			publishcli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
		var r jobs.Result
		if code != 0 || json.Unmarshal([]byte(stdout.String()), &r) != nil || r.Outcome != jobs.Succeeded || r.Secret == nil || r.Tenant != "svc_a" {
			t.Fatalf("publish token --wait as svc_a: exit %d, stderr %q", code, stderr.String())
		}
		// Without the tenant the same user may not publish the job at all:
		// the command fails, naming the problem.
		stdout.Reset()
		stderr.Reset()
		code = publishcli.RunEnv(ctxT(t), []string{"--nats-url", url, "--nats-user", "svc_a", "--nats-inbox-prefix", "_INBOX.svc_a", "--ack-timeout", "2s", "revoke", sessions[3]},
			publishcli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
		if code != publishcli.ExitUnavailable {
			t.Errorf("publish as svc_a outside its tenant: exit %d, want %d (%s)", code, publishcli.ExitUnavailable, stderr.String())
		}
		// With an inbox prefix the user may not read, the command says to
		// set the right one.
		stdout.Reset()
		stderr.Reset()
		code = publishcli.RunEnv(ctxT(t), []string{"--nats-url", url, "--nats-user", "svc_a", "--tenant", "svc_a", "--nats-inbox-prefix", "_INBOX.other", "revoke", sessions[3]},
			publishcli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
		if code == 0 || !strings.Contains(stderr.String(), "refused the NATS user svc_a the subscription to its reply inbox") ||
			!strings.Contains(stderr.String(), "needs --nats-inbox-prefix (NATS_INBOX_PREFIX)") {
			t.Errorf("publish without --inbox-prefix as a user restricted to _INBOX.svc_a: exit %d, stderr %q; want a failure that says to set the prefix", code, stderr.String())
		}
	})

	// runPublish runs the command line as user, the way an operator would.
	runPublish := func(t *testing.T, user string, args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr strings.Builder
		env := map[string]string{"NATS_URL": url, "NATS_USER": user, "NATS_PASSWORD": pw[user], "NATS_INBOX_PREFIX": "_INBOX." + user}
		// No deadline, as from a shell: each JetStream request then has
		// the client's own timeout, and a refused one costs only that.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		code := publishcli.RunEnv(ctx, args, publishcli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
		return code, stdout.String(), stderr.String()
	}

	t.Run("ops runs publish status, step 1 of the runbook", func(t *testing.T) {
		code, stdout, stderr := runPublish(t, "ops", "status", "--discover-wait", "3s")
		if code != publishcli.ExitOK || !strings.Contains(stdout, "workers: 1 instance: "+cfg.Instance+" (") ||
			!strings.Contains(stdout, "session-worker") || strings.Contains(stdout+stderr, "refused") {
			t.Fatalf("publish status as ops: exit %d\n%s\n%s", code, stdout, stderr)
		}
	})

	t.Run("a status query refused by permissions says so", func(t *testing.T) {
		code, stdout, stderr := runPublish(t, "svc_a", "status")
		for _, want := range []string{
			"workers: could not ask the workers: The server refused the NATS user svc_a publishing to $SRV.PING.clerkjobs-worker",
			"refused the NATS user svc_a publishing to $JS.API.STREAM.INFO.SESSION_JOBS",
			"refused the NATS user svc_a publishing to $JS.API.STREAM.INFO.SESSION_DLQ",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("status as svc_a lacks %q:\n%s", want, stdout)
			}
		}
		if code != publishcli.ExitUnavailable || strings.Contains(stdout, "none answered") {
			t.Errorf("publish status as svc_a: exit %d\n%s\n%s", code, stdout, stderr)
		}
	})

	t.Run("services read their own records and nothing else", func(t *testing.T) {
		for _, c := range []tenant{a, b} {
			c.refusedSubscribe(t, "sessions.results.>")
			c.refusedSubscribe(t, "sessions.dlq.>")
			c.refusedSubscribe(t, "sessions.*")
		}
		a.refusedRequests(t,
			"$JS.API.STREAM.INFO.SESSION_DLQ", "$JS.API.STREAM.MSG.GET.SESSION_DLQ",
			"$JS.API.STREAM.INFO.SESSION_RESULTS", "$JS.API.STREAM.MSG.GET.SESSION_RESULTS",
			"$JS.API.STREAM.INFO.SESSION_JOBS", "$JS.API.STREAM.MSG.GET.SESSION_JOBS", "$JS.API.DIRECT.GET.SESSION_JOBS",
			"$JS.API.CONSUMER.CREATE.SESSION_DLQ.peek", "$JS.API.CONSUMER.CREATE.SESSION_RESULTS.peek",
			"$JS.API.CONSUMER.MSG.NEXT.SESSION_JOBS.session-worker", "$JS.API.STREAM.DELETE.SESSION_JOBS", "$JS.API.STREAM.NAMES",
			// Direct gets: the body form reads any message; the subject form
			// only under the service's own tenant, whatever wildcards the
			// subject holds (NATS matches them literally against the grant).
			"$JS.API.DIRECT.GET.SESSION_RESULTS", "$JS.API.DIRECT.GET.SESSION_DLQ",
			"$JS.API.DIRECT.GET.SESSION_RESULTS.sessions.results.svc_b.>", "$JS.API.DIRECT.GET.SESSION_DLQ.sessions.dlq.svc_b.>",
			"$JS.API.DIRECT.GET.SESSION_RESULTS.sessions.results.*.>", "$JS.API.DIRECT.GET.SESSION_RESULTS.sessions.results.>",
			"$JS.API.DIRECT.GET.SESSION_DLQ.sessions.>", "$JS.API.DIRECT.GET.SESSION_RESULTS.>",
			// Nor forge a record (a result would make the worker remove the
			// job's dead letter), nor delete one, nor answer in the
			// worker's place.
			"sessions.results.revoke", "sessions.dlq.revoke", "sessions.results.svc_a.revoke.x.g.1", "_INBOX.svc_a.x",
			"$JS.API.STREAM.MSG.DELETE.SESSION_DLQ", "$JS.API.STREAM.MSG.DELETE.SESSION_RESULTS",
		)
		// The jetstream package reports the refusal as a failure too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := a.js.Stream(ctx, "SESSION_DLQ"); err == nil {
			t.Error("service A read the dead-letter stream's info")
		}
	})

	t.Run("revoke and revoke_all run under the worker's user", func(t *testing.T) {
		if rev, err := a.jobs.RevokeSession(ctxT(t), sessions[1], nil); err != nil || rev.Session.Status != clerkapi.StatusRevoked {
			t.Fatalf("revoke = %+v, %v", rev, err)
		}
		// revoke_all keeps its progress in the key-value bucket.
		if _, err := a.jobs.RevokeAll(ctxT(t), otherUser, nil, nil); err != nil {
			t.Fatalf("revoke_all: %v", err)
		}
		for _, id := range emu.Emulator.UserSessionIDs(otherUser) {
			if s, _ := emu.Emulator.Session(id); s.Status != clerkapi.StatusRevoked {
				t.Errorf("session %s of %s is %s after revoke_all", id, otherUser, s.Status)
			}
		}
	})

	t.Run("tenants are kept apart", func(t *testing.T) {
		// A cannot publish as B, nor outside its tenant.
		a.refusedRequests(t, "sessions.tenant.svc_b.revoke", "sessions.tenant.svc_b.token.request", "sessions.revoke", "sessions.token.request")

		// A's job with B's inbox as reply_to: dead-lettered as invalid before
		// Clerk is asked anything, and B hears nothing.
		bInbox, err := b.nc.SubscribeSync("_INBOX.svc_b.>")
		if err != nil {
			t.Fatal(err)
		}
		defer bInbox.Unsubscribe()
		if err := b.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		calls := len(emu.Emulator.Calls())
		if _, err := a.jobs.Submit(ctxT(t), &jobs.TokenArgs{Common: jobs.Common{JobID: "steal-1", ReplyTo: "_INBOX.svc_b.x"}, SessionID: sessions[0]}); err != nil {
			t.Fatal(err)
		}
		_, err = a.jobs.Wait(ctxT(t), "steal-1") // A reads its own dead letter
		var failed *clerkjobs.JobError
		if !errors.As(err, &failed) || failed.Class != jobs.ClassInvalid || failed.Field != "/reply_to" || failed.Tenant != "svc_a" {
			t.Fatalf("A's job replying to B's inbox: %v; want it dead-lettered invalid /reply_to", err)
		}
		if m, err := bInbox.NextMsg(300 * time.Millisecond); err == nil {
			t.Errorf("B's inbox received %d bytes from A's job", len(m.Data))
		}
		if n := len(emu.Emulator.Calls()) - calls; n != 0 {
			t.Errorf("%d Clerk calls for a job refused before it ran", n)
		}
		// B cannot read A's records: its Wait finds nothing.
		short, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
		defer cancel()
		if _, err := b.jobs.Wait(short, "steal-1"); !errors.Is(err, clerkjobs.ErrNoResult) {
			t.Errorf("B waiting for A's job: %v; want no result", err)
		}

		// Both use job id incident-77: two jobs, both run.
		users := []string{emu.Emulator.Seed(1, 2)[0], emu.Emulator.Seed(1, 2)[0]}
		for i, c := range []tenant{a, b} {
			sum, err := c.jobs.RevokeAll(ctxT(t), users[i], &clerkjobs.RevokeAllOptions{JobID: "incident-77"}, nil)
			if err != nil || sum.Revoked != 2 || sum.UserID != users[i] {
				t.Fatalf("tenant %d's incident-77: %+v, %v", i, sum, err)
			}
		}
		for i, c := range []tenant{a, b} {
			r, err := c.jobs.Wait(ctxT(t), "incident-77")
			var sum jobs.RevokeAllSummary
			if err != nil || json.Unmarshal(r.Result, &sum) != nil || sum.UserID != users[i] {
				t.Errorf("tenant %d's Wait(incident-77) = %+v, %v; want its own record", i, r, err)
			}
		}

		// A squats B's next job id (the header is A's to choose): B's publish
		// of that id is deduplicated against A's message, and B hears of it
		// (it cannot find its own record of that job), never silently.
		squat := nats.NewMsg(subj.TenantJob("svc_a", jobs.OpRevoke))
		squat.Header.Set(jetstream.MsgIDHeader, jobs.MsgID("svc_b", "incident-99"))
		squat.Data = []byte(`{"job_id":"squat","session_id":"` + sessions[1] + `"}`)
		if _, err := a.js.PublishMsg(ctxT(t), squat); err != nil {
			t.Fatal(err)
		}
		_, err = b.jobs.Submit(ctxT(t), &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-99"}, SessionID: sessions[1]})
		if !errors.Is(err, jobs.ErrJobIDReused) && !errors.Is(err, jobs.ErrDuplicateUnverified) {
			t.Errorf("B's publish of a squatted id: %v; want an error saying the job was not queued", err)
		}
		short, cancel = context.WithTimeout(ctxT(t), 3*time.Second)
		defer cancel()
		_, err = b.jobs.Request(short, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-99"}, SessionID: sessions[1]})
		if !errors.Is(err, clerkjobs.ErrNoResult) || !errors.Is(err, jobs.ErrDuplicateUnverified) {
			t.Errorf("B's request under a squatted id: %v; want no result, saying the duplicate could not be compared", err)
		}

		// A client whose inbox prefix its user may not subscribe to is
		// told so before anything is published; one whose inboxes are not
		// its tenant's, where the worker never answers, too.
		wrong, err := clerkjobs.NewClient(a.nc, clerkjobs.WithTopology(cfg.Topology), clerkjobs.WithTenant("svc_a"), clerkjobs.WithInboxPrefix("_INBOX.svc_b.svc_a"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wrong.RevokeSession(ctxT(t), sessions[1], nil); !errors.Is(err, clerkjobs.ErrUnavailable) || !strings.Contains(err.Error(), "inbox prefix") {
			t.Errorf("a client with another service's inbox prefix: %v; want ErrUnavailable about the inbox", err)
		}
		wrong, err = clerkjobs.NewClient(a.nc, clerkjobs.WithTopology(cfg.Topology), clerkjobs.WithTenant("svc_a"), clerkjobs.WithInboxPrefix("_INBOX.svc_b"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wrong.RevokeSession(ctxT(t), sessions[1], nil); !errors.Is(err, jobs.ErrInvalid) || !strings.Contains(err.Error(), "inbox prefix") {
			t.Errorf("a client with inboxes outside its tenant: %v; want an invalid job about the inbox prefix", err)
		}
	})

	t.Run("a tenant cannot make JetStream write under another tenant", func(t *testing.T) {
		// NATS permissions check the subject a client publishes to, never
		// the reply subject it names, and JetStream answers (an
		// acknowledgement, a direct get) on that reply subject. In one
		// account, an answer sent to a subject a stream captures is stored
		// there: a job on B's subject, a record under B's tenant. A learns
		// what it needs from its own records: the jobs stream's
		// generation, and the sequence B's next job will get.
		recs := func(filter string) uint64 {
			stream := map[bool]string{true: "SESSION_DLQ", false: "SESSION_RESULTS"}[strings.Contains(filter, ".dlq.")]
			st, err := ops.js.Stream(ctxT(t), stream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctxT(t), jetstream.WithSubjectFilter(filter))
			if err != nil {
				t.Fatal(err)
			}
			var n uint64
			for _, c := range info.State.Subjects {
				n += c
			}
			return n
		}
		results, letters := recs("sessions.results.svc_b.>"), recs("sessions.dlq.svc_b.>")

		last, err := a.jobs.Submit(ctxT(t), &jobs.RevokeArgs{Common: jobs.Common{JobID: "decoy-1"}, SessionID: "sess_decoy1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.jobs.Wait(ctxT(t), "decoy-1")
		if !errors.As(err, new(*clerkjobs.JobError)) {
			t.Fatalf("A's decoy: %v, want its dead letter", err)
		}
		own, err := a.nc.Request("$JS.API.DIRECT.GET.SESSION_DLQ."+subj.JobDeadLetters("svc_a", "decoy-1", 0), nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rs, ok := subj.ParseDeadLetter(own.Header.Get(jetstream.SubjectHeader))
		if !ok {
			t.Fatalf("A's own dead letter is on %q", own.Header.Get(jetstream.SubjectHeader))
		}
		// A publishes one job of its own (sequence last+1), its
		// acknowledgement addressed to the result subject of B's next job
		// (last+2).
		bNext := jobs.RecordKey{Tenant: "svc_b", Op: jobs.OpRevoke, JobID: "doomed-1", Gen: rs.Gen, Seq: last.Seq + 2}
		decoy := func(id, replyTo string) {
			t.Helper()
			body := `{"job_id":"` + id + `","session_id":"sess_` + strings.ReplaceAll(id, "-", "") + `"}`
			if err := a.nc.PublishRequest(subj.TenantJob("svc_a", jobs.OpRevoke), replyTo, []byte(body)); err != nil {
				t.Fatal(err)
			}
			if _, err := a.jobs.Wait(ctxT(t), id); !errors.As(err, new(*clerkjobs.JobError)) {
				t.Fatalf("A's %s: %v, want its dead letter", id, err)
			}
		}
		decoy("decoy-2", subj.Result(bNext))

		// B's job fails (its session is gone): B must learn so from its
		// dead letter, not find a result A placed there.
		sub, err := b.jobs.Submit(ctxT(t), &jobs.RevokeArgs{Common: jobs.Common{JobID: "doomed-1"}, SessionID: "sess_doomed1"})
		if err != nil {
			t.Fatal(err)
		}
		if sub.Seq != bNext.Seq {
			t.Fatalf("B's job is at sequence %d, the test expected %d (another job ran in between)", sub.Seq, bNext.Seq)
		}
		r, err := b.jobs.WaitSubmitted(ctxT(t), sub)
		var failed *clerkjobs.JobError
		if !errors.As(err, &failed) || failed.Class != jobs.ClassPermanent || failed.Tenant != "svc_b" {
			t.Errorf("B's failing job under a result A addressed to it: Wait = %+v, %v; want its permanent failure", r, err)
		}

		// A's answers addressed to B's job subject: an acknowledgement, and
		// a direct get of A's own dead letter (a job's body, A's to write).
		// No job runs as B.
		decoy("decoy-3", subj.TenantJob("svc_b", jobs.OpRevoke))
		if err := a.nc.PublishRequest("$JS.API.DIRECT.GET.SESSION_DLQ."+subj.JobDeadLetters("svc_a", "decoy-1", 0), subj.TenantJob("svc_b", jobs.OpRevoke), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if n := recs("sessions.results.svc_b.>") - results; n != 0 {
			t.Errorf("%d results appeared under B; B's only job failed", n)
		}
		if n := recs("sessions.dlq.svc_b.>") - recs(subj.JobDeadLetters("svc_b", "doomed-1", 0)) - letters; n != 0 {
			t.Errorf("%d jobs B never published were dead-lettered under B", n)
		}
	})

	t.Run("ops reads results and the workers' status", func(t *testing.T) {
		st, err := ops.js.Stream(ctxT(t), "SESSION_RESULTS")
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Msgs; n < 3 {
			t.Fatalf("results stream holds %d records, want at least 3", n)
		}
		cons, err := st.OrderedConsumer(ctxT(t), jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatalf("ordered consumer on results: %v", err)
		}
		if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
			t.Fatalf("read a result: %v", err)
		}
		m, err := ops.nc.Request("clerkjobs.worker."+cfg.Instance+".status", nil, 5*time.Second)
		if err != nil {
			t.Fatalf("worker status: %v", err)
		}
		var ws worker.Status
		if json.Unmarshal(m.Data, &ws) != nil || !ws.Ready {
			t.Errorf("worker status = %s", m.Data)
		}
		if _, err := ops.nc.Request("$SRV.PING."+worker.ServiceName, nil, 5*time.Second); err != nil {
			t.Errorf("micro ping: %v", err)
		}
		ops.refusedRequests(t, "$JS.API.STREAM.DELETE.SESSION_RESULTS", "$JS.API.STREAM.PURGE.SESSION_JOBS",
			"$JS.API.CONSUMER.MSG.NEXT.SESSION_JOBS.session-worker", "sessions.results.revoke", "_INBOX.svc_a.x",
			// A reset or a delete of the jobs consumer hands out the jobs in
			// flight again (README: one terminal record per job).
			"$JS.API.CONSUMER.RESET.SESSION_JOBS.session-worker", "$JS.API.CONSUMER.DELETE.SESSION_JOBS.session-worker")
	})

	// ops publishes jobs (the console's revoke_all, replays), but a token
	// or refresh job's answer is a session token: one outside tenants could
	// name ops' own inbox as its reply_to, and a tenant's is answered only
	// in that tenant's inbox. A tenant named "ops" is answered under
	// _INBOX.ops., ops' own inbox: its token jobs are not ops' either.
	t.Run("ops cannot mint a session token", func(t *testing.T) {
		mint, err := ops.nc.SubscribeSync("_INBOX.ops.mint")
		if err != nil {
			t.Fatal(err)
		}
		defer mint.Unsubscribe()
		calls := len(emu.Emulator.Calls())
		body := []byte(`{"session_id":"` + sessions[0] + `","reply_to":"_INBOX.ops.mint"}`)
		for _, tenant := range []string{"", "ops"} {
			for _, o := range []jobs.Op{jobs.OpToken, jobs.OpRefresh} {
				if err := ops.nc.PublishRequest(subj.TenantJob(tenant, o), "_INBOX.ops.ack", body); err != nil {
					t.Fatal(err)
				}
				ops.errs.waitViolation(t, "publish", subj.TenantJob(tenant, o))
			}
		}
		// A tenant's token job is ops' to replay: stored, and dead-lettered
		// for its reply_to outside the tenant's inboxes.
		m := nats.NewMsg(subj.TenantJob("svc_a", jobs.OpToken))
		m.Data = body
		if _, err := ops.js.PublishMsg(ctxT(t), m); err != nil {
			t.Fatalf("ops publishes a tenant's token job: %v", err)
		}
		if m, err := mint.NextMsg(2 * time.Second); err == nil {
			t.Errorf("ops' inbox received an answer of %d bytes to a token or refresh job", len(m.Data))
		}
		if n := len(emu.Emulator.Calls()) - calls; n != 0 {
			t.Errorf("%d Clerk calls for token or refresh jobs ops published", n)
		}
	})

	t.Run("the worker's user may do what its backstop does", func(t *testing.T) {
		// A job that ran out of deliveries while no worker could
		// dead-letter it: the worker hears the advisory, reads the job by
		// sequence, dead-letters it and deletes it. A missing sequence gets
		// an error from JetStream, an answer: the permission is there.
		wk2 := connect(t, url, "worker", pw["worker"], "")
		jobsStream, err := wk2.js.Stream(ctxT(t), cfg.Topology.JobsStream)
		if err != nil {
			t.Fatal(err)
		}
		answered := func(err error) bool { return err != nil && strings.Contains(err.Error(), "API error") }
		if _, err := jobsStream.GetMsg(ctxT(t), 1<<40); !answered(err) {
			t.Errorf("worker user gets a job by sequence: %v, want an answer from JetStream", err)
		}
		if err := jobsStream.DeleteMsg(ctxT(t), 1<<40); !answered(err) {
			t.Errorf("worker user deletes a job by sequence: %v, want an answer from JetStream", err)
		}
		sub, err := wk2.nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SESSION_JOBS.session-worker")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sub.NextMsg(200 * time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
			t.Errorf("worker user listens for max-deliveries advisories: %v", err)
		}
		// The advisories the given-up stream keeps: read (by subject, from
		// a sequence), deleted once their job is dead-lettered.
		givenUp, err := wk2.js.Stream(ctxT(t), cfg.Topology.GivenUpStream())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := givenUp.GetMsg(ctxT(t), 1<<40, jetstream.WithGetMsgSubject(cfg.Topology.MaxDeliveriesSubject())); !answered(err) {
			t.Errorf("worker user reads a kept advisory: %v, want an answer from JetStream", err)
		}
		if err := givenUp.DeleteMsg(ctxT(t), 1<<40); !answered(err) {
			t.Errorf("worker user deletes a kept advisory: %v, want an answer from JetStream", err)
		}
		// A dead letter beside its job's result is deleted: the result
		// wins.
		dlq, err := wk2.js.Stream(ctxT(t), cfg.Topology.DeadLetterStream)
		if err != nil {
			t.Fatal(err)
		}
		if err := dlq.DeleteMsg(ctxT(t), 1<<40); !answered(err) {
			t.Errorf("worker user deletes a dead letter by sequence: %v, want an answer from JetStream", err)
		}
		// And no more than that.
		wk2.refusedRequests(t, "$JS.API.STREAM.DELETE.SESSION_JOBS", "$JS.API.STREAM.PURGE.SESSION_DLQ",
			"$JS.API.STREAM.MSG.DELETE.SESSION_RESULTS", "$JS.API.STREAM.CREATE.OTHER", "$JS.API.CONSUMER.CREATE.SESSION_JOBS.other",
			"$JS.API.DIRECT.GET.SESSION_JOBS", "sessions.revoke",
			"$JS.API.CONSUMER.RESET.SESSION_JOBS.session-worker", "$JS.API.CONSUMER.DELETE.SESSION_JOBS.session-worker")
	})

	t.Run("ops reads, replays and deletes a dead letter", func(t *testing.T) {
		failing := sessions[2]
		emu.Emulator.FailSession(failing, 404)
		_, err := a.jobs.RevokeSession(ctxT(t), failing, &clerkjobs.RevokeOptions{JobID: "gone-1"})
		var failed *clerkjobs.JobError
		if !errors.As(err, &failed) || failed.Class != jobs.ClassPermanent || failed.DeadLetterSeq == 0 {
			t.Fatalf("revoke of a missing session = %v; want a permanent failure with its dead letter", err)
		}
		dlq, err := ops.js.Stream(ctxT(t), "SESSION_DLQ")
		if err != nil {
			t.Fatal(err)
		}
		cons, err := dlq.OrderedConsumer(ctxT(t), jetstream.OrderedConsumerConfig{FilterSubjects: []string{"sessions.dlq.>"}})
		if err != nil {
			t.Fatalf("ordered consumer on the DLQ: %v", err)
		}
		for {
			m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatalf("read the dead letters: %v", err)
			}
			if meta, _ := m.Metadata(); meta.Sequence.Stream == failed.DeadLetterSeq {
				break
			}
		}
		raw, err := dlq.GetMsg(ctxT(t), failed.DeadLetterSeq)
		if err != nil {
			t.Fatalf("get the dead letter: %v", err)
		}
		// Replay: the job's body (the dead letter's body), on its original
		// subject (the tenant's), with a new id.
		dl, err := jobs.ParseDeadLetter(raw.Header)
		if err != nil || dl.Subject != subj.TenantJob("svc_a", jobs.OpRevoke) || dl.Error.Class != jobs.ClassPermanent {
			t.Fatalf("dead letter headers %v: %+v, %v", raw.Header, dl, err)
		}
		emu.Emulator.FailSession(failing, 0)
		replay := nats.NewMsg(dl.Subject)
		replay.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("replay-%d-1", failed.DeadLetterSeq))
		replay.Data = raw.Data
		if _, err := ops.js.PublishMsg(ctxT(t), replay); err != nil {
			t.Fatalf("ops replays: %v", err)
		}
		// Service A finds the replayed job's result, the newest record of
		// its id.
		testenv.Eventually(t, 15*time.Second, "the replayed job succeeded", func() bool {
			r, err := a.jobs.Wait(ctxT(t), "gone-1")
			return err == nil && r.Outcome == jobs.Succeeded
		})
		if err := dlq.DeleteMsg(ctxT(t), failed.DeadLetterSeq); err != nil {
			t.Fatalf("delete the dead letter: %v", err)
		}
	})

	// interrupted dead-letters a revoke of session under jobID, has Clerk
	// answer the session's revoke with status from then on (0: as it is),
	// and republishes the letter's job as a replay's first run does,
	// acknowledged, before it is interrupted. It returns the letter's
	// sequence and the dead-letter stream.
	interrupted := func(t *testing.T, session, jobID string, status int) (uint64, jetstream.Stream) {
		t.Helper()
		emu.Emulator.FailSession(session, 404)
		_, err := a.jobs.RevokeSession(ctxT(t), session, &clerkjobs.RevokeOptions{JobID: jobID})
		var failed *clerkjobs.JobError
		if !errors.As(err, &failed) || failed.DeadLetterSeq == 0 {
			t.Fatalf("revoke of a missing session = %v; want a failure with its dead letter", err)
		}
		emu.Emulator.FailSession(session, status)
		t.Cleanup(func() { emu.Emulator.FailSession(session, 0) })
		dlqStream, err := ops.js.Stream(ctxT(t), "SESSION_DLQ")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := dlqStream.GetMsg(ctxT(t), failed.DeadLetterSeq)
		if err != nil {
			t.Fatal(err)
		}
		dl, err := jobs.ParseDeadLetter(raw.Header)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(dl.Subject)
		m.Data = raw.Data
		m.Header.Set(jetstream.MsgIDHeader, dlqpkg.ReplayMsgID(dlqStream.CachedInfo().Created, failed.DeadLetterSeq, 1))
		if _, err := ops.js.PublishMsg(ctxT(t), m); err != nil {
			t.Fatalf("ops replays: %v", err)
		}
		return failed.DeadLetterSeq, dlqStream
	}

	// publish dlq replay, interrupted between the republish and the delete,
	// is run again, as docs/publish.md says is safe: the jobs stream drops
	// the republished job as a duplicate, and the replay must tell that it
	// is its own job (and delete the letter) with only the ops user's
	// rights, which do not read pending jobs.
	t.Run("ops runs an interrupted replay again", func(t *testing.T) {
		seq, dlqStream := interrupted(t, sessions[3], "gone-2", 0)
		// Run again once the job has run, as the replay's advice says: its
		// record is what tells ops (who may not read pending jobs) that it
		// is the replay's own. Run again before, the replay could not tell,
		// and kept the letter (exit 4) when the worker was slower than the
		// command's start.
		testenv.Eventually(t, 15*time.Second, "the republished job ran", func() bool {
			r, err := a.jobs.Wait(ctxT(t), "gone-2")
			return err == nil && r.Outcome == jobs.Succeeded
		})
		code, stdout, stderr := runPublish(t, "ops", "dlq", "replay", fmt.Sprint(seq))
		if code != publishcli.ExitOK {
			t.Errorf("the same replay run again as ops: exit %d, want 0\n%s\n%s", code, stdout, stderr)
		}
		if _, err := dlqStream.GetMsg(ctxT(t), seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("the dead letter after the re-run: %v; want it deleted", err)
		}
	})

	// The same, while the republished job waits in the jobs stream (Clerk
	// failing): ops cannot read it, so the re-run cannot tell whether it
	// is its own. The letter is kept, and what to do must not run the job
	// twice: replayed after the deduplication window while its own job
	// still waits, it would be queued again.
	t.Run("ops runs an interrupted replay again while its job waits", func(t *testing.T) {
		seq, _ := interrupted(t, sessions[1], "gone-3", 503)
		code, stdout, stderr := runPublish(t, "ops", "dlq", "replay", fmt.Sprint(seq))
		out := stdout + stderr
		if code == publishcli.ExitOK || !strings.Contains(out, "the dead letter is kept") {
			t.Fatalf("re-run while the job waits: exit %d; want a failure that keeps the dead letter\n%s", code, out)
		}
		if !strings.Contains(out, "once that job has run, run the same replay again") || strings.Contains(out, "publish again with another job id") {
			t.Errorf("re-run while the job waits: want it told to run the replay again once its job has run, not to replay after the window nor publish with another id:\n%s", out)
		}
	})
}

func workerConfig(logs *testenv.SyncBuffer) worker.Config {
	c := clerkjobstest.WorkerConfig(testenv.TestTopology())
	c.Concurrency = 4
	c.Instance = "test-worker"
	c.Logger = zerolog.New(logs).With().Timestamp().Logger()
	return c
}

// A service's user may subscribe only under its own inbox prefix, and
// JetStream answers a publish or a direct get on the connection's own
// inboxes: a connection made without nats.CustomInboxPrefix gets no answer
// at all. The client says so, not that the job's stream or its records
// might be missing.
func TestTenantClientOnAConnectionWithOtherInboxes(t *testing.T) {
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "server.conf")
	topo := testenv.TestTopology()
	wk := connect(t, s.ClientURL(), "worker", pw["worker"], "")
	if _, err := topo.Ensure(ctxT(t), wk.js); err != nil {
		t.Fatal(err)
	}
	a := connect(t, s.ClientURL(), "svc_a", pw["svc_a"], "") // inboxes under _INBOX.<nuid>
	c, err := clerkjobs.NewClient(a.nc, clerkjobs.WithTopology(topo), clerkjobs.WithTenant("svc_a"), clerkjobs.WithPublishTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	const fix = `nats.CustomInboxPrefix("_INBOX.svc_a")`
	_, err = c.Submit(ctxT(t), &jobs.RevokeArgs{Common: jobs.Common{JobID: "lost-ack-1"}, SessionID: "sess_1"})
	if !errors.Is(err, clerkjobs.ErrUnavailable) || !strings.Contains(err.Error(), fix) {
		t.Errorf("Submit on a connection whose inboxes the user may not read: %v; want it to say to connect with %s", err, fix)
	}
	short, cancel := context.WithTimeout(ctxT(t), 2*time.Second)
	defer cancel()
	_, err = c.Wait(short, "lost-ack-1")
	if err == nil || !strings.Contains(err.Error(), fix) || strings.Contains(err.Error(), "is this NATS user allowed") {
		t.Errorf("Wait on a connection whose inboxes the user may not read: %v; want it to say to connect with %s, not to doubt the direct-get grant", err, fix)
	}
}

// The limits accounts.conf gives each tenant's account (deploy/README.md
// says the same): a service cannot take the server's connections, memory
// or bandwidth from the others.
const tenantMaxConnections = 64

// A tenant over its account's limits is refused: a connection past
// max_connections (another tenant still connects), a message larger than
// the largest job the jobs stream takes (max_payload); a job of the
// largest size is still taken.
func TestTenantLimits(t *testing.T) {
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "server.conf")
	url := s.ClientURL()
	topo := testenv.TestTopology()
	wk := connect(t, url, "worker", pw["worker"], "")
	if _, err := topo.Ensure(ctxT(t), wk.js); err != nil {
		t.Fatal(err)
	}
	maxPayload := int(topo.JobsStreamConfig().MaxMsgSize)

	t.Run("max_payload: the largest job and no more", func(t *testing.T) {
		a := connectTenant(t, url, "svc_a", pw["svc_a"], topo)
		// A job of MaxJobBytes, with headers, is taken.
		big := nats.NewMsg(topo.Subjects.TenantJob("svc_a", jobs.OpRevoke))
		big.Data = make([]byte, jobs.MaxJobBytes)
		big.Header.Set(jetstream.MsgIDHeader, "svc_a:largest-job")
		if _, err := a.js.PublishMsg(ctxT(t), big); err != nil {
			t.Fatalf("a job of %d bytes as svc_a: %v", jobs.MaxJobBytes, err)
		}
		if got := a.nc.MaxPayload(); got != int64(maxPayload) {
			t.Errorf("svc_a's connection takes %d bytes in one message, want %d (the jobs stream's max_msg_size)", got, maxPayload)
		}
		m := nats.NewMsg(topo.Subjects.TenantJob("svc_a", jobs.OpRevoke))
		m.Data = make([]byte, maxPayload+1)
		if err := a.nc.PublishMsg(m); !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("a message of %d bytes as svc_a: %v, want nats.ErrMaxPayload", len(m.Data), err)
		}
	})

	t.Run("max_connections per tenant account", func(t *testing.T) {
		for range tenantMaxConnections {
			connect(t, url, "svc_a", pw["svc_a"], "_INBOX.svc_a")
		}
		nc, err := natsconn.Options{URL: url, User: "svc_a", Password: pw["svc_a"], Name: "test svc_a over"}.Connect(nats.CustomInboxPrefix("_INBOX.svc_a"))
		if err == nil {
			nc.Close()
			t.Fatalf("connection %d as svc_a accepted", tenantMaxConnections+1)
		}
		if !strings.Contains(err.Error(), "maximum account active connections exceeded") {
			t.Errorf("connection %d as svc_a: %v, want the account's limit named", tenantMaxConnections+1, err)
		}
		// Another tenant, and the worker, still connect.
		connect(t, url, "svc_b", pw["svc_b"], "_INBOX.svc_b")
		connect(t, url, "worker", pw["worker"], "")
	})
}

// A tenant's connection with many requests waiting (each of the Go
// client's Request holds a reply inbox of its own, NewReplies) still gets
// the answer of the next one. A subscription the server refuses is refused
// only asynchronously, without naming it, so neither NewReplies nor the
// request can tell, and the answer the worker sends there is dropped: for
// a token or refresh job, the secret, which no record holds. So there is
// no per-connection subscription limit to refuse it.
func TestTenantRepliesBeyondAThousandWaiting(t *testing.T) {
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "server.conf")
	topo := testenv.TestTopology()
	wk := connect(t, s.ClientURL(), "worker", pw["worker"], "")
	a := connectTenant(t, s.ClientURL(), "svc_a", pw["svc_a"], topo)
	for range 1000 {
		r, err := a.jobs.NewReplies(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
	}
	inbox := a.nc.NewInbox()
	sub, err := a.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := wk.nc.Publish(inbox, []byte("the answer")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Errorf("the answer to a reply inbox opened beside 1000 waiting ones: %v (server's errors: %q)", err, a.errs.all())
	}
}
