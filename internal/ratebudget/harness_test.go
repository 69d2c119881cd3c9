package ratebudget

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

// testBucket is the bucket name the tests use.
const testBucket = "TEST_RATE_BUDGET"

// env is one test's world: an embedded JetStream server, the bucket, and
// the Clerk emulator enforcing limit in the given mode.
type env struct {
	t     testing.TB
	nats  *server.Server
	clerk *emulator.Server
	limit Limit
	fp    string
}

func newEnv(t testing.TB, limit Limit, mode emulator.RateLimitMode) *env {
	t.Helper()
	s, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(s.Shutdown)
	clerk := emulator.NewServer(emulator.WithRateLimit(limit.N, limit.Per), emulator.WithRateLimitMode(mode))
	t.Cleanup(clerk.Close)
	e := &env{t: t, nats: s, clerk: clerk, limit: limit, fp: Fingerprint(emulator.DefaultSecretKey)}
	_, js := e.connect(s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateKeyValue(ctx, BucketConfig(testBucket, 1, jetstream.FileStorage)); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return e
}

// connect opens a connection of its own (closed at cleanup), so that each
// budget can lose its connection alone.
func (e *env) connect(url string) (*nats.Conn, jetstream.JetStream) {
	e.t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the watcher notices a cut connection: expected
	if err != nil {
		e.t.Fatalf("connect: %v", err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return nc, js
}

// bucket opens the bucket over a connection to url.
func (e *env) bucket(url string) (*nats.Conn, jetstream.KeyValue) {
	e.t.Helper()
	nc, js := e.connect(url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, testBucket)
	if err != nil {
		e.t.Fatalf("open bucket: %v", err)
	}
	return nc, kv
}

// budget is a fleet budget on a connection of its own to url (the
// server's when empty), closed at cleanup.
func (e *env) budget(url string, opts ...Option) (*Budget, *nats.Conn) {
	e.t.Helper()
	if url == "" {
		url = e.nats.ClientURL()
	}
	nc, kv := e.bucket(url)
	b, err := New(kv, e.fp, e.limit, opts...)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(b.Close)
	return b, nc
}

// budgets starts n fleet budgets, each loaded by callers goroutines.
func (e *env) budgets(n, callers int, opts ...Option) ([]*Budget, []*caller) {
	e.t.Helper()
	var bs []*Budget
	var cs []*caller
	for range n {
		b, _ := e.budget("", opts...)
		bs = append(bs, b)
		cs = append(cs, e.load(b, callers))
	}
	return bs, cs
}

// total is the calls all callers made.
func total(cs ...*caller) int {
	n := 0
	for _, c := range cs {
		all, _ := c.count(time.Time{})
		n += all
	}
	return n
}

// eachAfter reports whether every caller made at least n calls after since.
func eachAfter(n int, since time.Time, cs ...*caller) bool {
	for _, c := range cs {
		if _, after := c.count(since); after < n {
			return false
		}
	}
	return true
}

// bestWindow is the most calls the callers made together in any window of
// length w starting at or after since.
func bestWindow(since time.Time, w time.Duration, cs ...*caller) int {
	var ts []time.Time
	for _, c := range cs {
		for _, g := range c.times() {
			if !g.Before(since) {
				ts = append(ts, g)
			}
		}
	}
	slices.SortFunc(ts, time.Time.Compare)
	n, _ := worstWindow(ts, w)
	return n
}

// caller calls Clerk through a budget, as the worker will: Wait, then the
// call; a 429 is reported with Throttled.
type caller struct {
	b      *Budget
	clerk  *clerkapi.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	grants []time.Time // when Wait returned
	errs   []error
}

// load starts n goroutines calling Clerk through b until stopped.
func (e *env) load(b *Budget, n int) *caller {
	e.t.Helper()
	c, err := clerkapi.New(clerkapi.WithBaseURL(e.clerk.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &caller{b: b, clerk: c, cancel: cancel}
	for range n {
		cl.wg.Add(1)
		go func() {
			defer cl.wg.Done()
			for {
				if err := b.Wait(ctx); err != nil {
					return
				}
				at := time.Now()
				_, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: "user_ratebudget"})
				var apiErr *clerkapi.Error
				if errors.As(err, &apiErr) && apiErr.StatusCode == 429 {
					b.Throttled(apiErr.RetryAfter)
				}
				cl.mu.Lock()
				cl.grants = append(cl.grants, at)
				if err != nil && ctx.Err() == nil {
					cl.errs = append(cl.errs, err)
				}
				cl.mu.Unlock()
			}
		}()
	}
	e.t.Cleanup(cl.stop)
	return cl
}

func (c *caller) stop() {
	c.cancel()
	c.wg.Wait()
}

// count is how many calls went, in all and since t.
func (c *caller) count(since time.Time) (all, after int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.grants {
		if !g.Before(since) {
			after++
		}
	}
	return len(c.grants), after
}

func (c *caller) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.grants)
}

// errors returns the calls' errors (none expected).
func (c *caller) errors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errs)
}

// clerkCalls returns the emulator's accepted calls' arrival times, sorted,
// and the number of 429s it answered.
func (e *env) clerkCalls() (accepted []time.Time, throttled int) {
	for _, c := range e.clerk.Emulator.Calls() {
		switch c.Status {
		case 200:
			accepted = append(accepted, c.Time)
		case 429:
			throttled++
		}
	}
	slices.SortFunc(accepted, time.Time.Compare)
	return accepted, throttled
}

// worstWindow is the most calls any interval of length w holds (half
// open, as a sliding window counts), and where it starts.
func worstWindow(times []time.Time, w time.Duration) (int, time.Time) {
	best, at, i := 0, time.Time{}, 0
	for j := range times {
		for times[j].Sub(times[i]) >= w {
			i++
		}
		if n := j - i + 1; n > best {
			best, at = n, times[i]
		}
	}
	return best, at
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkClerk asserts what Clerk saw: no 429, and no window of the limit's
// length, sliding or fixed, above the limit.
func (e *env) checkClerk() int {
	e.t.Helper()
	accepted, throttled := e.clerkCalls()
	if throttled > 0 {
		e.t.Errorf("Clerk answered %d calls 429", throttled)
	}
	worst, at := worstWindow(accepted, e.limit.Per)
	if worst > e.limit.N {
		e.t.Errorf("%d calls in the sliding window from %s, limit %s", worst, at.Format(time.RFC3339Nano), e.limit)
	}
	e.t.Logf("Clerk: %d calls, worst sliding %v window %d of %d", len(accepted), e.limit.Per, worst, e.limit.N)
	return worst
}

// proxy is a TCP proxy to the NATS server that can cut every connection
// and refuse new ones (a partition), then let them through again.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
