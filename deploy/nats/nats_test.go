// Package nats_test proves the server configurations in this directory:
// each one parses, and accounts.conf gives every principal what it needs
// and no more. The servers run in-process (nats-server as a library), from
// the very files an operator deploys.
package nats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// users are the users of accounts.conf and the environment variables their
// passwords come from.
var users = map[string]string{
	"worker": "CLERKJOBS_WORKER_PASSWORD",
	"svc_a":  "CLERKJOBS_SVC_A_PASSWORD",
	"svc_b":  "CLERKJOBS_SVC_B_PASSWORD",
	"ops":    "CLERKJOBS_OPS_PASSWORD",
}

// setPasswords puts a fresh password for every user in the environment and
// returns them by user.
func setPasswords(t *testing.T) map[string]string {
	t.Helper()
	pw := make(map[string]string)
	for u, env := range users {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		pw[u] = "p" + hex.EncodeToString(b)
		t.Setenv(env, pw[u])
	}
	return pw
}

// startServer runs a server configured by file, on a random local port,
// with its JetStream files in a temporary directory and no monitoring port.
func startServer(t *testing.T, file string) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("%s: server not ready", file)
	}
	t.Cleanup(s.Shutdown)
	return s
}

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

// nextResult reads replies on sub until a final result (progress updates
// of revoke_all come first).
func nextResult(t *testing.T, sub *nats.Subscription) jobs.Result {
	t.Helper()
	for {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("waiting for a reply on %s: %v", sub.Subject, err)
		}
		var r jobs.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("reply %s: %v", m.Data, err)
		}
		if r.Outcome != jobs.InProgress {
			return r
		}
	}
}

