package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// running is a `publish console` process run in-process through the
// command line's entry point, exactly as an operator starts it.
type running struct {
	URL  string
	Logs *testenv.SyncBuffer
	stop context.CancelFunc
	code chan int
}

var listening = regexp.MustCompile(`"url":"(https?://[^"]+)/"`)

// startConsole runs `publish console` against natsURL with args, waits
// until it logs the URL it serves, and stops it at cleanup, expecting a
// clean exit.
func startConsole(t testing.TB, natsURL string, args ...string) *running {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Logs: logs, stop: cancel, code: make(chan int, 1)}
	env := map[string]string{"NATS_URL": natsURL}
	// Defaults for the flags args leaves out: a flag given twice is refused.
	full := []string{"console"}
	for _, d := range [][2]string{{"--listen", "127.0.0.1:0"}, {"--refresh", "250ms"}} {
		if !slices.Contains(args, d[0]) {
			full = append(full, d[0], d[1])
		}
	}
	go func() {
		r.code <- publishcli.RunEnv(ctx, append(full, args...),
			publishcli.Env{Stdout: io.Discard, Stderr: logs, Getenv: func(k string) string { return env[k] }})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			r.URL = m[1]
			break
		}
		select {
		case code := <-r.code:
			t.Fatalf("publish console exited with %d before listening:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish console did not listen within 30s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-r.code:
			if code != 0 {
				t.Errorf("publish console exited with %d:\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("publish console did not stop within 30s")
		}
	})
	return r
}

// runPublish runs the publish command line with args against natsURL and
// returns its exit status and output (standard output, then error).
func runPublish(t testing.TB, natsURL string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr testenv.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := publishcli.RunEnv(ctx, args, publishcli.Env{
		Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return map[string]string{"NATS_URL": natsURL}[k] },
	})
	return code, stdout.String() + stderr.String()
}

// get fetches a console page as a browser-less client would.
func (r *running) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends a same-origin form, the way the console's own pages do, and
// returns the status and where it redirected to (the Location), or the
// page it answered when it did not redirect.
func (r *running) post(t testing.TB, path string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", r.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "" {
		return resp.StatusCode, loc
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// waitPage polls path until its body matches re, and returns the match.
func (r *running) waitPage(t testing.TB, timeout time.Duration, path string, re *regexp.Regexp) []string {
	t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		code, body := r.get(t, path)
		if code == http.StatusOK {
			if m := re.FindStringSubmatch(body); m != nil {
				return m
			}
		}
		last = body
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not show %s within %s; last page:\n%s", path, re, timeout, last)
	return nil
}

// waitIndexed waits until the console has read the whole dead-letter
// queue as it was when the console started (the list stops saying it is
// reading). A letter stored after the start is indexed a moment later:
// seed before starting the console.
func (r *running) waitIndexed(t testing.TB, timeout time.Duration) {
	t.Helper()
	r.waitPage(t, timeout, "/dlq", regexp.MustCompile(`(?s)<h1>Dead letters</h1>(.*)`))
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, body := r.get(t, "/dlq?n=1"); !strings.Contains(body, `id="reading"`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the console did not finish reading the dead-letter queue within %s", timeout)
}

// seed stores n messages made by msg, published asynchronously (a window
// of acknowledgements outstanding) so that 100,000 dead letters take
// seconds.
func seed(t testing.TB, js jetstream.JetStream, n int, msg func(i int) *nats.Msg) {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, n)
	for i := range n {
		f, err := js.PublishMsgAsync(msg(i))
		if err != nil {
			t.Fatalf("seed message %d: %v", i, err)
		}
		futures[i] = f
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		t.Fatalf("seeding %d messages did not complete", n)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("seed message %d: %v", i, err)
		}
	}
}

