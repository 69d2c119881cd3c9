package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestAsOpsUser runs the console as the ops user of deploy/nats, under the
// very accounts.conf an operator deploys, with the worker as its own user:
// every part of the console reads what it needs, and its actions (replay,
// revoke_all) work, with no permission error.
func TestAsOpsUser(t *testing.T) {
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "../../deploy/nats/server.conf")

	emu := emulator.NewServer()
	t.Cleanup(emu.Close)
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(emu.URL))
	if err != nil {
		t.Fatal(err)
	}
	wnc, err := natsconn.Options{URL: s.ClientURL(), User: "worker", Password: pw["worker"]}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	cfg := worker.DefaultConfig()
	cfg.Topology = testenv.TestTopology()
	cfg.RateLimit, cfg.Instance = worker.RateLimit{}, "ops-test-worker"
	cfg.Bulk.Concurrency = 1
	logs := &testenv.SyncBuffer{}
	cfg.Logger = zerolog.New(logs)
	w, err := worker.New(wnc, clerk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	clerkjobstest.Run(t, w)

	// A dead letter, through the worker: Clerk says the session is gone.
	users := emu.Emulator.Seed(1, 3)
	ids := emu.Emulator.UserSessionIDs(users[0])
	emu.Emulator.FailSession(ids[0], 404)
	pub, err := natsconn.Options{URL: s.ClientURL(), User: "svc_a", Password: pw["svc_a"], InboxPrefix: "_INBOX.svc_a"}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if err := pub.Publish("sessions.tenant.svc_a.revoke", []byte(`{"job_id":"ops-1","session_id":"`+ids[0]+`"}`)); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"NATS_PASSWORD": pw["ops"]}
	conLogs := &testenv.SyncBuffer{}
	cctx, cstop := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- publishcli.RunEnv(cctx, []string{"console", "--listen", "127.0.0.1:0", "--refresh", "250ms",
			"--nats-url", s.ClientURL(), "--nats-user", "ops", "--nats-inbox-prefix", "_INBOX.ops"},
			publishcli.Env{Stdout: io.Discard, Stderr: conLogs, Getenv: func(k string) string { return env[k] }})
	}()
	t.Cleanup(func() {
		cstop()
		if c := <-code; c != 0 {
			t.Errorf("console exit %d:\n%s", c, conLogs.String())
		}
	})
	testenv.Eventually(t, 20*time.Second, "console listening", func() bool { return listening.MatchString(conLogs.String()) })
	con := &running{URL: listening.FindStringSubmatch(conLogs.String())[1], Logs: conLogs}

	// The overview reads the jobs stream, the consumer, the workers, the
	// results, the progress bucket and the dead letters without error.
	m := con.waitPage(t, 20*time.Second, "/", regexp.MustCompile(`(?s)id="card-dead"><div class="big"><a href="/dlq">1</a>.*ops-test-worker.*ready`))
	if strings.Contains(m[0], `class="error"`) {
		t.Errorf("the overview shows an error as ops:\n%s", m[0])
	}

	// A slow revoke_all shows in progress, read from the bucket.
	emu.Emulator.SetFaults(emulator.Faults{Latency: 100 * time.Millisecond})
	bulkUser := emu.Emulator.CreateUser()
	emu.Emulator.CreateSessions(bulkUser, 30)
	status, plan := con.post(t, "/revoke-all/plan", url.Values{"user_id": {bulkUser}})
	if status != 303 || !strings.HasPrefix(plan, "/plans/") {
		t.Fatalf("plan revoke_all: %d %q", status, plan)
	}
	status, task := con.post(t, plan+"/run", nil)
	if status != 303 || !strings.HasPrefix(task, "/tasks/") {
		t.Fatalf("run revoke_all: %d %q", status, task)
	}
	con.waitPage(t, 20*time.Second, "/", regexp.MustCompile(`(?s)<table id="bulk">.*`+bulkUser))
	con.waitPage(t, 30*time.Second, task, regexp.MustCompile(`(?s)id="outcome">succeeded<.*id="revoked">30<`))
	emu.Emulator.SetFaults(emulator.Faults{})

	// Replay the dead letter once Clerk has the session again.
	emu.Emulator.FailSession(ids[0], 0)
	status, plan = con.post(t, "/dlq/plan", url.Values{"action": {"replay"}, "scope": {"matching"}, "class": {"permanent"}})
	if status != 303 {
		t.Fatalf("plan replay: %d", status)
	}
	con.waitPage(t, 20*time.Second, plan, regexp.MustCompile(`would replay 1\b`))
	_, task = con.post(t, plan+"/run", nil)
	con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`id="replayed">1<`))
	testenv.Eventually(t, 20*time.Second, "the replayed revoke succeeded", func() bool {
		s, _ := emu.Emulator.Session(ids[0])
		return s.Status == clerkapi.StatusRevoked
	})
	if strings.Contains(conLogs.String(), "ermission") {
		t.Errorf("the console hit a permission error as ops:\n%s", conLogs.String())
	}
}

