package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

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
