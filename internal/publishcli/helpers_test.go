package publishcli_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// harness is an embedded JetStream server with the default topology, and
// the command line pointed at it through NATS_URL.
type harness struct {
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream
	topo jobs.Topology
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	kit := clerkjobstest.New(t, clerkjobstest.WithoutWorker(), clerkjobstest.WithTopology(jobs.DefaultTopology()))
	return &harness{url: kit.URL, nc: kit.Conn, js: kit.JetStream, topo: kit.Topology}
}

// result is one run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// syncBuffer is a bytes.Buffer safe for the goroutines of a run.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runOpts vary a run.
type runOpts struct {
	stdin string
	tty   bool // stdin, stdout and stderr are terminals
	env   map[string]string
	ctx   context.Context
	loc   *time.Location // the command's zone; nil: the process's
	tp    trace.TracerProvider
}

func (h *harness) run(t *testing.T, args ...string) result {
	t.Helper()
	return h.runWith(t, runOpts{}, args...)
}

func (h *harness) runWith(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	env := map[string]string{"NATS_URL": h.url}
	for k, v := range o.env {
		env[k] = v
	}
	ctx := o.ctx
	if ctx == nil {
		ctx = t.Context()
	}
	code := publishcli.RunEnv(ctx, args, publishcli.Env{
		Stdin:          strings.NewReader(o.stdin),
		Stdout:         &out,
		Stderr:         &errOut,
		Getenv:         func(k string) string { return env[k] },
		IsTerminal:     func(any) bool { return o.tty },
		Location:       o.loc,
		TracerProvider: o.tp,
	})
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// jobsMsgs returns every message in the jobs stream, oldest first.
func (h *harness) jobsMsgs(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	return h.streamMsgs(t, h.topo.JobsStream)
}

// waitJobs waits up to 10 s until the jobs stream holds n jobs (a command
// publishing them in the background), and returns them.
func (h *harness) waitJobs(t *testing.T, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs := h.jobsMsgs(t)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command did not publish its %d jobs: %d", n, len(msgs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) streamMsgs(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	return testenv.StreamMsgs(t, h.js, stream)
}

// letter describes a dead letter to seed.
type letter struct {
	op          jobs.Op
	class       jobs.ErrorClass
	code        string
	jobID       string
	tenant      string // "" outside tenants
	body        string // default: a valid job of op
	noRedaction bool   // store the body as is, even secrets (a buggy worker)
}

// seed stores dead letters the way the worker does; it returns their
// sequences.
func (h *harness) seed(t *testing.T, letters ...letter) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, l := range letters {
		body := l.body
		if body == "" {
			body = testenv.JobBody(l.op, l.jobID)
		}
		payload, redacted := []byte(body), []string(nil)
		if !l.noRedaction {
			payload, redacted = jobs.Redact(l.op, payload)
		}
		now := time.Now()
		d := jobs.DeadLetter{
			Subject: h.topo.Subjects.TenantJob(l.tenant, l.op), StreamSeq: 7, JobID: l.jobID, Op: l.op,
			Error:    jobs.ErrorInfo{Class: l.class, Message: "Clerk failed", ClerkCode: l.code, HTTPStatus: 503, TraceID: "trace-1"},
			Attempts: 3, Deliveries: 2, FirstFailure: now, LastFailure: now, Worker: "w1",
			History:  []jobs.Failure{{At: now, Error: "boom", Status: 503, Code: l.code}},
			Redacted: redacted,
		}
		m := nats.NewMsg(h.topo.Subjects.DeadLetter(jobs.RecordKey{Tenant: l.tenant, Op: l.op, JobID: l.jobID, Gen: "seed", Seq: uint64(time.Now().UnixNano())}))
		m.Header = d.Header()
		m.Data = payload
		ack, err := h.js.PublishMsg(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func (h *harness) dlqCount(t *testing.T) int {
	t.Helper()
	return len(h.streamMsgs(t, h.topo.DeadLetterStream))
}

// roomForJobs caps the jobs stream at n jobs (-1: no cap), so that a
// batch stops where a full stream stops it.
func (h *harness) roomForJobs(t *testing.T, n int64) {
	t.Helper()
	cfg := h.topo.JobsStreamConfig()
	cfg.MaxMsgs = n
	if _, err := h.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

// deployServer starts a NATS server on deploy/nats/server.conf (the
// tenants' accounts and permissions) with the worker's streams and no
// worker, so that jobs stay queued; it returns the server's URL and the
// users' passwords.
func deployServer(t *testing.T) (url string, passwords map[string]string) {
	t.Helper()
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "../../deploy/nats/server.conf")
	wnc, err := natsconn.Options{URL: s.ClientURL(), User: "worker", Password: pw["worker"]}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	js, err := jetstream.New(wnc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.DefaultTopology().Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), pw
}
