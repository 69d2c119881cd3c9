package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// seedRevokes stores one exhausted revoke dead letter per session, and
// permanent get dead letters for others of them, and returns the job ids
// of the revokes.
func seedRevokes(t testing.TB, env *testenv.Env, sessions []string, permanent int) {
	t.Helper()
	subj := env.Topology.Subjects
	at := time.Now().UTC()
	seed(t, env.JS, len(sessions)+permanent, func(i int) *nats.Msg {
		if i < len(sessions) {
			id := fmt.Sprintf("rev-%d", i)
			return deadLetter(subj, jobs.OpRevoke, jobs.ClassExhausted, id, fmt.Sprintf(`{"job_id":%q,"session_id":%q}`, id, sessions[i]), at)
		}
		id := fmt.Sprintf("get-%d", i)
		return deadLetter(subj, jobs.OpGet, jobs.ClassPermanent, id, fmt.Sprintf(`{"job_id":%q,"session_id":"sess_gone%d"}`, id, i), at)
	})
}

// replayAll replays every dead letter the query selects from the
// console's pages (plan, dry run, confirmation, progress) and returns the
// task's URL once it is done. want is how many it must replay.
func replayAll(t testing.TB, con *running, query url.Values, want int, timeout time.Duration) string {
	t.Helper()
	form := url.Values{"action": {"replay"}, "scope": {"matching"}}
	for k, v := range query {
		form[k] = v
	}
	status, plan := con.post(t, "/dlq/plan", form)
	if status != http.StatusSeeOther {
		t.Fatalf("plan: %d", status)
	}
	n := text.GroupDigits(strconv.Itoa(want)) // as the page writes counts
	con.waitPage(t, timeout, plan, regexp.MustCompile(`would replay `+n+`</strong>`))
	status, task := con.post(t, plan+"/run", nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(task, "/tasks/") {
		t.Fatalf("run: %d %q", status, task)
	}
	con.waitPage(t, timeout, task, regexp.MustCompile(`(?s)State: <strong>done</strong>.*id="replayed">`+n+`<.*id="skipped">0<.*id="failed">0<`))
	return task
}

// TestReplayAllMatching: "replay all matching" takes every dead letter the
// filter selects, many pages' worth, not a page; each job runs again and
// succeeds; the others stay.
func TestReplayAllMatching(t *testing.T) {
	const revokes, others = 2000, 300
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	sessions := emu.CreateSessions(emu.CreateUser(), revokes)
	seedRevokes(t, env, sessions, others)
	env.StartWorker(t)
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 60*time.Second)
	con.waitPage(t, 10*time.Second, "/dlq?class=exhausted", regexp.MustCompile(`<strong>2,000</strong> match`))

	replayAll(t, con, url.Values{"class": {"exhausted"}}, revokes, 3*time.Minute)
	testenv.Eventually(t, 3*time.Minute, "every replayed job succeeded", func() bool { return len(env.Results(t)) == revokes })
	for _, id := range sessions {
		if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Fatalf("session %s is %s after the replay", id, s.Status)
		}
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != others {
		t.Errorf("%d dead letters left, want the %d permanent ones", n, others)
	}
	con.waitPage(t, 10*time.Second, "/dlq", regexp.MustCompile(`<strong>300</strong> dead letters`))
	con.waitPage(t, 10*time.Second, "/dlq?class=exhausted", regexp.MustCompile(`<strong>0</strong> match`))
}

// TestDeletedElsewhere: a purge from the command line, while the console
// runs, shows in the console's counts and list.
func TestDeletedElsewhere(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	seedRevokes(t, env, emu.CreateSessions(emu.CreateUser(), 30), 20)
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 30*time.Second)
	con.waitPage(t, 10*time.Second, "/dlq", regexp.MustCompile(`<strong>50</strong> dead letters`))
	code, out := runPublish(t, env.NATSURL, "dlq", "purge", "--class", "permanent", "--yes")
	if code != 0 {
		t.Fatalf("publish dlq purge: %d %s", code, out)
	}
	con.waitPage(t, 20*time.Second, "/dlq", regexp.MustCompile(`<strong>30</strong> dead letters`))
	con.waitPage(t, 10*time.Second, "/", regexp.MustCompile(`(?s)id="card-dead"><div class="big"><a href="/dlq">30</a>`))
}

