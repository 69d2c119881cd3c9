package clustertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/natscluster"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// binDir holds the worker and publish binaries built once for the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clustertest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var buildOnce = sync.OnceValue(func() error {
	for _, pkg := range []string{"worker", "publish"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, pkg), "github.com/clerkjobs/clerkjobs/cmd/"+pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build cmd/%s: %v\n%s", pkg, err, out)
		}
	}
	return nil
})

// scale is the number of jobs per scenario: thousands, more when soaking.
func scale() int {
	if os.Getenv("CLERKJOBS_SOAK") == "1" {
		return 20000
	}
	return 2000
}

// system is one scenario's world.
type system struct {
	t       *testing.T
	cluster *natscluster.Cluster
	emu     *emulator.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	topo    jobs.Topology
	name    string
	// jobs maps each published job id to the session it revokes.
	mu      sync.Mutex
	jobs    map[string]string
	workers []*workerProc

	// clusterView and readiness are filled by watch, for the failure dump
	// and for scenarios to show.
	clusterView, readiness timeline
	diagnoseOnce           sync.Once
}

func newSystem(t *testing.T, name string, emuOpts ...emulator.Option) *system {
	t.Helper()
	natscluster.Require(t)
	if err := buildOnce(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := natscluster.Start(ctx, t, natscluster.WithNodes(3))
	emu := emulator.NewServer(emuOpts...)
	t.Cleanup(emu.Close)
	nc := c.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo := jobs.DefaultTopology()
	topo.Subjects.Prefix = strings.ToLower(name)
	up := strings.ToUpper(name)
	topo.JobsStream, topo.ResultsStream, topo.DeadLetterStream = up+"_JOBS", up+"_RESULTS", up+"_DLQ"
	topo.ProgressBucket, topo.Consumer = up+"_PROGRESS", strings.ToLower(name)+"-worker"
	topo.Replicas = 3
	s := &system{t: t, cluster: c, emu: emu, nc: nc, js: js, topo: topo, name: name, jobs: map[string]string{}}
	// A freshly elected cluster on a busy machine may time out the first
	// stream creations: Ensure is idempotent, so try again.
	deadline := time.Now().Add(2 * time.Minute)
	for try := 1; ; try++ {
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = topo.Ensure(ectx, js)
		cancel()
		if err == nil {
			wctx, stop := context.WithCancel(ctx)
			watched := make(chan struct{})
			go func() { defer close(watched); s.watch(wctx) }()
			t.Cleanup(func() {
				if t.Failed() {
					s.diagnose()
				}
				stop()
				<-watched
			})
			return s
		}
		t.Logf("ensure topology (try %d): %v", try, err)
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("ensure topology: %v", err)
	return nil
}

// workerProc is a worker process.
type workerProc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	mu   sync.Mutex
	logs []string
	// readyURL is the worker's /readyz, from its "serving" log line.
	readyURL string
	exited   atomic.Bool
}

// startWorker runs a worker binary against the cluster and the emulator.
func (s *system) startWorker(name string, extra ...string) *workerProc {
	s.t.Helper()
	args := []string{
		"--nats-url", s.cluster.ConnectURL(), "--clerk-api-url", s.emu.URL,
		"--subject-prefix", s.topo.Subjects.Prefix, "--jobs-stream", s.topo.JobsStream,
		"--results-stream", s.topo.ResultsStream, "--dlq-stream", s.topo.DeadLetterStream,
		"--consumer", s.topo.Consumer, "--progress-bucket", s.topo.ProgressBucket, "--replicas", "3",
		"--metrics-addr", "127.0.0.1:0", "--instance", name, "--log-format", "json", "--log-level", "info",
		"--concurrency", "8", "--rate-limit", "0", "--ack-wait", "5s", "--max-deliveries", "10",
		"--backoff-initial", "20ms", "--backoff-max", "200ms", "--retry-budget", "1s",
		"--nak-delay", "200ms", "--nak-delay-max", "2s", "--drain-timeout", "5s", "--probe-interval", "200ms",
	}
	args = append(args, extra...)
	cmd := exec.Command(filepath.Join(binDir, "worker"), args...)
	cmd.Env = append(os.Environ(), "CLERK_SECRET_KEY="+emulator.DefaultSecretKey)
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start worker %s: %v", name, err)
	}
	w := &workerProc{name: name, cmd: cmd, done: make(chan error, 1)}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			w.mu.Lock()
			w.logs = append(w.logs, line)
			w.mu.Unlock()
			var l struct {
				Message string `json:"message"`
				Server  string `json:"nats_server"`
				Addr    string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Message, "serving /metrics") {
				w.mu.Lock()
				w.readyURL = "http://" + l.Addr + "/readyz"
				w.mu.Unlock()
			}
			if l.Message == "worker started" {
				select {
				case started <- l.Server:
				default:
				}
			}
		}
		err := cmd.Wait()
		w.exited.Store(true)
		w.done <- err
	}()
	s.mu.Lock()
	s.workers = append(s.workers, w)
	s.mu.Unlock()
	s.t.Cleanup(func() {
		if s.t.Failed() {
			s.diagnose() // while the workers still run
		}
		w.kill()
	})
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		s.t.Fatalf("worker %s did not start:\n%s", name, w.tail(30))
	}
	return w
}

