package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRegistryBoundsRunningTasks: however many start at once, maxRunning
// tasks run; the others are refused with errBusy and leave no trace in the
// registry. A task that ends makes room for another.
func TestRegistryBoundsRunningTasks(t *testing.T) {
	g := newRegistry()
	p := &plan{Kind: actReplay, Seqs: []uint64{1}}
	release := make(chan struct{})
	block := func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	const tries = 3 * maxRunning
	var wg sync.WaitGroup
	errs := make([]error, tries)
	started := make([]*task, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started[i] = newTask(actReplay, p, true)
			errs[i] = g.start(context.Background(), started[i], block)
		}()
	}
	wg.Wait()
	var ok []*task
	for i, err := range errs {
		switch {
		case err == nil:
			ok = append(ok, started[i])
		case !errors.Is(err, errBusy):
			t.Fatalf("start: %v, want nil or errBusy", err)
		case g.task(started[i].ID) != nil:
			t.Errorf("a refused task is registered")
		}
	}
	if len(ok) != maxRunning || len(g.recent()) != maxRunning {
		t.Fatalf("%d started, %d registered; want %d of %d", len(ok), len(g.recent()), maxRunning, tries)
	}
	ok[0].stop()
	deadline := time.Now().Add(10 * time.Second)
	for ok[0].running() {
		if time.Now().After(deadline) {
			t.Fatal("a stopped task still runs")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := g.start(context.Background(), newTask(actPurge, p, false), block); err != nil {
		t.Errorf("after one ended: %v", err)
	}
	close(release)
}

// TestActionsKeepFewProblems: an action over many dead letters that are
// not replayable keeps the problems its pages show (the first 100) and
// counts the others, instead of one reason per letter for as long as the
// console keeps the action (200 of them): "replay all" over 100,000
// refresh dead letters (never replayable) kept 100,000 reports of a few
// hundred bytes each for its dry run, and as many for its run.
func TestActionsKeepFewProblems(t *testing.T) {
	const n = 1000
	env := testenv.New(t)
	subj := env.Topology.Subjects
	at := time.Now().UTC()
	for i := range n {
		id := fmt.Sprintf("bad-%d", i)
		d := jobs.DeadLetter{Subject: subj.Job(jobs.OpRevoke), StreamSeq: uint64(i + 1), JobID: id, Op: jobs.OpRevoke,
			Error: jobs.ErrorInfo{Class: jobs.ClassInvalid, Message: "session_id: required"}, FirstFailure: at, LastFailure: at}
		m := nats.NewMsg(subj.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: id, Gen: "seed", Seq: uint64(i + 1)}))
		m.Header, m.Data = d.Header(), []byte(`{"job_id":"`+id+`"}`)
		if _, err := env.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	c, err := New(env.NC, env.Topology, func(FilterSpec, time.Time) (dlq.Filter, error) { return dlq.Filter{}, nil }, WithRefresh(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c.start(t.Context())
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	testenv.Eventually(t, 30*time.Second, "the queue is indexed", func() bool { return c.index.stats().Ready && c.index.stats().Entries == n })

	for _, action := range []string{"replay", "purge"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dlq/plan", strings.NewReader(url.Values{"action": {action}, "scope": {"matching"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		p := c.reg.plan(strings.TrimPrefix(resp.Header.Get("Location"), "/plans/"))
		if p == nil {
			t.Fatalf("%s: no plan (%d)", action, resp.StatusCode)
		}
		var tk *task
		if action == "replay" {
			tk, _ = p.tasks()
		} else {
			// A purge with nothing to purge: every letter is refused as
			// not the one planned.
			for k := range p.Seen {
				p.Seen[k] = seen{}
			}
			tk = newTask(actPurge, p, false)
			if err := c.reg.start(t.Context(), tk, func(ctx context.Context) error { return c.runTask(ctx, tk) }); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Eventually(t, 60*time.Second, action+" done", func() bool { return tk.view().State == taskDone })
		tk.mu.Lock()
		kept := 0
		if tk.Replay != nil {
			kept = len(tk.Replay.Problems)
		}
		if tk.Purge != nil {
			kept = len(tk.Purge.Problems)
		}
		tk.mu.Unlock()
		if kept > 100 {
			t.Errorf("%s: %d problems kept, want at most the 100 pages show", action, kept)
		}
		resp, err = http.Get(srv.URL + "/tasks/" + tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "… and 900 more.") {
			t.Errorf("%s: the task page does not say how many more problems there are:\n%s", action, body)
		}
	}
}

// TestActOnALetterNotIndexedYet: the entry page reads its letter from the
// stream, so it can show one the index has not read yet (the console has
// just started on a large queue, or the letter has just arrived). Purging
// it from that page binds the plan to the letter the page showed, and
// purges it, instead of skipping it as "not in the dead-letter queue".
func TestActOnALetterNotIndexedYet(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	at := time.Now().UTC()
	d := jobs.DeadLetter{Subject: subj.Job(jobs.OpRevoke), StreamSeq: 1, JobID: "fresh", Op: jobs.OpRevoke,
		Error: jobs.ErrorInfo{Class: jobs.ClassExhausted, Message: "clerk: HTTP 503"}, FirstFailure: at, LastFailure: at}
	m := nats.NewMsg(subj.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "fresh", Gen: "seed", Seq: 1}))
	m.Header, m.Data = d.Header(), []byte(`{"job_id":"fresh","session_id":"sess_1"}`)
	if _, err := env.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	c, err := New(env.NC, env.Topology, func(FilterSpec, time.Time) (dlq.Filter, error) { return dlq.Filter{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	// Not started: the index has read nothing, as at the start of a long
	// first read.
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post := func(path string, form url.Values) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	page := get("/dlq/1")
	const mark = `name="seq" value="`
	i := strings.Index(page, mark)
	if i < 0 {
		t.Fatalf("the entry page has no action form:\n%s", page)
	}
	shown := page[i+len(mark):]
	shown = shown[:strings.IndexByte(shown, '"')]
	plan := post("/dlq/plan", url.Values{"action": {"purge"}, "scope": {"one"}, "seq": {shown}})
	if p := get(plan); strings.Contains(p, "not in the queue") || !strings.Contains(p, "revoke/exhausted") {
		t.Errorf("the plan does not know the letter the page showed:\n%s", p)
	}
	task := post(plan+"/run", nil)
	tk := c.reg.task(strings.TrimPrefix(task, "/tasks/"))
	if tk == nil {
		t.Fatalf("no task at %s", task)
	}
	testenv.Eventually(t, 20*time.Second, "the purge ends", func() bool { return tk.view().State != taskRunning })
	if v := tk.view(); v.State != taskDone || v.Purge == nil || v.Purge.Purged != 1 {
		t.Errorf("the purge of the letter shown: %s %+v, want done and 1 purged", v.State, v.Purge)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

// TestRegistryBoundsLettersHeld: plans over a large queue, made again and
// again ("replay all" clicked in a loop), are forgotten oldest first once
// they hold more than maxHeldLetters, with the finished actions that ran
// them; the newest plan and every plan a running action uses stay.
func TestRegistryBoundsLettersHeld(t *testing.T) {
	g := newRegistry()
	big := func(at time.Time) *plan {
		return &plan{Kind: actReplay, Created: at, Seqs: make([]uint64, maxHeldLetters/4)}
	}
	start := time.Now()
	release := make(chan struct{})
	defer close(release)

	running := big(start)
	g.addPlan(running)
	rt := newTask(actReplay, running, false)
	if err := g.start(context.Background(), rt, func(context.Context) error { <-release; return nil }); err != nil {
		t.Fatal(err)
	}
	finished := big(start.Add(time.Second))
	g.addPlan(finished)
	ft := newTask(actPurge, finished, false)
	if err := g.start(context.Background(), ft, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the purge to finish", func() bool { return !ft.running() })

	var last *plan
	for i := range 20 {
		last = big(start.Add(time.Duration(2+i) * time.Second))
		g.addPlan(last)
	}
	g.mu.Lock()
	held := 0
	for _, p := range g.plans {
		held += len(p.Seqs)
	}
	g.mu.Unlock()
	if held > maxHeldLetters {
		t.Errorf("the kept plans hold %d letters, more than %d", held, maxHeldLetters)
	}
	if g.plan(last.ID) == nil {
		t.Error("the newest plan was forgotten")
	}
	if g.plan(running.ID) == nil || g.task(rt.ID) == nil {
		t.Error("the plan of a running action was forgotten")
	}
	if g.plan(finished.ID) != nil || g.task(ft.ID) != nil {
		t.Error("the oldest finished action and its plan are still kept")
	}

	// One plan larger than the bound on its own is kept: it is the one the
	// operator is looking at.
	huge := &plan{Kind: actReplay, Created: start.Add(time.Hour), Seqs: make([]uint64, 2*maxHeldLetters)}
	g.addPlan(huge)
	if g.plan(huge.ID) == nil {
		t.Error("a plan larger than the bound was refused")
	}
}

// TestExpiredProgressIsForgotten: progress that expired from the bucket by
// age (no delete marker comes) is neither listed nor kept.
func TestExpiredProgressIsForgotten(t *testing.T) {
	var b bulkJobs
	now := time.Now()
	for i := range 1000 {
		b.apply(fmt.Sprintf("old-%d", i), now.Add(-2*time.Hour), false, []byte(`{"job_id":"j","user_id":"u"}`))
	}
	b.apply("fresh", now, false, []byte(`{"job_id":"j2","user_id":"u"}`))
	got, err := b.list(now, time.Hour)
	if err != nil || len(got) != 1 || got[0].Key != "fresh" {
		t.Fatalf("list = %v, %v; want only the fresh job", got, err)
	}
	b.mu.Lock()
	kept := len(b.jobs)
	b.mu.Unlock()
	if kept != 1 {
		t.Errorf("%d jobs kept, want 1: expired progress stays in memory", kept)
	}
}

// TestOverviewShowsLiveProgressOnceNotFollowed: a revoke_all the console
// stopped following goes on in the workers; the overview then shows what
// the progress bucket says, not the count the console last heard, which
// no longer moves.
func TestOverviewShowsLiveProgressOnceNotFollowed(t *testing.T) {
	env := testenv.New(t)
	c, err := New(env.NC, env.Topology, func(FilterSpec, time.Time) (dlq.Filter, error) { return dlq.Filter{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	const jobID = "console-revoke-all-stale"
	p := &plan{Kind: actRevokeAll, Created: time.Now(), RevokeAll: &jobs.RevokeAllArgs{UserID: "user_stale"}}
	p.RevokeAll.JobID = jobID
	c.reg.addPlan(p)
	tk := newTask(actRevokeAll, p, false)
	heard := make(chan struct{})
	err = c.reg.start(t.Context(), tk, func(ctx context.Context) error {
		// What following the job heard before Stop: acknowledged, 3 of 10.
		tk.mu.Lock()
		tk.Bulk.Ack, tk.Bulk.Progress = &clerkjobs.Submitted{Stream: "JOBS", Seq: 1}, &jobs.Progress{Done: 3, Total: 10}
		tk.Total, tk.Done = 10, 3
		tk.mu.Unlock()
		close(heard)
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	<-heard
	tk.stop()
	testenv.Eventually(t, 10*time.Second, "the task stops", func() bool { return !tk.running() })
	// The job goes on: the bucket says 7 sessions handled.
	done := map[string]string{}
	for i := range 7 {
		done[fmt.Sprintf("sess_%d", i)] = "revoked"
	}
	b, err := json.Marshal(handlers.BulkProgress{JobID: jobID, UserID: "user_stale", StartedAt: time.Now(), Done: done})
	if err != nil {
		t.Fatal(err)
	}
	c.bulk.apply(jobID, time.Now(), false, b)

	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	start := strings.Index(string(page), `<table id="bulk">`)
	if start < 0 {
		t.Fatalf("the overview lists no revoke_all in progress:\n%s", page)
	}
	row := string(page[start:])
	row = row[:strings.Index(row, "</table>")]
	if strings.Contains(row, "3 / 10") || !strings.Contains(row, "7 handled") {
		t.Errorf("a revoke_all no longer followed shows the count last heard, not the bucket's 7 handled:\n%s", row)
	}
}

// TestStoppedDryRunSaysPlanAgain: a replay whose dry run was stopped
// cannot be confirmed and never will be: its page and a confirmation say
// to choose the letters again, not to wait for the dry run or continue it
// (neither page offers to).
func TestStoppedDryRunSaysPlanAgain(t *testing.T) {
	env := testenv.New(t)
	c, err := New(env.NC, env.Topology, func(FilterSpec, time.Time) (dlq.Filter, error) { return dlq.Filter{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	p := &plan{Kind: actReplay, Created: time.Now(), Seqs: []uint64{1}, Kinds: map[string]int{}}
	check := newTask(actReplay, p, true)
	if err := c.reg.start(t.Context(), check, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }); err != nil {
		t.Fatal(err)
	}
	p.check = check
	c.reg.addPlan(p)
	check.stop()
	testenv.Eventually(t, 10*time.Second, "the dry run stops", func() bool { return !check.running() })

	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct{ method, path string }{{http.MethodGet, "/plans/" + p.ID}, {http.MethodGet, "/tasks/" + check.ID}, {http.MethodPost, "/plans/" + p.ID + "/run"}} {
		status, body := do(tc.method, tc.path)
		main := body[strings.Index(body, `<main`):]
		if strings.Contains(main, "continue it") || strings.Contains(main, "wait for it") || !strings.Contains(main, "choose the dead letters again") {
			t.Errorf("%s %s (%d) after its dry run stopped:\n%s", tc.method, tc.path, status, main)
		}
	}
	if _, run := p.tasks(); run != nil {
		t.Error("a plan whose dry run stopped was confirmed")
	}
}