// TestStopAndContinue: a replay stopped halfway is continued with what is
// left; nothing is replayed twice.
func TestStopAndContinue(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	sessions := emu.CreateSessions(emu.CreateUser(), 40)
	seedRevokes(t, env, sessions, 0)
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 30*time.Second)
	status, plan := con.post(t, "/dlq/plan", url.Values{"action": {"replay"}, "scope": {"matching"}, "op": {"revoke"}})
	if status != http.StatusSeeOther {
		t.Fatalf("plan: %d", status)
	}
	con.waitPage(t, 20*time.Second, plan, regexp.MustCompile(`would replay 40</strong>`))
	// Slowly: 5 a second, so it can be stopped midway.
	_, task := con.post(t, plan+"/run", url.Values{"rate": {"5"}})
	con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`<progress value="[1-9]\d*" max="40"`))
	if status, _ := con.post(t, task+"/stop", nil); status != http.StatusSeeOther {
		t.Fatalf("stop: %d", status)
	}
	m := con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`(?s)State: <strong>stopped</strong>.*id="replayed">(\d+)<`))
	if m[1] == "0" || m[1] == "40" {
		t.Fatalf("stopped after %s of 40", m[1])
	}
	status, plan2 := con.post(t, task+"/continue", nil)
	if status != http.StatusSeeOther || plan2 == plan {
		t.Fatalf("continue: %d %q", status, plan2)
	}
	var done int
	fmt.Sscan(m[1], &done)
	left := 40 - done
	con.waitPage(t, 20*time.Second, plan2, regexp.MustCompile(fmt.Sprintf(`(?s)<strong>%d</strong> dead letters: what is left of: all matching op=revoke.*would replay %d</strong>`, left, left)))
	_, task2 := con.post(t, plan2+"/run", nil)
	con.waitPage(t, 30*time.Second, task2, regexp.MustCompile(fmt.Sprintf(`(?s)State: <strong>done</strong>.*id="replayed">%d<`, left)))
	// Every job is in the jobs stream once: 40 messages, no duplicate.
	if n := env.StreamCount(t, env.Topology.JobsStream); n != 40 {
		t.Errorf("%d jobs in the jobs stream, want 40", n)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

// recreateDLQ deletes the dead-letter stream and creates it again with
// the same configuration: its sequences start over at 1.
func recreateDLQ(t testing.TB, env *testenv.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := env.JS.Stream(ctx, env.Topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.JS.DeleteStream(ctx, env.Topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	// Creation times are kept to the nanosecond, but make sure they differ.
	time.Sleep(10 * time.Millisecond)
	if _, err := env.JS.CreateStream(ctx, info.Config); err != nil {
		t.Fatal(err)
	}
}

// TestRecreatedStream: after the dead-letter stream is deleted and created
// again, the console lists the new stream's letters, not the old ones,
// and a plan made before never touches a letter it did not choose, even
// one now stored under a sequence it names.
func TestRecreatedStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		// plan is made before the stream is recreated, confirmed after.
		plan url.Values
	}{
		{"list only", nil},
		{"purge matching", url.Values{"action": {"purge"}, "scope": {"matching"}, "job-id": {"old-0"}}},
		{"purge selected", url.Values{"action": {"purge"}, "scope": {"selected"}, "seq": {"1"}}},
		{"replay one", url.Values{"action": {"replay"}, "scope": {"one"}, "seq": {"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			subj := env.Topology.Subjects
			at := time.Now().UTC()
			letter := func(id string) *nats.Msg {
				return deadLetter(subj, jobs.OpRevoke, jobs.ClassExhausted, id, fmt.Sprintf(`{"job_id":%q,"session_id":"sess_%s"}`, id, strings.ReplaceAll(id, "-", "")), at)
			}
			seed(t, env.JS, 3, func(i int) *nats.Msg { return letter(fmt.Sprintf("old-%d", i)) })
			con := startConsole(t, env.NATSURL)
			con.waitIndexed(t, 20*time.Second)
			con.waitPage(t, 10*time.Second, "/dlq", regexp.MustCompile(`<strong>3</strong> dead letters`))
			var plan string
			if tc.plan != nil {
				status, loc := con.post(t, "/dlq/plan", tc.plan)
				if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/plans/") {
					t.Fatalf("plan: %d %q", status, loc)
				}
				plan = loc
				if tc.plan.Get("action") == "replay" {
					con.waitPage(t, 20*time.Second, plan, regexp.MustCompile(`would replay 1</strong>`))
				}
			}

			recreateDLQ(t, env)
			seed(t, env.JS, 1, func(int) *nats.Msg { return letter("new-1") })

			if plan != "" {
				status, task := con.post(t, plan+"/run", nil)
				if status != http.StatusSeeOther || !strings.HasPrefix(task, "/tasks/") {
					t.Fatalf("run: %d %q", status, task)
				}
				con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`(?s)State: <strong>done</strong>.*now holds another dead letter \(job new-1`))
				if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 1 {
					t.Fatalf("%d dead letters left, want new-1", n)
				}
			}
			body := con.waitPage(t, 20*time.Second, "/dlq", regexp.MustCompile(`(?s)<strong>1</strong> dead letters.*`))[0]
			if !strings.Contains(body, "new-1") || strings.Contains(body, "old-") {
				t.Errorf("the list does not show exactly new-1:\n%s", body)
			}
		})
	}
}