// TestSlowDeadLetterStreamHoldsNoPage: opening the dead-letter queue
// (the entry page's first read) may wait for JetStream, up to its
// timeout, when NATS does not answer: here the console's user may not
// read the stream's info, so the request goes unanswered. That wait must
// not hold the overview, which an operator opens to see what is wrong.
func TestSlowDeadLetterStreamHoldsNoPage(t *testing.T) {
	topo := testenv.TestTopology()
	conf := fmt.Sprintf(`listen: "127.0.0.1:-1"
jetstream { store_dir: %q }
accounts {
  APP {
    jetstream: enabled
    users: [{user: console, password: %q, permissions: {
      publish: {allow: [">"], deny: ["$JS.API.STREAM.INFO.%s"]}
      subscribe: {allow: [">"]}
    }}]
  }
}
`, t.TempDir(), goodPassword, topo.DeadLetterStream)
	s := testenv.StartConfiguredServer(t, secretFile(t, "nats.conf", conf))
	u, _ := url.Parse(s.ClientURL())
	u.User = url.UserPassword("console", goodPassword)
	con := startConsole(t, u.String())

	entry := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		resp, err := http.Get(con.URL + "/dlq/1")
		if err == nil {
			resp.Body.Close()
		}
		entry <- time.Since(start)
	}()
	time.Sleep(300 * time.Millisecond) // the entry page is waiting for JetStream
	start := time.Now()
	if code, _ := con.get(t, "/"); code != http.StatusOK {
		t.Errorf("overview: %d", code)
	}
	took := time.Since(start)
	if waited := <-entry; waited < 2*time.Second {
		t.Fatalf("the entry page did not wait for JetStream (%s): the test's NATS user can read the stream", waited)
	}
	if took > 3*time.Second { // the entry page waits about 5 s; the overview, without the lock, for nothing
		t.Errorf("the overview took %s while an entry page waited for JetStream, want it at once", took)
	}
}

// TestOverviewCountsLettersOfNoClass: a dead letter stored without the
// worker's headers counts in its op's total and in an "other" column, so
// that the columns add up to the totals.
func TestOverviewCountsLettersOfNoClass(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	at := time.Now()
	seed(t, env.JS, 2, func(i int) *nats.Msg {
		if i == 0 {
			return deadLetter(subj, jobs.OpRevoke, jobs.ClassPermanent, "classed", testenv.JobBody(jobs.OpRevoke, "classed"), at)
		}
		m := nats.NewMsg(subj.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "bare", Gen: "g", Seq: 2}))
		m.Data = []byte(`{"session_id":"sess_1"}`)
		return m
	})
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)
	page := con.waitPage(t, 20*time.Second, "/", regexp.MustCompile(`(?s)id="dlq-matrix".*?(<tr data-op="revoke">.*?</tr>)`))[1]
	for _, want := range []string{`data-class="permanent"><a href="/dlq?class=permanent&amp;op=revoke">1</a>`, `data-class="other">1</td>`, `<td class="n">2</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the revoke row lacks %s:\n%s", want, page)
		}
	}
	if _, body := con.get(t, "/"); !regexp.MustCompile(`<tfoot>.*data-class="other">1</td><td class="n">2</td>`).MatchString(body) {
		t.Errorf("the footer does not count the letter of no class")
	}
}