// server is the URL of the NATS server the worker connected to last.
func (w *workerProc) server() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	url := ""
	for _, line := range w.logs {
		var l struct {
			Server string `json:"nats_server"`
			URL    string `json:"url"`
		}
		if json.Unmarshal([]byte(line), &l) == nil {
			if l.Server != "" {
				url = l.Server
			}
			if l.URL != "" && strings.Contains(line, "reconnected") {
				url = l.URL
			}
		}
	}
	return url
}

func (w *workerProc) tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	from := max(len(w.logs)-n, 0)
	return strings.Join(w.logs[from:], "\n")
}

// kill sends SIGKILL and reaps the process.
func (w *workerProc) kill() {
	if w.exited.Load() {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM and waits for the graceful exit.
func (s *system) stop(w *workerProc) {
	s.t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.done:
		if err != nil {
			s.t.Errorf("worker %s exited with %v:\n%s", w.name, err, w.tail(20))
		}
	case <-time.After(30 * time.Second):
		s.t.Errorf("worker %s did not stop within 30s", w.name)
	}
}

// nodeOf finds the cluster node serving a client URL.
func (s *system) nodeOf(url string) *natscluster.Node {
	for _, n := range s.cluster.Nodes() {
		if strings.TrimSuffix(n.URL(), "/") == strings.TrimSuffix(url, "/") {
			return n
		}
	}
	s.t.Fatalf("no node serves %q (nodes %v)", url, s.cluster.URLs())
	return nil
}

// waitRecovered waits, as an operator would after a fault is repaired,
// until the cluster is whole again: every node healthy (JetStream current
// with the meta leader, every replica it hosts caught up) and knowing a
// leader for every stream and consumer. It logs how long that took since
// the fault began.
func (s *system) waitRecovered(fault time.Time, timeout time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.cluster.WaitHealthy(ctx); err != nil {
		s.t.Fatalf("cluster not recovered %s after the repair: %v", timeout, err)
	}
	s.t.Logf("cluster recovered %s after the fault began: every node healthy, every stream and consumer led, replicas current",
		time.Since(fault).Round(100*time.Millisecond))
}

// waitReady waits until every running worker's /readyz says ready.
func (s *system) waitReady(timeout time.Duration) {
	s.t.Helper()
	s.waitWorkers(timeout, "ready", func(line string) bool { return strings.HasPrefix(line, "200 ready=true") })
}

// waitWorkers waits until every running worker's /readyz line (see
// workerProc.readiness) satisfies ok.
func (s *system) waitWorkers(timeout time.Duration, what string, ok func(line string) bool) {
	s.t.Helper()
	s.mu.Lock()
	workers := slices.Clone(s.workers)
	s.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for _, w := range workers {
		if w.exited.Load() {
			continue // killed or stopped by the scenario
		}
		for {
			line, _ := w.readiness()
			if ok(line) {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("worker %s not %s after %s: /readyz %s", w.name, what, timeout, line)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// publish creates n sessions and publishes one revoke job for each. A
// publish that fails (a node down, a leader election) is retried with the
// same job id, which the jobs stream deduplicates; it returns once JetStream
// acknowledged every job.
func (s *system) publish(n int) {
	s.t.Helper()
	user := s.emu.Emulator.CreateUser()
	ids := s.emu.Emulator.CreateSessions(user, n)
	pending := map[string]*nats.Msg{}
	for i, id := range ids {
		jobID := fmt.Sprintf("%s-%d", s.name, len(s.jobs)+i)
		m, err := jobs.NewMessage(s.topo.Subjects, &jobs.RevokeArgs{Common: jobs.Common{JobID: jobID}, SessionID: id})
		if err != nil {
			s.t.Fatal(err)
		}
		pending[jobID] = m
		s.mu.Lock()
		s.jobs[jobID] = id
		s.mu.Unlock()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			s.t.Fatalf("%d jobs not acknowledged by JetStream after 2 minutes", len(pending))
		}
		futures := map[string]jetstream.PubAckFuture{}
		for id, m := range pending {
			f, err := s.js.PublishMsgAsync(m)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				break
			}
			futures[id] = f
		}
		for id, f := range futures {
			select {
			case <-f.Ok():
				delete(pending, id)
			case <-f.Err():
			case <-time.After(10 * time.Second):
			}
		}
	}
}

// tally is the checker's verdict.
type tally struct {
	Published, Succeeded, DeadLettered, DuplicateRecords, DuplicateCalls, Lost, MissedRevocations int
	Classes                                                                                       map[jobs.ErrorClass]int
}

func (t tally) String() string {
	return fmt.Sprintf("published=%d succeeded=%d dead_lettered=%d %v duplicate_records=%d duplicate_api_calls=%d lost=%d missed_revocations=%d",
		t.Published, t.Succeeded, t.DeadLettered, t.Classes, t.DuplicateRecords, t.DuplicateCalls, t.Lost, t.MissedRevocations)
}

// requestTimeout bounds each JetStream request of the checker. A request
// that reaches the cluster while a stream elects a leader is answered by
// nobody (JetStream API requests are delivered at most once, and only the
// leader answers), so waiting longer for it gains nothing: asking again
// does.
const requestTimeout = 5 * time.Second

// retry calls req, each time with a context of requestTimeout, until it
// succeeds or deadline passes, and returns its last error.
func (s *system) retry(deadline time.Time, what string, req func(context.Context) error) error {
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		err := req(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w (tried %d times, %s each)", what, err, try, requestTimeout)
		}
		s.t.Logf("%s (%s), try %d: %v; asking again", what, time.Now().Format("15:04:05.000"), try, err)
		time.Sleep(250 * time.Millisecond)
	}
}

// records reads every job id recorded in a stream, message by message from
// the stream leader, retrying each request for up to two minutes.
func (s *system) records(stream string, id func(*jetstream.RawStreamMsg) string) map[string]int {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	out := map[string]int{}
	var str jetstream.Stream
	err := s.retry(deadline, "stream info "+stream, func(ctx context.Context) (err error) {
		str, err = s.js.Stream(ctx, stream)
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	st := str.CachedInfo().State
	if st.Msgs == 0 {
		return out
	}
	for seq := st.FirstSeq; seq <= st.LastSeq; seq++ {
		err := s.retry(deadline, fmt.Sprintf("read %s seq %d", stream, seq), func(ctx context.Context) error {
			m, err := str.GetMsg(ctx, seq)
			switch {
			case err == nil:
				out[id(m)]++
			case errors.Is(err, jetstream.ErrMsgNotFound):
				// deleted (a replayed dead letter)
			default:
				return err
			}
			return nil
		})
		if err != nil {
			s.t.Fatal(err)
		}
	}
	return out
}

// check waits until every published job has a terminal record (or timeout),
// then counts and asserts that nothing was lost.
func (s *system) check(timeout time.Duration) tally {
	s.t.Helper()
	var results, dead map[string]int
	deadline := time.Now().Add(timeout)
	for {
		results = s.records(s.topo.ResultsStream, func(m *jetstream.RawStreamMsg) string {
			var r jobs.Result
			_ = json.Unmarshal(m.Data, &r)
			return r.JobID
		})
		dead = s.records(s.topo.DeadLetterStream, func(m *jetstream.RawStreamMsg) string { return m.Header.Get(jobs.HeaderJobID) })
		done := 0
		for id := range s.jobs {
			if results[id]+dead[id] > 0 {
				done++
			}
		}
		if done == len(s.jobs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t := tally{Published: len(s.jobs), Classes: map[jobs.ErrorClass]int{}}
	for id, session := range s.jobs {
		r, d := results[id], dead[id]
		switch {
		case r+d == 0:
			t.Lost++
		case r+d > 1:
			t.DuplicateRecords += r + d - 1
		}
		if r > 0 {
			t.Succeeded++
			if s.emu.Emulator.RevokeCount(session) == 0 {
				t.MissedRevocations++
			}
		}
		if d > 0 {
			t.DeadLettered++
		}
		if c := s.emu.Emulator.RevokeCount(session); c > 1 {
			t.DuplicateCalls += c - 1
		}
	}
	for _, m := range s.deadLetters() {
		t.Classes[m.Error.Class]++
	}
	s.t.Logf("%s (%s): %s", s.name, time.Now().Format("15:04:05.000"), t)
	if t.Lost != 0 || t.MissedRevocations != 0 || t.DuplicateRecords != 0 {
		s.t.Errorf("%s: jobs lost, recorded twice, or revocations missed: %s", s.name, t)
	}
	return t
}

// deadLetters parses every dead letter's headers.
func (s *system) deadLetters() []jobs.DeadLetter {
	s.t.Helper()
	var out []jobs.DeadLetter
	s.records(s.topo.DeadLetterStream, func(m *jetstream.RawStreamMsg) string {
		if d, err := jobs.ParseDeadLetter(m.Header); err == nil {
			out = append(out, d)
		}
		return ""
	})
	return out
}

// progress counts the jobs recorded so far, for waiting until a scenario is
// mid-load.
func (s *system) progress() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	for _, name := range []string{s.topo.ResultsStream, s.topo.DeadLetterStream} {
		if str, err := s.js.Stream(ctx, name); err == nil {
			n += int(str.CachedInfo().State.Msgs)
		}
	}
	return n
}

func (s *system) waitProgress(atLeast int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for s.progress() < atLeast {
		if time.Now().After(deadline) {
			s.t.Fatalf("fewer than %d jobs done after %s", atLeast, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runPublish runs the publish command line against the cluster.
func (s *system) runPublish(args ...string) string {
	s.t.Helper()
	base := []string{"--nats-url", s.cluster.ConnectURL(), "--prefix", s.topo.Subjects.Prefix,
		"--jobs-stream", s.topo.JobsStream, "--results-stream", s.topo.ResultsStream, "--dlq-stream", s.topo.DeadLetterStream}
	cmd := exec.Command(filepath.Join(binDir, "publish"), append(base, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("publish %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitResults waits until n results are stored.
func (s *system) waitResults(n int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		str, err := s.js.Stream(ctx, s.topo.ResultsStream)
		cancel()
		if err == nil && int(str.CachedInfo().State.Msgs) >= n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("fewer than %d results after %s", n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