// deadLetter is a dead letter as the worker records it.
func deadLetter(subj jobs.Subjects, op jobs.Op, class jobs.ErrorClass, jobID, body string, at time.Time) *nats.Msg {
	code, status := "", 0
	switch class {
	case jobs.ClassExhausted:
		code, status = "internal_clerk_error", 503
	case jobs.ClassPermanent:
		code, status = "resource_not_found", 404
	}
	d := jobs.DeadLetter{
		Subject: subj.Job(op), StreamSeq: 1, JobID: jobID, Op: op,
		Error:    jobs.ErrorInfo{Class: class, Message: fmt.Sprintf("clerk: HTTP %d %s", status, code), ClerkCode: code, HTTPStatus: status, TraceID: "trace-" + jobID},
		Attempts: 3, Deliveries: 3, FirstFailure: at, LastFailure: at, Worker: "seed",
		History: []jobs.Failure{{At: at, Error: "boom", Status: status, Code: code, TraceID: "trace-" + jobID}},
	}
	m := nats.NewMsg(subj.DeadLetter(jobs.RecordKey{Op: op, JobID: jobID, Gen: "seed", Seq: uint64(at.UnixNano())}))
	m.Header = d.Header()
	m.Data = []byte(body)
	return m
}

// ---- the browser

// browser is a headless Chromium driven over the DevTools protocol. Any
// Content-Security-Policy violation or script error a page reports fails
// the test: the console must run under its own policy.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

// chromium finds Debian's chromium (or another Chrome); without one the
// browser tests skip, unless REQUIRE_BROWSER=1.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (apt-get install chromium): skipping the browser tests"
	if os.Getenv("REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + " is not allowed with REQUIRE_BROWSER=1")
	}
	t.Skip(msg)
	return ""
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in a container; only the test's own pages are visited
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	b := &browser{ctx: ctx}
	entries := chromedp.Events(ctx, log.EntryAdded)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("Chromium log: %v", err)
	}
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			// Error statuses are the console's answers under test (401,
			// 403, 421), not problems of a page.
			if ev.Entry.Level == log.EntryLevelError && !strings.Contains(ev.Entry.Text, "the server responded with a status of 4") {
				b.problem("log: " + ev.Entry.Text)
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			b.problem("exception: " + ev.ExceptionDetails.Text)
		}
	}()
	t.Cleanup(func() {
		for _, p := range b.all() {
			t.Errorf("the browser reported: %s", p)
		}
	})
	return b
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

func (b *browser) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// main returns the page's main element, for failure messages.
func (b *browser) main() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	return s
}

// do runs actions with a generous deadline.
func (b *browser) do(t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, b.main())
	}
}

// load runs actions that open another page (a click on a link or a
// button, a submit) and returns once that page has loaded: without the
// wait, the next action may look for its node in the page being left
// ("No node with given id found").
func (b *browser) load(t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, b.main())
	}
}

// value runs one action that returns a value.
func value[T any](t testing.TB, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, b.main())
	}
	return v
}

// text returns the text of the first element sel (CSS) matches, once one
// does. It reads in one evaluation in the page: a node looked up and then
// read may be gone in between, as pages replace their content when they
// refresh themselves.
func (b *browser) text(t testing.TB, sel string) string {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e === null ? null : e.innerText })()`, sel)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s := value(t, b, "read "+sel, chromedp.Evaluate[*string](js)); s != nil {
			return strings.TrimSpace(*s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing matches %s\npage:\n%s", sel, b.main())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText polls until the text of sel matches re (pages refresh
// themselves) and returns the match.
func (b *browser) waitText(t testing.TB, timeout time.Duration, sel string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var s string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			s = v
			if m := re.FindStringSubmatch(s); m != nil {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not show %s within %s (last %q)\npage:\n%s", sel, re, timeout, s, b.main())
	return nil
}

// count returns how many elements sel (CSS) matches.
func (b *browser) count(t testing.TB, sel string) int {
	t.Helper()
	return value(t, b, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

// screenshot saves the page as <name>.png in the directory
// CONSOLE_SCREENSHOTS names, when it names one (docs/ has them).
func (b *browser) screenshot(t testing.TB, name string) {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := value(t, b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// jsonLines decodes the console's JSON log lines.
func jsonLines(s string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(s, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
