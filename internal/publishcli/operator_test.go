package publishcli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// rawLetter is a dead letter stored exactly as given: the worker bounds
// and cleans what it writes, but a buggy or hostile writer may not.
type rawLetter struct {
	d      jobs.DeadLetter
	header map[string]string // set after d's headers, unchanged
	body   string
	jobID  string // the job id in the letter's subject; raw-<i> if empty
}

func (h *harness) seedRaw(t *testing.T, letters ...rawLetter) []uint64 {
	t.Helper()
	var seqs []uint64
	for i, l := range letters {
		if l.d.Subject == "" {
			l.d.Subject = h.topo.Subjects.Job(jobs.OpRevoke)
		}
		if l.d.Error.Class == "" {
			l.d.Error.Class = jobs.ClassPermanent
		}
		if l.jobID == "" {
			l.jobID = "raw-" + strconv.Itoa(i)
		}
		m := nats.NewMsg(h.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: l.jobID, Gen: "seed", Seq: uint64(time.Now().UnixNano())}))
		m.Header = l.d.Header()
		for k, v := range l.header {
			m.Header.Set(k, v)
		}
		m.Data = []byte(l.body)
		ack, err := h.js.PublishMsg(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// TestShowAndReplayAgree: `dlq show`, `dlq list --json` and `dlq replay`
// give each dead letter the same verdict, by one rule. The per-session dead
// letter of a revoke_all with a long id (its id bounded by the worker, its
// parent in Dlq-Parent-Job) is replayable and named by its parent; one
// stored with an over-long id is not, and all three say why.
func TestShowAndReplayAgree(t *testing.T) {
	h := newHarness(t)
	parent := "incident-" + strings.Repeat("7", 300)
	bounded := parent[:80] + "-1a2b3c4d/sess_1"
	long := strings.Repeat("x", jobs.MaxJobIDLen+10) + "/sess_2"
	seqs := h.seedRaw(t,
		rawLetter{d: jobs.DeadLetter{JobID: bounded, Op: jobs.OpRevoke, StreamSeq: 42, Error: jobs.ErrorInfo{Message: "revoke_all job: HTTP 500"}},
			header: map[string]string{jobs.HeaderParentJob: parent}, body: `{"job_id":"` + bounded + `","session_id":"sess_1"}`},
		rawLetter{d: jobs.DeadLetter{JobID: long, Op: jobs.OpRevoke, StreamSeq: 43},
			header: map[string]string{jobs.HeaderParentJob: "old"}, body: `{"job_id":"` + long + `","session_id":"sess_2"}`},
	)
	tests := []struct {
		seq        uint64
		replayable bool
		show       []string
	}{
		{seqs[0], true, []string{"a session of revoke_all job " + parent, "replayable   yes: publish dlq replay " + strconv.FormatUint(seqs[0], 10)}},
		{seqs[1], false, []string{"a session of revoke_all job old", "replayable   no: its payload is not a valid revoke job (invalid revoke job: /job_id"}},
	}
	for _, tt := range tests {
		seq := strconv.FormatUint(tt.seq, 10)
		r := h.run(t, "dlq", "show", seq)
		for _, want := range tt.show {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("show %s lacks %q: %v", seq, want, r)
			}
		}
		if strings.Contains(r.stdout, "from sessions.revoke seq") {
			t.Errorf("show %s names the job by the revoke subject, not its revoke_all: %v", seq, r)
		}
		var shown struct {
			Replayable    bool   `json:"replayable"`
			NotReplayable string `json:"not_replayable"`
			ParentJob     string `json:"parent_job"`
		}
		testenv.DecodeJSON(t, []byte(h.run(t, "dlq", "show", seq, "--json").stdout), &shown)
		var listed struct {
			Replayable bool `json:"replayable"`
		}
		testenv.DecodeJSON(t, []byte(h.run(t, "dlq", "list", seq, "--json").stdout), &listed)
		dry := h.run(t, "dlq", "replay", seq, "--dry-run")
		wouldReplay := strings.Contains(dry.stdout, "would replay 1,")
		if shown.Replayable != tt.replayable || listed.Replayable != tt.replayable || wouldReplay != tt.replayable || shown.ParentJob == "" {
			t.Errorf("dead letter %s: show %+v, list replayable %v, dry run %v; want all %v", seq, shown, listed.Replayable, dry, tt.replayable)
		}
		if !tt.replayable && !strings.Contains(dry.stdout, shown.NotReplayable) {
			t.Errorf("dead letter %s: replay skips it for another reason than show's %q: %v", seq, shown.NotReplayable, dry)
		}
	}
	r := h.run(t, "dlq", "replay", strconv.FormatUint(seqs[0], 10))
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 1, skipped 0") {
		t.Fatalf("replaying the per-session dead letter: %v", r)
	}
}

