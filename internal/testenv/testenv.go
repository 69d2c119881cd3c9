// Package testenv gives the repository's tests the whole system in one
// process: what the public test kit clerkjobstest starts (an embedded NATS
// server with JetStream, the Clerk emulator over real HTTP, workers), with
// the worker logs collected and the helpers the tests share.
package testenv

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
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
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// Env is one test's system. Everything is torn down by t.Cleanup.
type Env struct {
	NATS    *server.Server
	NATSURL string
	NC      *nats.Conn
	JS      jetstream.JetStream
	Clerk   *emulator.Server
	// Client is a clerkjobs.Client on NC for Topology.
	Client   *clerkjobs.Client
	Topology jobs.Topology
	// Logs collects every worker's log lines, to check what they hold.
	Logs *SyncBuffer
}

// New starts NATS and the emulator (with emulator options) and creates the
// streams (clerkjobstest with no worker: StartWorker starts them).
func New(t testing.TB, opts ...emulator.Option) *Env {
	t.Helper()
	kit := clerkjobstest.New(t, clerkjobstest.WithoutWorker(), clerkjobstest.WithEmulator(opts...), clerkjobstest.WithTopology(TestTopology()))
	e := &Env{NATS: kit.NATS, NATSURL: kit.URL, NC: kit.Conn, JS: kit.JetStream, Clerk: kit.Clerk, Client: kit.Client, Topology: kit.Topology, Logs: &SyncBuffer{}}
	t.Cleanup(func() {
		// The workers' log tells why a test failed. It holds no secret:
		// tests check that it never does.
		if t.Failed() && os.Getenv("TESTENV_LOGS") != "" {
			t.Logf("worker log:\n%s", e.Logs.String())
		}
	})
	return e
}

// TestTopology is the default topology with memory-friendly limits and a
// short ack wait, so redelivery tests take seconds.
func TestTopology() jobs.Topology { return clerkjobstest.Topology() }

// WorkerConfig is a configuration with fast backoffs for tests, logging to
// Logs.
func (e *Env) WorkerConfig() worker.Config {
	c := clerkjobstest.WorkerConfig(e.Topology)
	c.Logger = zerolog.New(e.Logs).With().Timestamp().Logger()
	return c
}

// ClerkClient is a clerkapi client for the emulator with the given key
// (the emulator's default key when empty).
func (e *Env) ClerkClient(t testing.TB, key string) *clerkapi.Client {
	t.Helper()
	return clerkClient(t, cmp.Or(key, emulator.DefaultSecretKey), e.Clerk.URL)
}

// ClerkThrough is a client (the emulator's default key) of a Clerk served
// by h, which commonly answers some requests itself and hands the rest to
// the env's emulator: a Clerk, or a proxy, that answers one operation
// wrongly. The server is closed at cleanup.
func (e *Env) ClerkThrough(t testing.TB, h http.Handler) *clerkapi.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return clerkClient(t, emulator.DefaultSecretKey, srv.URL+"/v1")
}

func clerkClient(t testing.TB, key, baseURL string) *clerkapi.Client {
	t.Helper()
	c, err := clerkapi.New(clerkapi.WithSecretKey(key), clerkapi.WithBaseURL(baseURL))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Running is a worker running in the background.
type Running = clerkjobstest.Worker

// StartWorker runs a worker with WorkerConfig changed by edits, and waits
// until it is ready. It is stopped at cleanup.
func (e *Env) StartWorker(t testing.TB, edits ...func(*worker.Config)) *Running {
	t.Helper()
	cfg := e.WorkerConfig()
	for _, f := range edits {
		f(&cfg)
	}
	return e.StartWorkerWith(t, e.ClerkClient(t, ""), cfg)
}

// StartWorkerWith runs a worker with an explicit client and configuration.
func (e *Env) StartWorkerWith(t testing.TB, clerk clerkapi.Sessions, cfg worker.Config, opts ...worker.Option) *Running {
	t.Helper()
	w, err := worker.New(e.NC, clerk, cfg, opts...)
	if err != nil {
		t.Fatalf("worker.New: %v", err)
	}
	return clerkjobstest.Run(t, w)
}

// Publish publishes a job and fails the test if JetStream does not store it.
func (e *Env) Publish(t testing.TB, a jobs.Args) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := jobs.Publish(ctx, e.JS, e.Topology.Subjects, a)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ack
}

// PublishRaw publishes arbitrary bytes to a subject through JetStream.
func (e *Env) PublishRaw(t testing.TB, subject string, data []byte) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := e.JS.Publish(ctx, subject, data)
	if err != nil {
		t.Fatalf("publish raw to %s: %v", subject, err)
	}
	return ack
}

// StreamMsgs returns every message stored in a stream, oldest first.
func (e *Env) StreamMsgs(t testing.TB, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	return StreamMsgs(t, e.JS, stream)
}

// StreamMsgs returns every message stored in a stream, oldest first.
func StreamMsgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			t.Fatalf("stream %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// Results decodes every stored result.
func (e *Env) Results(t testing.TB) []jobs.Result {
	t.Helper()
	var out []jobs.Result
	for _, m := range e.StreamMsgs(t, e.Topology.ResultsStream) {
		var r jobs.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("result seq %d is not JSON: %v", m.Sequence, err)
		}
		out = append(out, r)
	}
	return out
}

// StreamCount is the number of messages in a stream.
func (e *Env) StreamCount(t testing.TB, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return s.CachedInfo().State.Msgs
}

// Eventually polls cond every 10 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// JobBody is a valid job body of op, for tests that store jobs or dead
// letters directly. A refresh job carries the recognisable secrets
// EXPIRED-SECRET and REFRESH-SECRET, so a test can look for them.
func JobBody(op jobs.Op, jobID string) string {
	switch op {
	case jobs.OpList, jobs.OpCreate, jobs.OpRevokeAll:
		return fmt.Sprintf(`{"job_id":%q,"user_id":"user_1"}`, jobID)
	case jobs.OpToken:
		return fmt.Sprintf(`{"job_id":%q,"session_id":"sess_1","reply_to":"_INBOX.gone"}`, jobID)
	case jobs.OpRefresh:
		return fmt.Sprintf(`{"job_id":%q,"session_id":"sess_1","reply_to":"_INBOX.gone","expired_token":"EXPIRED-SECRET","refresh_token":"REFRESH-SECRET","request_origin":"https://x"}`, jobID)
	}
	return fmt.Sprintf(`{"job_id":%q,"session_id":"sess_1"}`, jobID)
}
