package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestBrowser drives the console in headless Chromium against a real
// worker, JetStream and the Clerk emulator, the way an operator works an
// incident: look at the overview, narrow the dead letters down, read one,
// purge what cannot succeed (after confirming), replay the rest, revoke a
// user's sessions.
func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	sessions := emu.CreateSessions(emu.CreateUser(), 12)
	dlqCount := func() uint64 { return env.StreamCount(t, env.Topology.DeadLetterStream) }

	// Three jobs wait: no worker runs yet.
	for i := range 3 {
		env.Publish(t, &jobs.GetArgs{Common: jobs.Common{JobID: fmt.Sprintf("waiting-%d", i)}, SessionID: sessions[i]})
	}
	con := startConsole(t, env.NATSURL)
	b.do(t, "open the overview", chromedp.Navigate(con.URL+"/"))
	b.waitText(t, 20*time.Second, `#ops tr[data-op="get"] td.queued`, regexp.MustCompile(`^3$`))
	b.waitText(t, 20*time.Second, "#card-queued .big", regexp.MustCompile(`^3$`))
	if got := b.text(t, "#card-workers .big"); got != "0" {
		t.Errorf("workers before any started: %q", got)
	}

	// A worker runs them; then jobs fail in each way the worker knows.
	env.StartWorker(t, func(c *worker.Config) { c.Instance = "browser-worker" })
	b.waitText(t, 20*time.Second, "#card-queued .big", regexp.MustCompile(`^0$`))
	b.waitText(t, 20*time.Second, "#workers", regexp.MustCompile(`browser-worker`))
	// A slow Clerk call: the job shows in flight for its op, not waiting.
	emu.SetFaults(emulator.Faults{Latency: 6 * time.Second})
	env.Publish(t, &jobs.GetArgs{Common: jobs.Common{JobID: "slow-1"}, SessionID: sessions[0]})
	b.waitText(t, 20*time.Second, `#ops tr[data-op="get"] td.inflight`, regexp.MustCompile(`^1$`))
	if got := b.text(t, `#ops tr[data-op="get"] td.queued`); got != "0" {
		t.Errorf("a get job in flight also counted as waiting: %q", got)
	}
	emu.SetFaults(emulator.Faults{})
	for i := range 2 {
		env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: fmt.Sprintf("missing-%d", i)}, SessionID: fmt.Sprintf("sess_missing%d", i)})
	}
	env.PublishRaw(t, env.Topology.Subjects.Job(jobs.OpRevoke), []byte(`{"job_id":"bad-1","session":"x"}`))
	testenv.Eventually(t, 30*time.Second, "3 permanent and invalid dead letters", func() bool { return dlqCount() == 3 })
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	var exhaustedIDs []string
	for i := range 6 {
		id := fmt.Sprintf("exhausted-revoke-%d", i)
		exhaustedIDs = append(exhaustedIDs, id)
		env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: id}, SessionID: sessions[3+i]})
	}
	for i := range 2 {
		id := fmt.Sprintf("exhausted-get-%d", i)
		exhaustedIDs = append(exhaustedIDs, id)
		env.Publish(t, &jobs.GetArgs{Common: jobs.Common{JobID: id}, SessionID: sessions[9+i]})
	}
	testenv.Eventually(t, 60*time.Second, "11 dead letters", func() bool { return dlqCount() == 11 })
	emu.SetFaults(emulator.Faults{})

	t.Run("the overview shows the right counts", func(t *testing.T) {
		b.do(t, "open the overview", chromedp.Navigate(con.URL+"/"))
		b.waitText(t, 20*time.Second, "#card-dead .big", regexp.MustCompile(`^11$`))
		cells := []struct {
			op, class, want string
		}{
			{"revoke", "exhausted", "6"}, {"get", "exhausted", "2"}, {"revoke", "permanent", "2"}, {"revoke", "invalid", "1"},
			{"get", "permanent", "0"}, {"revoke", "max_deliveries", "0"},
		}
		for _, c := range cells {
			if got := b.text(t, fmt.Sprintf(`#dlq-matrix tr[data-op=%q] td[data-class=%q]`, c.op, c.class)); got != c.want {
				t.Errorf("dead letters %s/%s = %q, want %s", c.op, c.class, got, c.want)
			}
		}
		if got := b.text(t, `#dlq-matrix tfoot td[data-class="exhausted"]`); got != "8" {
			t.Errorf("exhausted in all = %q, want 8", got)
		}
		b.waitText(t, 20*time.Second, "#activity-total", regexp.MustCompile(`^4 succeeded, 11 dead-lettered`)) // the 3 waiting and the slow one
		b.waitText(t, 20*time.Second, "#workers", regexp.MustCompile(`browser-worker.*\n?.*ready`))
		if n := b.count(t, "svg.chart rect.bad[height]"); n == 0 {
			t.Error("the chart draws no dead-letter bars")
		}
		b.waitText(t, 20*time.Second, "#card-queued .big", regexp.MustCompile(`^0$`)) // every job settled
		b.screenshot(t, "console-overview")
	})

	t.Run("filters narrow the list", func(t *testing.T) {
		b.do(t, "open the list", chromedp.Navigate(con.URL+"/dlq"))
		b.waitText(t, 20*time.Second, "#matching strong", regexp.MustCompile(`^11$`))
		b.screenshot(t, "console-dead-letters")
		steps := []struct {
			field, value string
			want         int
		}{
			{"class", "exhausted", 8},
			{"op", "get", 2},
			{"op", "get,revoke", 8},
			{"job-id", "exhausted-get-1", 1},
			{"class", "permanent,invalid", 0},
		}
		for _, s := range steps {
			b.load(t, "filter "+s.field, chromedp.SetValue(chromedp.CSS(`#filters input[name=`+s.field+`]`), s.value), chromedp.Submit(chromedp.CSS("#filters")))
			b.waitText(t, 10*time.Second, "#matching strong", regexp.MustCompile(fmt.Sprintf(`^%d$`, s.want)))
			if n := b.count(t, "#dead-letters tbody tr"); n != s.want {
				t.Errorf("after %s=%s the table shows %d rows, want %d", s.field, s.value, n, s.want)
			}
		}
		b.do(t, "a bad filter", chromedp.Navigate(con.URL+"/dlq?since=yesterday"))
		b.waitText(t, 10*time.Second, "#filter-error", regexp.MustCompile(`since.*RFC 3339`))

		// Pages by stream sequence: 11 in pages of 5, newest first.
		b.do(t, "page 1", chromedp.Navigate(con.URL+"/dlq?n=5"))
		var seqs []string
		for page := 1; ; page++ {
			got := value(t, b, "read a page", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#dead-letters tbody tr")].map(r => r.dataset.seq)`))
			seqs = append(seqs, got...)
			if b.count(t, `a[rel=next]`) == 0 {
				break
			}
			b.load(t, "older", chromedp.Click(chromedp.CSS(`a[rel=next]`)))
			if page > 5 {
				t.Fatal("more pages than entries")
			}
		}
		var nums []int
		for _, s := range seqs {
			n, _ := strconv.Atoi(s)
			nums = append(nums, n)
		}
		if len(nums) != 11 || !slices.IsSortedFunc(nums, func(a, b int) int { return b - a }) || len(slices.Compact(slices.Clone(nums))) != 11 {
			t.Errorf("paging showed %v, want the 11 sequences, newest first, once each", nums)
		}
	})

	t.Run("an entry shows its headers, history, payload and trace id", func(t *testing.T) {
		b.do(t, "list the exhausted gets", chromedp.Navigate(con.URL+"/dlq?class=exhausted&op=get"))
		b.load(t, "open one", chromedp.Click(chromedp.CSS(`#dead-letters tbody tr a`)))
		if tr := b.text(t, "#trace code"); len(tr) < 8 {
			t.Errorf("trace id %q", tr)
		}
		if n := b.count(t, "#history tbody tr"); n < 1 {
			t.Error("no failure history")
		}
		if p := b.text(t, "#payload"); !strings.Contains(p, `"session_id"`) || !strings.Contains(p, "exhausted-get-") {
			t.Errorf("payload %q", p)
		}
		if n := b.count(t, "#headers tr"); n < 10 {
			t.Errorf("%d headers shown", n)
		}
		b.screenshot(t, "console-entry")
	})

	t.Run("purge asks first", func(t *testing.T) {
		b.do(t, "list the invalid one", chromedp.Navigate(con.URL+"/dlq?class=invalid"))
		b.load(t, "purge it", chromedp.Click(chromedp.CSS("#purge-matching")))
		b.waitText(t, 10*time.Second, "#confirm", regexp.MustCompile(`deletes 1 dead letters for good`))
		time.Sleep(300 * time.Millisecond) // give a wrongly eager purge the time to show
		if n := dlqCount(); n != 11 {
			t.Fatalf("%d dead letters before confirming, want 11", n)
		}
		b.load(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-button")))
		b.waitText(t, 20*time.Second, "#purged", regexp.MustCompile(`^1$`))
		if n := dlqCount(); n != 10 {
			t.Errorf("%d dead letters after purging one, want 10", n)
		}
	})

	t.Run("a forged cross-site POST is refused", func(t *testing.T) {
		// A purge of the permanent ones, planned but not confirmed.
		b.do(t, "list the permanent ones", chromedp.Navigate(con.URL+"/dlq?class=permanent"))
		b.load(t, "plan a purge", chromedp.Click(chromedp.CSS("#purge-matching")))
		plan := value(t, b, "location", chromedp.Location())
		// Another site (localhost is not 127.0.0.1) posts the confirmation.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/run"><button id="go">win a prize</button></form>`, plan)
		}))
		defer evil.Close()
		b.do(t, "visit the other site", chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)))
		b.load(t, "win a prize", chromedp.Click(chromedp.CSS("#go")))
		b.waitText(t, 10*time.Second, "main", regexp.MustCompile(`refused: this request came from another site`))
		time.Sleep(300 * time.Millisecond)
		if n := dlqCount(); n != 10 {
			t.Errorf("%d dead letters after the forged confirmation, want 10", n)
		}
		if !strings.Contains(con.Logs.String(), "refused a cross-origin request") {
			t.Error("the refusal was not logged")
		}
		// The plan is still waiting for a real confirmation.
		b.do(t, "back to the plan", chromedp.Navigate(plan))
		b.waitText(t, 10*time.Second, "#confirm", regexp.MustCompile(`deletes 2 dead letters`))
	})

	t.Run("replaying every exhausted dead letter from the page", func(t *testing.T) {
		b.do(t, "list the exhausted ones", chromedp.Navigate(con.URL+"/dlq?class=exhausted"))
		b.load(t, "replay them all", chromedp.Click(chromedp.CSS("#replay-matching")))
		b.waitText(t, 20*time.Second, "#dry-run", regexp.MustCompile(`would replay 8\b`))
		if n := dlqCount(); n != 10 {
			t.Fatalf("the dry run changed the queue: %d dead letters", n)
		}
		b.load(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-button")))
		b.waitText(t, 30*time.Second, "#state", regexp.MustCompile(`done`))
		if got := b.text(t, "#replayed"); got != "8" {
			t.Errorf("replayed %q, want 8", got)
		}
		b.screenshot(t, "console-action-summary")
		testenv.Eventually(t, 30*time.Second, "every replayed job succeeded", func() bool {
			done := map[string]bool{}
			for _, r := range env.Results(t) {
				if r.Outcome == jobs.Succeeded {
					done[r.JobID] = true
				}
			}
			for _, id := range exhaustedIDs {
				if !done[id] {
					return false
				}
			}
			return true
		})
		for _, id := range sessions[3:9] {
			if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
				t.Errorf("session %s is %s after the replay", id, s.Status)
			}
		}
		if n := dlqCount(); n != 2 {
			t.Errorf("%d dead letters left, want the 2 permanent ones", n)
		}
		b.do(t, "the list", chromedp.Navigate(con.URL+"/dlq?class=exhausted"))
		b.waitText(t, 10*time.Second, "#matching strong", regexp.MustCompile(`^0$`))
		b.do(t, "the overview", chromedp.Navigate(con.URL+"/"))
		b.waitText(t, 20*time.Second, "#activity-total", regexp.MustCompile(`^12 succeeded, 11 dead-lettered`))
		b.waitText(t, 20*time.Second, "#card-dead .big", regexp.MustCompile(`^2$`))
	})

	t.Run("revoke every session of a user", func(t *testing.T) {
		user := emu.CreateUser()
		ids := emu.CreateSessions(user, 5)
		b.do(t, "open the form", chromedp.Navigate(con.URL+"/revoke-all"))
		b.load(t, "fill it in and send it",
			chromedp.SetValue(chromedp.CSS(`#revoke-all input[name=user_id]`), user),
			chromedp.SetValue(chromedp.CSS(`#revoke-all input[name=except]`), ids[0]),
			chromedp.Submit(chromedp.CSS("#revoke-all")))
		b.waitText(t, 10*time.Second, "#confirm", regexp.MustCompile(`signs user `+user+` out of every active session, except `+ids[0]))
		b.load(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-button")))
		b.waitText(t, 30*time.Second, "#outcome", regexp.MustCompile(`succeeded`))
		if got := b.text(t, "#revoked"); got != "4" {
			t.Errorf("revoked %q, want 4", got)
		}
		for i, id := range ids {
			want := clerkapi.StatusRevoked
			if i == 0 {
				want = clerkapi.StatusActive
			}
			if s, _ := emu.Session(id); s.Status != want {
				t.Errorf("session %s is %s, want %s", id, s.Status, want)
			}
		}
	})

	t.Run("every action is logged with what, how many and from where", func(t *testing.T) {
		var confirmed []string
		for _, l := range jsonLines(con.Logs.String()) {
			if l["message"] == "console: action confirmed" {
				if !strings.HasPrefix(fmt.Sprint(l["from"]), "127.0.0.1:") {
					t.Errorf("action logged from %v", l["from"])
				}
				what := fmt.Sprint(l["action"])
				if n, ok := l["count"]; ok {
					what += fmt.Sprint(" ", n)
				}
				confirmed = append(confirmed, what)
			}
		}
		want := []string{"purge 1", "replay 8", "revoke_all"}
		if !slices.Equal(confirmed, want) {
			t.Errorf("confirmed actions logged: %q, want %q", confirmed, want)
		}
	})
}