// hostile acts on a terminal: it retitles the window and clears the
// screen. forged starts a line of its own.
const (
	hostile = "\x1b]0;owned\x07\x1b[2J"
	forged  = "\nFAKE all replayed"
)

// TestOperatorsTerminal: publisher-controlled text (ids, subjects, header
// values, payloads, a worker's instance name) never reaches the operator's
// terminal raw, whichever command prints it; --json prints it exactly.
func TestOperatorsTerminal(t *testing.T) {
	h := newHarness(t)
	id := "job" + hostile
	seqs := h.seedRaw(t,
		rawLetter{
			d: jobs.DeadLetter{
				Op: jobs.OpRevoke, StreamSeq: 7, Worker: "w",
				Error:   jobs.ErrorInfo{Class: jobs.ClassExhausted, HTTPStatus: 503},
				History: []jobs.Failure{{At: time.Now(), Error: "boom" + forged + hostile, Code: "c" + hostile, TraceID: "t" + hostile}},
			},
			header: map[string]string{
				jobs.HeaderJobID: id, jobs.HeaderError: "Clerk said" + hostile, jobs.HeaderClerkCode: "code" + hostile,
				jobs.HeaderClerkMessage: "msg" + hostile, jobs.HeaderTraceID: "trace" + hostile, jobs.HeaderWorker: "worker" + hostile,
				jobs.HeaderParentJob: "parent" + hostile, "X-Evil": hostile,
			},
			body: `{"job_id":"ok-1","session_id":"sess_1"}`,
		},
		rawLetter{
			d:      jobs.DeadLetter{Op: jobs.OpRevoke, JobID: "j2", Subject: "sessions." + hostile},
			header: map[string]string{jobs.HeaderClass: "class" + hostile},
			body:   "not json" + hostile + forged,
		},
		rawLetter{
			d:    jobs.DeadLetter{Op: jobs.OpRevoke, JobID: "j3"},
			body: `{"job_id":"j3\u001b[2J","session_id":"sess_1\u202e` + "\u202e" + `"}`,
		},
	)
	svc, err := micro.AddService(h.nc, micro.Config{Name: jobs.WorkerService, Version: "0.1.0", Metadata: map[string]string{"instance": "w" + hostile}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	flushServices(t, h)

	all := make([]string, len(seqs))
	for i, s := range seqs {
		all[i] = strconv.FormatUint(s, 10)
	}
	for _, args := range [][]string{
		{"dlq", "list"},
		{"dlq", "show", all[0]}, {"dlq", "show", all[1]}, {"dlq", "show", all[2]},
		{"dlq", "replay", "--all", "--dry-run"},
		{"dlq", "replay", all[1], all[2]},
		{"dlq", "purge", "--all", "--dry-run"},
		{"status"},
	} {
		r := h.runWith(t, runOpts{tty: true}, args...)
		out := r.stdout + r.stderr
		if strings.ContainsAny(out, "\x1b\x07\u202e") || strings.Contains(out, forged) {
			t.Errorf("%v printed control characters or a forged line:\n%q", args, out)
		}
		if r.code == publishcli.ExitUsage || r.code == publishcli.ExitUnavailable {
			t.Errorf("%v: %v", args, r)
		}
	}
	// What is escaped is still there to read.
	r := h.runWith(t, runOpts{tty: true}, "dlq", "show", all[0])
	for _, want := range []string{`job\x1b]0;owned\a\x1b[2J`, `X-Evil: \x1b]0;owned\a\x1b[2J`, `boom\nFAKE all replayed`, `a session of revoke_all job parent\x1b]0;owned`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := h.runWith(t, runOpts{tty: true}, "status", "--discover-wait", "3s"); !strings.Contains(r.stdout, `workers: 1 instance: w\x1b]0;owned\a\x1b[2J (0.1.0)`) {
		t.Errorf("status does not name the worker by its instance: %v", r)
	}

	// --json is exact.
	var shown struct {
		JobID     string              `json:"job_id"`
		ParentJob string              `json:"parent_job"`
		Headers   map[string][]string `json:"headers"`
		History   []jobs.Failure      `json:"history"`
	}
	testenv.DecodeJSON(t, []byte(h.run(t, "dlq", "show", all[0], "--json").stdout), &shown)
	if shown.JobID != id || shown.ParentJob != "parent"+hostile || shown.Headers["X-Evil"][0] != hostile || shown.History[0].Error != "boom"+forged+hostile {
		t.Errorf("show --json changed the values: %+v", shown)
	}
	var listed struct {
		JobID string `json:"job_id"`
	}
	testenv.DecodeJSON(t, []byte(strings.SplitN(h.run(t, "dlq", "list", "--json").stdout, "\n", 2)[0]), &listed)
	if listed.JobID != id {
		t.Errorf("list --json job_id = %q, want %q", listed.JobID, id)
	}
}

// TestReplaySaysWhenNoWorkerRuns: the replayed jobs would wait, and the
// operator is told; with a worker answering, nothing is said.
func TestReplaySaysWhenNoWorkerRuns(t *testing.T) {
	h := newHarness(t)
	seqs := h.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "n1"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "n2"},
	)
	r := h.run(t, "dlq", "replay", strconv.FormatUint(seqs[0], 10))
	if r.code != 0 || !strings.Contains(r.stderr, "no worker answered ($SRV.PING.clerkjobs-worker): the replayed jobs wait in SESSION_JOBS until one runs") {
		t.Fatalf("%v", r)
	}
	svc, err := micro.AddService(h.nc, micro.Config{Name: jobs.WorkerService, Version: "0.1.0", Metadata: map[string]string{"instance": "w1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	flushServices(t, h)
	r = h.run(t, "dlq", "replay", strconv.FormatUint(seqs[1], 10))
	if r.code != 0 || strings.Contains(r.stderr, "worker") {
		t.Fatalf("%v", r)
	}
}

// TestConnectionHints: the hint matches what went wrong; none of these is
// a credentials problem.
func TestConnectionHints(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	h := &harness{}
	tests := []struct {
		url  string
		code int
		want string
	}{
		{"nats//oops", publishcli.ExitUsage, `server URL "nats//oops" has a path`},
		{web.URL, publishcli.ExitUsage, "is a web address: NATS clients connect to the client port"},
		{"nats://" + web.Listener.Addr().String(), publishcli.ExitUnavailable, "did not greet like a NATS server: is it the NATS client port (4222 by default)"},
		{"nats://127.0.0.1:1", publishcli.ExitUnavailable, "No NATS server answered at nats://127.0.0.1:1"},
	}
	for _, tt := range tests {
		r := h.runWith(t, runOpts{env: map[string]string{"NATS_URL": tt.url}}, "status")
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, "creds") {
			t.Errorf("status against %s: %v; want exit %d and %q", tt.url, r, tt.code, tt.want)
		}
	}
}

// TestJetStreamRefusalSaidOnce: an error JetStream answers is printed
// with one "nats: ".
func TestJetStreamRefusalSaidOnce(t *testing.T) {
	h := newHarness(t)
	testenv.FillStream(t, h.js, h.topo.JobsStream)
	if r := h.run(t, "revoke", "sess_1"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	r := h.run(t, "revoke", "sess_2")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "maximum messages exceeded") || strings.Contains(r.stderr, "nats: nats:") {
		t.Fatalf("%v", r)
	}
}

// TestStatusNamesWorkersByInstance: the name each worker logs, sorted.
func TestStatusNamesWorkersByInstance(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"worker-b", "worker-a"} {
		svc, err := micro.AddService(h.nc, micro.Config{Name: jobs.WorkerService, Version: "0.1.0", Metadata: map[string]string{"instance": name}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
	}
	flushServices(t, h)
	// A generous wait: both must answer, on a busy machine too.
	r := h.run(t, "status", "--discover-wait", "3s")
	if r.code != 0 || !strings.Contains(r.stdout, "workers: 2 instances: worker-a (0.1.0), worker-b (0.1.0)") {
		t.Fatalf("%v", r)
	}
	var st struct {
		Workers struct {
			Instances []micro.Ping `json:"instances"`
		} `json:"workers"`
	}
	testenv.DecodeJSON(t, []byte(h.run(t, "status", "--json", "--discover-wait", "3s").stdout), &st)
	if len(st.Workers.Instances) != 2 || st.Workers.Instances[0].Metadata["instance"] != "worker-a" {
		t.Fatalf("status --json: %+v", st)
	}
}

// TestDeprecatedConnectionFlags: the names publish had before it shared
// the worker's still connect.
func TestDeprecatedConnectionFlags(t *testing.T) {
	h := newHarness(t)
	for _, flag := range []string{"--nats-url", "-s", "--server"} {
		r := h.runWith(t, runOpts{env: map[string]string{"NATS_URL": "nats://127.0.0.1:1"}}, "status", flag, h.url)
		if r.code != 0 || strings.Contains(r.stdout, "--server") || (flag == "--server") != strings.Contains(r.stderr, "publish: --server is an old name: use --nats-url") {
			t.Errorf("status %s URL: %v", flag, r)
		}
	}
}

func TestJSONEntryDecodes(t *testing.T) {
	// dlq show --json of an entry without headers still prints JSON.
	h := newHarness(t)
	m := nats.NewMsg(h.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "bare", Gen: "seed", Seq: 1}))
	m.Data = []byte(`{"session_id":"sess_1"}`)
	ack, err := h.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	r := h.run(t, "dlq", "show", strconv.FormatUint(ack.Sequence, 10), "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["replayable"] != false || !strings.Contains(v["not_replayable"].(string), "lacks the dead-letter headers") {
		t.Fatalf("%v", r)
	}
}

// TestRevokeAllBarReachesItsTotal: the last progress update (3 of 3) is
// drawn, and the bar is left there, not wiped at 2 of 3.
func TestRevokeAllBarReachesItsTotal(t *testing.T) {
	h := newHarness(t)
	fakeWorker(t, h)
	r := h.runWith(t, runOpts{tty: true}, "revoke-all", "--user", "user_1", "--wait", "--timeout", "20s")
	if r.code != 0 || !strings.Contains(r.stderr, "100%") || !strings.Contains(r.stderr, "(3/3") {
		t.Fatalf("%v", r)
	}
}

// flushServices makes sure the server has the micro services' subscriptions
// before another connection pings them: a ping nobody is subscribed to yet
// is answered "no responders" at once.
func flushServices(t *testing.T, h *harness) {
	t.Helper()
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestStatusShowsTheRateBudget: publish status says how much of the Clerk
// key's limit the fleet uses, how many replicas share it, and a pause.
func TestStatusShowsTheRateBudget(t *testing.T) {
	h := newHarness(t)
	r := h.run(t, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "rate budgets: none") {
		t.Fatalf("before any worker: %v", r)
	}
	kv, err := h.js.KeyValue(t.Context(), h.topo.RateBucket)
	if err != nil {
		t.Fatal(err)
	}
	fp := ratebudget.Fingerprint("sk_test_status")
	b, err := ratebudget.New(kv, fp, ratebudget.Limit{N: 1000, Per: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 5 {
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	b.Throttled(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = h.run(t, "status")
		if strings.Contains(r.stdout, "rate budget of key "+fp) && strings.Contains(r.stdout, "1 replica sharing it, paused by a 429 until") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the budget, its replica and its pause: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(r.stdout, "of 1000/10s (") {
		t.Errorf("status does not show the limit: %v", r)
	}
	if strings.Contains(r.stdout, "sk_test_status") {
		t.Errorf("status shows the key")
	}

	// A second replica configured with a stricter limit: the fleet runs at
	// it, and status says so, naming both (before, it showed the limit of
	// whichever replica claimed last).
	strict, err := ratebudget.New(kv, fp, ratebudget.Limit{N: 100, Per: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	const apart = "its replicas are configured with different limits (100/10s, 1000/10s): the fleet runs at the strictest"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r = h.run(t, "status")
		if strings.Contains(r.stdout, "2 replicas sharing it") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the second replica: %v", r)
		}
	}
	if !strings.Contains(r.stdout, "of 100/10s (10.0/s)") || !strings.Contains(r.stdout, apart) {
		t.Errorf("status does not show the limit the fleet runs at and the replicas' limits: %v", r)
	}
	r = h.run(t, "status", "--json")
	if !strings.Contains(r.stdout, `"limit":"100/10s"`) || !strings.Contains(r.stdout, `"limits":["100/10s","1000/10s"]`) {
		t.Errorf("status --json: %v", r)
	}
}

// TestTraceparentContinuesTheTrace: a shell script's trace continues
// through the job publish sends; a malformed one is a usage error.
func TestTraceparentContinuesTheTrace(t *testing.T) {
	h := newHarness(t)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	r := h.run(t, "revoke", "sess_1", "--job-id", "traced-1", "--traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	var found bool
	for _, m := range h.jobsMsgs(t) {
		if strings.Contains(m.Header.Get("traceparent"), traceID) {
			found = true
		}
	}
	if !found {
		t.Errorf("the job does not carry the trace %s", traceID)
	}
	if r := h.run(t, "revoke", "sess_1", "--traceparent", "not-a-trace"); r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--traceparent") {
		t.Errorf("a malformed traceparent: %v", r)
	}
}

// TestTracestateWithASecretIsRefused: TRACESTATE travels with the trace
// publish continues: on every span it exports (their trace state) and on
// the job. One holding a key or token (a variable mixed up in a script)
// is refused, as OTEL_SERVICE_NAME is, without repeating it; nothing is
// published or exported with it.
func TestTracestateWithASecretIsRefused(t *testing.T) {
	h := newHarness(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	const secret = "TracestateKey0123456789"
	for _, ts := range []string{"vendor=sk_" + "live_" + secret, "vendor=sk%5F" + "live%5F" + secret} {
		r := h.runWith(t, runOpts{tp: tp, env: map[string]string{
			"TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"TRACESTATE":  ts,
		}}, "revoke", "sess_1", "--job-id", "tracestate-secret")
		if r.code != publishcli.ExitUsage || strings.Contains(r.stdout+r.stderr, secret) || !strings.Contains(r.stderr, "TRACESTATE") {
			t.Errorf("TRACESTATE %q (refused, naming the variable, not repeating it): %v", ts, r)
		}
	}
	for _, s := range exp.GetSpans() {
		if strings.Contains(s.SpanContext.TraceState().String()+s.Parent.TraceState().String(), secret) {
			t.Errorf("span %q exported with the trace state %q", s.Name, s.SpanContext.TraceState())
		}
	}
	for _, m := range h.jobsMsgs(t) {
		if strings.Contains(m.Header.Get("tracestate"), secret) {
			t.Errorf("the job carries the tracestate %q", m.Header.Get("tracestate"))
		}
	}
}

// TestDLQShowDeepPayloadIsBounded: `dlq show` of a dead letter whose body
// nests arrays thousands deep (what the worker stores for such a job,
// byte for byte) prints about the size of the body, not its indentation,
// which grows with the square of the depth.
func TestDLQShowDeepPayloadIsBounded(t *testing.T) {
	h := newHarness(t)
	const depth = 4000
	body := `{"session_id":"sess_1","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	seqs := h.seedRaw(t, rawLetter{body: body})
	r := h.run(t, "dlq", "show", strconv.FormatUint(seqs[0], 10))
	if r.code != 0 {
		t.Fatalf("show: %v", r.code)
	}
	if limit := 64<<10 + 4*len(body); len(r.stdout) > limit {
		t.Fatalf("dlq show of a %d-byte dead letter printed %d bytes (more than %d): its payload was indented level by level", len(body), len(r.stdout), limit)
	}
	if !strings.Contains(r.stdout, `session_id`) {
		t.Errorf("dlq show does not print the payload:\n%s", r.stdout)
	}
}

// TestStatusRefusesAWaitThatCannotHearWorkers: --discover-wait 0 (or a
// negative one, a typo) gave the workers no time to answer, and status
// said "workers: none answered: jobs wait until one runs", exit 0, with
// a worker running: an operator in an incident is sent to start workers
// that run. It is a usage error naming the flag.
func TestStatusRefusesAWaitThatCannotHearWorkers(t *testing.T) {
	h := newHarness(t)
	svc, err := micro.AddService(h.nc, micro.Config{Name: jobs.WorkerService, Version: "0.1.0", Metadata: map[string]string{"instance": "w1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	flushServices(t, h)
	for _, d := range []string{"0", "0s", "-1s"} {
		r := h.run(t, "status", "--discover-wait", d)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--discover-wait ") || !strings.Contains(r.stderr, ": must be positive") {
			t.Errorf("status --discover-wait %s: %v; want exit 2 naming the flag", d, r)
		}
		if strings.Contains(r.stdout, "none answered") {
			t.Errorf("status --discover-wait %s said no worker answered, with one running: %v", d, r)
		}
	}
}