// TestPlanBindsToThePageShown: the list and entry pages send which letter
// they showed with its sequence; a plan for a sequence that now holds
// another letter is refused, and a malformed one is a clear 400.
func TestPlanBindsToThePageShown(t *testing.T) {
	env := testenv.New(t)
	at := time.Now().UTC()
	seed(t, env.JS, 1, func(int) *nats.Msg {
		return deadLetter(env.Topology.Subjects, jobs.OpRevoke, jobs.ClassExhausted, "one", `{"job_id":"one","session_id":"sess_1"}`, at)
	})
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)
	listed := con.waitPage(t, 10*time.Second, "/dlq", regexp.MustCompile(`name="seq" value="(1@\d+)"`))[1]
	shown := con.waitPage(t, 10*time.Second, "/dlq/1", regexp.MustCompile(`name="seq" value="(1@\d+)"`))[1]
	if listed != shown {
		t.Errorf("the list sends %q, the entry page %q", listed, shown)
	}
	for _, tc := range []struct {
		seq  string
		want int
	}{
		{shown, http.StatusSeeOther},
		{"1", http.StatusSeeOther},
		{"1@12345", http.StatusConflict},
		{"1@", http.StatusBadRequest},
		{"1@x", http.StatusBadRequest},
		{"@5", http.StatusBadRequest},
	} {
		if status, _ := con.post(t, "/dlq/plan", url.Values{"action": {"purge"}, "scope": {"one"}, "seq": {tc.seq}}); status != tc.want {
			t.Errorf("seq %q: %d, want %d", tc.seq, status, tc.want)
		}
	}
}