func TestConfigsParse(t *testing.T) {
	setPasswords(t)
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
	pw := setPasswords(t)
	s := startServer(t, "server.conf")
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

	a := connect(t, url, "svc_a", pw["svc_a"], "_INBOX.svc_a")
	b := connect(t, url, "svc_b", pw["svc_b"], "_INBOX.svc_b")
	ops := connect(t, url, "ops", pw["ops"], "_INBOX.ops")
	subj := cfg.Topology.Subjects

	t.Run("a service gets its token and no one else can listen", func(t *testing.T) {
		b.refusedSubscribe(t, "_INBOX.svc_a.>")
		b.refusedSubscribe(t, "_INBOX.>")
		b.refusedSubscribe(t, ">")
		ops.refusedSubscribe(t, "_INBOX.svc_a.>")

		inbox := a.nc.NewInbox()
		if !strings.HasPrefix(inbox, "_INBOX.svc_a.") {
			t.Fatalf("inbox %s", inbox)
		}
		sub, err := a.nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jobs.Publish(ctxT(t), a.js, subj, &jobs.TokenArgs{Common: jobs.Common{ReplyTo: inbox}, SessionID: sessions[0]}); err != nil {
			t.Fatalf("service A publishes a token job: %v", err)
		}
		r := nextResult(t, sub)
		var tok struct{ JWT string }
		if r.Outcome != jobs.Succeeded || json.Unmarshal(r.Secret, &tok) != nil || tok.JWT == "" {
			t.Fatalf("token reply = %+v", r)
		}
	})

	t.Run("publish --wait works as a restricted service with --inbox-prefix", func(t *testing.T) {
		var stdout, stderr strings.Builder
		env := map[string]string{"NATS_PASSWORD": pw["svc_a"]}
		code := publishcli.RunEnv(ctxT(t), []string{"--nats-url", url, "--nats-user", "svc_a", "--nats-inbox-prefix", "_INBOX.svc_a",
			"token", sessions[2], "--wait", "--json", "--timeout", "10s"},
			publishcli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
		var r jobs.Result
		if code != 0 || json.Unmarshal([]byte(stdout.String()), &r) != nil || r.Outcome != jobs.Succeeded || r.Secret == nil {
			t.Fatalf("publish token --wait as svc_a: exit %d, stderr %q", code, stderr.String())
		}
		// Without the prefix the same user cannot even read JetStream's
		// acknowledgement: the command fails, naming the problem.
		stdout.Reset()
		stderr.Reset()
		code = publishcli.RunEnv(ctxT(t), []string{"--nats-url", url, "--nats-user", "svc_a", "revoke", sessions[3]},
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

	t.Run("services read neither results nor dead letters", func(t *testing.T) {
		for _, c := range []*client{a, b} {
			c.refusedSubscribe(t, "sessions.results.>")
			c.refusedSubscribe(t, "sessions.dlq.>")
			c.refusedSubscribe(t, "sessions.*")
			c.refusedRequests(t,
				"$JS.API.STREAM.INFO.SESSION_DLQ", "$JS.API.STREAM.MSG.GET.SESSION_DLQ",
				"$JS.API.STREAM.INFO.SESSION_RESULTS", "$JS.API.STREAM.MSG.GET.SESSION_RESULTS",
				"$JS.API.DIRECT.GET.SESSION_RESULTS", "$JS.API.CONSUMER.CREATE.SESSION_DLQ.peek",
				"$JS.API.CONSUMER.CREATE.SESSION_RESULTS.peek", "$JS.API.CONSUMER.MSG.NEXT.SESSION_JOBS.session-worker",
				"$JS.API.STREAM.DELETE.SESSION_JOBS", "$JS.API.STREAM.NAMES",
				// Nor forge a record, nor answer in the worker's place.
				"sessions.results.revoke", "sessions.dlq.revoke", "_INBOX.svc_a.x",
			)
		}
		// The jetstream package reports the refusal as a failure too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := a.js.Stream(ctx, "SESSION_DLQ"); err == nil {
			t.Error("service A read the dead-letter stream's info")
		}
	})

	t.Run("revoke and revoke_all run under the worker's user", func(t *testing.T) {
		inbox := a.nc.NewInbox()
		sub, _ := a.nc.SubscribeSync(inbox)
		if _, err := jobs.Publish(ctxT(t), a.js, subj, &jobs.RevokeArgs{Common: jobs.Common{ReplyTo: inbox}, SessionID: sessions[1]}); err != nil {
			t.Fatal(err)
		}
		if r := nextResult(t, sub); r.Outcome != jobs.Succeeded {
			t.Fatalf("revoke = %+v", r)
		}
		// revoke_all keeps its progress in the key-value bucket.
		if _, err := jobs.Publish(ctxT(t), a.js, subj, &jobs.RevokeAllArgs{Common: jobs.Common{ReplyTo: inbox}, UserID: otherUser}); err != nil {
			t.Fatal(err)
		}
		if r := nextResult(t, sub); r.Outcome != jobs.Succeeded {
			t.Fatalf("revoke_all = %+v", r)
		}
		for _, id := range emu.Emulator.UserSessionIDs(otherUser) {
			if s, _ := emu.Emulator.Session(id); s.Status != clerkapi.StatusRevoked {
				t.Errorf("session %s of %s is %s after revoke_all", id, otherUser, s.Status)
			}
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
			"$JS.API.CONSUMER.MSG.NEXT.SESSION_JOBS.session-worker", "sessions.results.revoke", "_INBOX.svc_a.x")
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
		// And no more than that.
		wk2.refusedRequests(t, "$JS.API.STREAM.DELETE.SESSION_JOBS", "$JS.API.STREAM.PURGE.SESSION_DLQ",
			"$JS.API.STREAM.MSG.DELETE.SESSION_DLQ", "$JS.API.STREAM.CREATE.OTHER", "$JS.API.CONSUMER.CREATE.SESSION_JOBS.other",
			"sessions.revoke")
	})

	t.Run("ops reads, replays and deletes a dead letter", func(t *testing.T) {
		failing := sessions[2]
		emu.Emulator.FailSession(failing, 404)
		inbox := a.nc.NewInbox()
		sub, _ := a.nc.SubscribeSync(inbox)
		if _, err := jobs.Publish(ctxT(t), a.js, subj, &jobs.RevokeArgs{Common: jobs.Common{ReplyTo: inbox}, SessionID: failing}); err != nil {
			t.Fatal(err)
		}
		if r := nextResult(t, sub); r.Outcome != jobs.Failed || r.Error == nil || r.Error.Class != jobs.ClassPermanent {
			t.Fatalf("revoke of a missing session = %+v", r)
		}
		dlq, err := ops.js.Stream(ctxT(t), "SESSION_DLQ")
		if err != nil {
			t.Fatal(err)
		}
		cons, err := dlq.OrderedConsumer(ctxT(t), jetstream.OrderedConsumerConfig{FilterSubjects: []string{"sessions.dlq.>"}})
		if err != nil {
			t.Fatalf("ordered consumer on the DLQ: %v", err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read the dead letter: %v", err)
		}
		meta, _ := m.Metadata()
		raw, err := dlq.GetMsg(ctxT(t), meta.Sequence.Stream)
		if err != nil {
			t.Fatalf("get the dead letter: %v", err)
		}
		// Replay: the job's body (the dead letter's body), on its job
		// subject, with a new id.
		dl, err := jobs.ParseDeadLetter(raw.Header)
		if err != nil || dl.Subject != subj.Job(jobs.OpRevoke) || dl.Error.Class != jobs.ClassPermanent {
			t.Fatalf("dead letter headers %v: %+v, %v", raw.Header, dl, err)
		}
		var job jobs.RevokeArgs
		if err := json.Unmarshal(raw.Data, &job); err != nil || job.SessionID != failing {
			t.Fatalf("dead letter body %s", raw.Data)
		}
		emu.Emulator.FailSession(failing, 0)
		job.JobID += "-replay"
		if _, err := jobs.Publish(ctxT(t), ops.js, subj, &job); err != nil {
			t.Fatalf("ops replays: %v", err)
		}
		if r := nextResult(t, sub); r.Outcome != jobs.Succeeded {
			t.Fatalf("replayed revoke = %+v", r)
		}
		if err := dlq.DeleteMsg(ctxT(t), meta.Sequence.Stream); err != nil {
			t.Fatalf("delete the dead letter: %v", err)
		}
	})
}

func workerConfig(logs *testenv.SyncBuffer) worker.Config {
	c := worker.DefaultConfig()
	c.Topology = testenv.TestTopology()
	c.Concurrency = 4
	c.RateLimit = 0
	c.Retry = worker.RetryPolicy{
		Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2, Jitter: 0.2,
		DeliveryBudget: 60 * time.Millisecond, NakDelay: 30 * time.Millisecond, NakDelayMax: 100 * time.Millisecond,
	}
	c.ProbeInterval = 50 * time.Millisecond
	c.DrainTimeout = 5 * time.Second
	c.SweepInterval = 500 * time.Millisecond
	c.FetchMaxWait = time.Second
	c.Instance = "test-worker"
	c.Logger = zerolog.New(logs).With().Timestamp().Logger()
	return c
}