// TestRefreshWaitsForTheOperator: a page that refreshes itself in place
// (here the dead-letter list, which cannot read its stream) must not throw
// away what the operator is typing or has ticked; it refreshes again once
// they undo it.
func TestRefreshWaitsForTheOperator(t *testing.T) {
	b := newBrowser(t)
	env := testenv.New(t)
	if err := env.JS.DeleteStream(t.Context(), env.Topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	con := startConsole(t, env.NATSURL)
	// Before the console stops: a refresh then would fail, and say so.
	t.Cleanup(func() { b.do(t, "leave the console", chromedp.Navigate("about:blank")) })
	b.do(t, "open the list", chromedp.Navigate(con.URL+"/dlq"))
	b.waitText(t, 20*time.Second, "#reading", regexp.MustCompile(`Reading the dead-letter queue`))

	// A mark on main goes when a refresh replaces main.
	mark := func() {
		value(t, b, "mark main", chromedp.Evaluate[bool](`(document.getElementById("main").dataset.mark = "1") === "1"`))
	}
	marked := func() bool {
		return value(t, b, "read the mark", chromedp.Evaluate[bool](`document.getElementById("main").dataset.mark === "1"`))
	}
	refreshed := func(what string) {
		t.Helper()
		mark()
		testenv.Eventually(t, 10*time.Second, what, func() bool { return !marked() })
	}
	refreshed("the list refreshes while it cannot read the queue")

	for _, c := range []struct{ name, edit, undo string }{
		{"typing in a filter (focus kept)", `(() => { const e = document.querySelector("#filters input[name=op]"); e.focus(); e.value = "revoke"; return true })()`,
			`(() => { const e = document.querySelector("#filters input[name=op]"); e.value = ""; e.blur(); return true })()`},
		{"a filter typed, then left", `(() => { const e = document.querySelector("#filters input[name=code]"); e.value = "rate_limit_exceeded"; e.blur(); return true })()`,
			`(() => { document.querySelector("#filters input[name=code]").value = ""; return true })()`},
		{"a field only focused", `(() => { document.querySelector("#filters input[name=since]").focus(); return true })()`,
			`(() => { document.activeElement.blur(); return true })()`},
	} {
		t.Run(c.name, func(t *testing.T) {
			value(t, b, "edit", chromedp.Evaluate[bool](c.edit))
			mark()
			time.Sleep(2 * time.Second) // eight refresh periods (250 ms)
			if !marked() {
				t.Fatal("the page was replaced while the operator was working in it")
			}
			value(t, b, "undo", chromedp.Evaluate[bool](c.undo))
			refreshed("the refresh goes on once the edit is undone")
		})
	}
}

// TestJobsStreamCardTurnsWarningColour: the overview's jobs stream card
// is drawn in the warning colour once the stream is nearly full, as
// computed by the browser from console.css, not only marked "warn" in the
// markup: ".card .big" (the percent's colour) outranked ".warn", so the
// percent stayed the text colour at 99%.
func TestJobsStreamCardTurnsWarningColour(t *testing.T) {
	b := newBrowser(t)
	env := testenv.New(t)
	con := startConsole(t, env.NATSURL)
	// The colours the card's percent and border have, and what the page's
	// --warn, --fg and --line resolve to (a probe element resolves them to
	// the same rgb() form getComputedStyle gives).
	const js = `(() => {
	  const big = document.querySelector("#card-stream .big"), card = document.getElementById("card-stream");
	  const resolve = v => { const p = document.createElement("span"); p.style.color = "var(" + v + ")"; document.body.append(p); const c = getComputedStyle(p).color; p.remove(); return c };
	  return {big: getComputedStyle(big).color, border: getComputedStyle(card).borderTopColor, warn: resolve("--warn"), fg: resolve("--fg"), line: resolve("--line")};
	})()`
	colours := func() map[string]string {
		return value(t, b, "read the card's colours", chromedp.Evaluate[map[string]string](js))
	}

	b.do(t, "open the overview", chromedp.Navigate(con.URL+"/"))
	b.waitText(t, 20*time.Second, "#card-stream .big", regexp.MustCompile(`^0%$`))
	c := colours()
	if c["warn"] == c["fg"] || c["warn"] == c["line"] {
		t.Fatalf("the warning colour is not told apart from the text's or the lines': %v", c)
	}
	if c["big"] != c["fg"] || c["border"] != c["line"] {
		t.Errorf("empty jobs stream: percent %s, border %s; want the text colour %s and the line colour %s", c["big"], c["border"], c["fg"], c["line"])
	}

	testenv.FillJobsStream(t, env.JS, env.Topology)
	b.waitText(t, 20*time.Second, "#card-stream .big", regexp.MustCompile(`^99%$`))
	c = colours()
	if c["big"] != c["warn"] || c["border"] != c["warn"] {
		t.Errorf("full jobs stream: percent %s, border %s; want the warning colour %s for both", c["big"], c["border"], c["warn"])
	}
}