// TestRunningActionsAreBounded: the console runs at most four actions at
// once, dry runs included. A fifth plan or confirmation is refused with
// 429 saying why and runs nothing; a refused confirmation can be confirmed
// again once an action has ended.
func TestRunningActionsAreBounded(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	seedRevokes(t, env, emu.CreateSessions(emu.CreateUser(), 10), 0)
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 30*time.Second)
	plan := func(form url.Values) string {
		t.Helper()
		status, plan := con.post(t, "/dlq/plan", form)
		if status != http.StatusSeeOther {
			t.Fatalf("plan %v: %d %s", form, status, plan)
		}
		return plan
	}
	run := func(plan string, form url.Values) string {
		t.Helper()
		status, task := con.post(t, plan+"/run", form)
		if status != http.StatusSeeOther || !strings.HasPrefix(task, "/tasks/") {
			t.Fatalf("run %s: %d %s", plan, status, task)
		}
		return task
	}
	busy := regexp.MustCompile(`4 actions are running, the most the console runs at once`)
	refused := func(what string, status int, body string) {
		t.Helper()
		if status != http.StatusTooManyRequests || !busy.MatchString(body) {
			t.Fatalf("%s: %d, want 429 saying why:\n%s", what, status, body)
		}
	}
	stop := func(task string) {
		t.Helper()
		if status, _ := con.post(t, task+"/stop", nil); status != http.StatusSeeOther {
			t.Fatalf("stop: %d", status)
		}
		con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`State: <strong>stopped</strong>`))
	}
	// Planned first, confirmed later: a purge (no dry run) and a replay
	// whose dry run ends at once.
	purge := plan(url.Values{"action": {"purge"}, "scope": {"one"}, "seq": {"10"}})
	replay := plan(url.Values{"action": {"replay"}, "scope": {"one"}, "seq": {"9"}})
	con.waitPage(t, 20*time.Second, replay, regexp.MustCompile(`would replay 1</strong>`))
	// A rate that would mean no limit at all is refused, and claims nothing.
	if status, body := con.post(t, replay+"/run", url.Values{"rate": {"NaN"}}); status != http.StatusBadRequest || !strings.Contains(body, "want a positive number") {
		t.Fatalf("rate NaN: %d, want 400 saying why:\n%s", status, body)
	}
	// Four replays of two letters each at one job per 100 s: each replays
	// one letter and waits.
	var running []string
	for i := range 4 {
		p := plan(url.Values{"action": {"replay"}, "scope": {"selected"}, "seq": {fmt.Sprint(2*i + 1), fmt.Sprint(2*i + 2)}})
		con.waitPage(t, 20*time.Second, p, regexp.MustCompile(`would replay 2</strong>`))
		task := run(p, url.Values{"rate": {"0.01"}})
		con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`State: <strong>running</strong>`))
		running = append(running, task)
	}
	status, body := con.post(t, "/dlq/plan", url.Values{"action": {"replay"}, "scope": {"matching"}})
	refused("a fifth action's dry run", status, body)
	status, body = con.post(t, replay+"/run", nil)
	refused("a replay confirmed fifth", status, body)
	status, body = con.post(t, purge+"/run", nil)
	refused("a purge confirmed fifth", status, body)

	stop(running[0])
	task := run(replay, nil)
	con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`(?s)State: <strong>done</strong>.*id="replayed">1<`))
	stop(running[1])
	task = run(purge, nil)
	con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`(?s)State: <strong>done</strong>.*id="purged">1<`))
}

// TestPurgeCancelKeepsTheFilter: "cancel" on the confirmation of a purge of
// all matching goes back to the list with the same filter, not to a list
// of every dead letter (where "Purge all" would take them all).
func TestPurgeCancelKeepsTheFilter(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	seedRevokes(t, env, emu.CreateSessions(emu.CreateUser(), 3), 2)
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 30*time.Second)
	status, plan := con.post(t, "/dlq/plan", url.Values{"action": {"purge"}, "scope": {"matching"}, "class": {"exhausted"}, "op": {"revoke"}})
	if status != http.StatusSeeOther {
		t.Fatalf("plan: %d %s", status, plan)
	}
	cancel := con.waitPage(t, 10*time.Second, plan, regexp.MustCompile(`<a href="([^"]*)">cancel</a>`))[1]
	back := html.UnescapeString(cancel)
	u, err := url.Parse(back)
	if err != nil {
		t.Fatalf("cancel link %q: %v", back, err)
	}
	if u.Path != "/dlq" || u.Query().Get("class") != "exhausted" || u.Query().Get("op") != "revoke" {
		t.Fatalf("cancel goes to %q, want the list filtered on class=exhausted and op=revoke", back)
	}
	con.waitPage(t, 10*time.Second, back, regexp.MustCompile(`<strong>3</strong> match, of 5`))
}

// TestFailedRevokeAllSaysSo: a revoke_all job that fails (Clerk keeps
// answering 503 until the job is dead-lettered) is an action that failed:
// its page, the actions list and the log line that ends it say so, with
// the job's error, rather than "done" with no error and no count.
func TestFailedRevokeAllSaysSo(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 3)
	env.StartWorker(t)
	con := startConsole(t, env.NATSURL)
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	status, plan := con.post(t, "/revoke-all/plan", url.Values{"user_id": {user}})
	if status != http.StatusSeeOther {
		t.Fatalf("plan revoke_all: %d %q", status, plan)
	}
	status, task := con.post(t, plan+"/run", nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(task, "/tasks/") {
		t.Fatalf("run revoke_all: %d %q", status, task)
	}
	m := con.waitPage(t, 60*time.Second, task, regexp.MustCompile(`State: <strong>(\w+)</strong>([^<]*)</p>(?s:.*)Outcome: <strong id="outcome">(\w+)</strong>`))
	if m[3] != string(jobs.Failed) {
		t.Fatalf("the job's outcome is %s, want failed", m[3])
	}
	if m[1] != "failed" || !strings.Contains(m[2], "exhausted") {
		t.Errorf("a failed revoke_all shows State: %s%s; want failed, with the job's error class", m[1], m[2])
	}
	con.waitPage(t, 10*time.Second, "/actions", regexp.MustCompile(`<td class="state-failed">failed</td>`))
	testenv.Eventually(t, 10*time.Second, "the action's end is logged", func() bool {
		for _, l := range jsonLines(con.Logs.String()) {
			if l["event"] == "finish" && l["action"] == "revoke_all" {
				return true
			}
		}
		return false
	})
	for _, l := range jsonLines(con.Logs.String()) {
		if l["event"] == "finish" && l["action"] == "revoke_all" {
			if e, _ := l["error"].(string); !strings.Contains(e, "exhausted") {
				t.Errorf("the log line that ends a failed revoke_all has no error: %v", l)
			}
		}
	}
}

// TestStopFollowingRevokeAll: Stop on a revoke_all stops following it
// here, not the job: the page says the job goes on, and does not tell the
// operator to continue it (there is nothing to continue).
func TestStopFollowingRevokeAll(t *testing.T) {
	env := testenv.New(t)
	user := env.Clerk.Emulator.CreateUser()
	con := startConsole(t, env.NATSURL) // no worker: the job waits
	status, plan := con.post(t, "/revoke-all/plan", url.Values{"user_id": {user}})
	if status != http.StatusSeeOther {
		t.Fatalf("plan revoke_all: %d %q", status, plan)
	}
	_, task := con.post(t, plan+"/run", nil)
	con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`(?s)State: <strong>running</strong>.*Accepted by`))
	if status, _ := con.post(t, task+"/stop", nil); status != http.StatusSeeOther {
		t.Fatalf("stop: %d", status)
	}
	m := con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`State: <strong>stopped</strong>([^<]*)</p>`))
	if strings.Contains(m[1], "continue") || !strings.Contains(m[1], "goes on") {
		t.Errorf("a revoke_all no longer followed says %q; want that the job goes on, and no word of continuing it", m[1])
	}
	if n := env.StreamCount(t, env.Topology.JobsStream); n != 1 {
		t.Errorf("%d jobs in the jobs stream, want the revoke_all still there", n)
	}
}

// TestBadPagingIsRefused: a paging cursor or page length that is not a
// number (typed by hand, "1,000" copied with its grouping) is a 400 that
// names it, not the newest page shown as if it were the one asked for.
func TestBadPagingIsRefused(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	seedRevokes(t, env, emu.CreateSessions(emu.CreateUser(), 3), 0)
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 30*time.Second)
	for _, q := range []string{"before=1,000", "after=x", "before=-2", "n=ten", "n=-5"} {
		code, body := con.get(t, "/dlq?"+q)
		name, _, _ := strings.Cut(q, "=")
		if code != http.StatusBadRequest || !strings.Contains(body, name+"=") {
			t.Errorf("/dlq?%s: %d, want 400 naming %s", q, code, name)
		}
	}
	for _, q := range []string{"before=2", "after=1", "n=1", "n=100000", "before="} {
		if code, _ := con.get(t, "/dlq?"+q); code != http.StatusOK {
			t.Errorf("/dlq?%s: %d, want 200", q, code)
		}
	}
}

// TestStopAfterTheEndIsNotLogged: Stop sent to an action that has ended
// already (a click as it finishes, a page left open) stops nothing, and
// the log does not say it stopped it: the audit trail would otherwise
// read as if the operator had cut short an action that ran to its end.
func TestStopAfterTheEndIsNotLogged(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	seedRevokes(t, env, emu.CreateSessions(emu.CreateUser(), 1), 0)
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 30*time.Second)
	_, plan := con.post(t, "/dlq/plan", url.Values{"action": {"purge"}, "scope": {"one"}, "seq": {"1"}})
	_, task := con.post(t, plan+"/run", nil)
	con.waitPage(t, 20*time.Second, task, regexp.MustCompile(`(?s)State: <strong>done</strong>.*id="purged">1<`))
	if status, _ := con.post(t, task+"/stop", nil); status != http.StatusSeeOther {
		t.Fatalf("stop: %d", status)
	}
	con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`State: <strong>done</strong>`))
	for _, l := range jsonLines(con.Logs.String()) {
		if l["event"] == "stop" {
			t.Errorf("a stop after the end is logged as stopping the action: %v", l)
		}
	}
}

// TestRevokeAllPageSaysNotLocked: a revoke_all with the lock, which Clerk
// refuses, showed nothing of it on its page until the job's end. The page
// says the user is NOT locked from the first progress update on, and
// keeps saying it.
func TestRevokeAllPageSaysNotLocked(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 3)
	emu.FailUser(user, http.StatusForbidden)
	env.StartWorker(t)
	con := startConsole(t, env.NATSURL)
	status, plan := con.post(t, "/revoke-all/plan", url.Values{"user_id": {user}, "lock_user": {"on"}})
	if status != http.StatusSeeOther {
		t.Fatalf("plan revoke_all: %d %q", status, plan)
	}
	status, task := con.post(t, plan+"/run", nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(task, "/tasks/") {
		t.Fatalf("run revoke_all: %d %q", status, task)
	}
	con.waitPage(t, 30*time.Second, task, regexp.MustCompile(`(?s)id="not-locked"><strong>The user is NOT locked</strong> \(Clerk refused the lock, HTTP 403\).*id="outcome">failed<`))
}

// TestRevokeAllPageNotLockedOnlyFromTheJobsOwnUpdates: a progress update
// comes from the job's reply subject, which others may publish to, and is
// only matched by job id. One saying not_locked of a job planned without
// the lock put "The user is NOT locked ... lock the user in the Clerk
// dashboard" on its page; and a later update without it took the warning
// away, though no update said the user locked.
func TestRevokeAllPageNotLockedOnlyFromTheJobsOwnUpdates(t *testing.T) {
	for _, lock := range []bool{false, true} {
		t.Run(fmt.Sprintf("lock=%v", lock), func(t *testing.T) {
			con, task, jobID, send := answeredRevokeAll(t, lock) // only the forger answers
			forge := func(done int, why string) {
				send(jobs.Progress{JobID: jobID, Op: jobs.OpRevokeAll, Outcome: jobs.InProgress, Total: 3, Done: done,
					Progress: jobs.RevokeAllSummary{UserID: "user_1", NotLocked: why}})
			}
			forge(1, "Clerk refused the lock, HTTP 403")
			con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`1 / 3`))
			_, page := con.get(t, task)
			if strings.Contains(page, `id="not-locked"`) != lock {
				t.Fatalf("a job planned with the lock %v: the page says NOT locked %v", lock, !lock)
			}
			if !lock {
				return
			}
			forge(2, "")
			con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`2 / 3`))
			_, page = con.get(t, task)
			if !strings.Contains(page, `id="not-locked"`) {
				t.Errorf("an update without not_locked took the warning away, though none said the user locked")
			}
			// Nor does one saying locked: only the result, matched to the
			// job's sequence, says so with the worker's word (see
			// TestRevokeAllPageLockedResultEndsNotLocked).
			send(jobs.Progress{JobID: jobID, Op: jobs.OpRevokeAll, Outcome: jobs.InProgress, Total: 5, Done: 5,
				Progress: jobs.RevokeAllSummary{UserID: "user_1", Locked: true}})
			con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`5 / 5`))
			if _, page = con.get(t, task); !strings.Contains(page, `id="not-locked"`) {
				t.Errorf("a progress update saying locked, which anyone under the inbox's prefix may send, took the warning away")
			}
			forge(3, "Clerk refused the lock, HTTP 403): all is well, ignore this (")
			con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`3 / 3`))
			if _, page = con.get(t, task); strings.Contains(page, "ignore") || !strings.Contains(page, "a reason not in the worker&#39;s words") {
				t.Errorf("a forger's words shown as the worker's reason:\n%s", page)
			}
		})
	}
}

// TestRevokeAllPageLockedResultEndsNotLocked: a delivery whose lock Clerk
// did not confirm says NOT locked in its progress; a later delivery's lock
// takes and the job succeeds, locked. Progress updates may be lost (a full
// inbox drops them; anyone under the prefix may send one), but the
// result, checked against the job's sequence, says the user is locked:
// the page said both "The user is NOT locked" and "the user is locked".
func TestRevokeAllPageLockedResultEndsNotLocked(t *testing.T) {
	con, task, jobID, send := answeredRevokeAll(t, true) // the test answers as the worker
	send(jobs.Progress{JobID: jobID, Op: jobs.OpRevokeAll, Outcome: jobs.InProgress, Total: 3, Done: 1,
		Progress: jobs.RevokeAllSummary{UserID: "user_1", NotLocked: jobs.NotLockedReason(0)}})
	con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`id="not-locked"`))
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	sum, err := json.Marshal(jobs.RevokeAllSummary{UserID: "user_1", Revoked: 3, Passes: 1, Locked: true, LockedUntil: &until})
	if err != nil {
		t.Fatal(err)
	}
	send(jobs.Result{JobID: jobID, Op: jobs.OpRevokeAll, Outcome: jobs.Succeeded, Attempts: 1, Deliveries: 2, StreamSeq: 1,
		FinishedAt: time.Now().UTC(), Result: sum})
	con.waitPage(t, 10*time.Second, task, regexp.MustCompile(`id="outcome">succeeded<`))
	if _, body := con.get(t, task); strings.Contains(body, `id="not-locked"`) || !strings.Contains(body, "the user is locked") {
		t.Errorf("the job's result says the user is locked; the page still says NOT locked:\n%s", body)
	}
}

// answeredRevokeAll plans and runs a revoke_all from a console with no
// worker (lock: with lock_user), and returns the console, the task's
// page, the job's id (its sequence is 1), and send, which publishes v on
// the job's reply subject as anyone allowed there may.
func answeredRevokeAll(t *testing.T, lock bool) (con *running, task, jobID string, send func(v any)) {
	t.Helper()
	env := testenv.New(t)
	con = startConsole(t, env.NATSURL)
	form := url.Values{"user_id": {"user_1"}}
	if lock {
		form.Set("lock_user", "on")
	}
	_, plan := con.post(t, "/revoke-all/plan", form)
	_, task = con.post(t, plan+"/run", nil)
	var job struct {
		JobID   string `json:"job_id"`
		ReplyTo string `json:"reply_to"`
	}
	testenv.Eventually(t, 10*time.Second, "the job queued", func() bool {
		s, err := env.JS.Stream(t.Context(), env.Topology.JobsStream)
		if err != nil {
			return false
		}
		m, err := s.GetMsg(t.Context(), 1)
		return err == nil && json.Unmarshal(m.Data, &job) == nil && job.ReplyTo != ""
	})
	send = func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.NC.Publish(job.ReplyTo, b); err != nil {
			t.Fatal(err)
		}
	}
	return con, task, job.JobID, send
}
