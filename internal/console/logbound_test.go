package console_test

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRefusalsAreLoggedWithinBounds: what the console logs about a request
// it refuses comes from whoever sent it, before any sign-in. Each field is
// bounded, so that anyone who can reach the port cannot
// write a megabyte into the operators' logs per request.
func TestRefusalsAreLoggedWithinBounds(t *testing.T) {
	env := testenv.New(t)
	long := strings.Repeat("A", 200<<10)
	signedIn := onAllInterfaces(t, env.NATSURL, "--token-file", secretFile(t, "token", goodToken+"\n"))
	open := startConsole(t, env.NATSURL)

	tests := []struct {
		name    string
		con     *running
		method  string
		path    string
		headers map[string]string
		want    string // the log line's message
	}{
		{name: "unauthenticated, long path", con: signedIn, method: http.MethodGet, path: "/dlq/" + long,
			want: "refused an unauthenticated request"},
		{name: "cross-site fetch", con: open, method: http.MethodGet, path: "/dlq/" + long,
			headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": long}, want: "refused a cross-origin request"},
		{name: "cross-origin post", con: open, method: http.MethodPost, path: "/dlq/plan",
			headers: map[string]string{"Origin": "https://" + long, "Sec-Fetch-Site": "same-site"}, want: "refused a cross-origin request"},
		{name: "host that is not loopback", con: open, method: http.MethodGet, path: "/",
			headers: map[string]string{"Host": "evil." + long}, want: "host name that is not loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.con.Logs.String())
			req, err := http.NewRequest(tt.method, tt.con.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("status %d, want a refusal", resp.StatusCode)
			}
			logged := tt.con.Logs.String()[before:]
			found := false
			sc := bufio.NewScanner(strings.NewReader(logged))
			sc.Buffer(nil, 4<<20)
			for sc.Scan() {
				line := sc.Text()
				if len(line) > 4<<10 {
					t.Errorf("a log line of %d bytes: %.200s…", len(line), line)
				}
				found = found || strings.Contains(line, tt.want)
			}
			if !found {
				t.Errorf("no log line says %q:\n%.2000s", tt.want, logged)
			}
		})
	}
}

// TestActionScopeIsLoggedWithinBounds: an action's plan is logged with
// its scope, the filter it was planned from, which the request wrote: a
// "since" given twice, the first one read and every one described, put a
// megabyte form into one log line (as would a thousand codes of a
// kilobyte each).
func TestActionScopeIsLoggedWithinBounds(t *testing.T) {
	env := testenv.New(t)
	// Seeded before the console starts: waitIndexed waits for the
	// letters there at its start, not for one stored after it.
	seed(t, env.JS, 1, func(int) *nats.Msg {
		return deadLetter(env.Topology.Subjects, jobs.OpRevoke, jobs.ClassPermanent, "scope-1", `{"session_id":"sess_1"}`, time.Now())
	})
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 30*time.Second)
	before := len(con.Logs.String())
	form := url.Values{"action": {"purge"}, "scope": {"matching"}, "op": {"revoke"}, "since": {"240h", strings.Repeat("A", 200<<10)}}
	if status, where := con.post(t, "/dlq/plan", form); status != http.StatusSeeOther {
		t.Fatalf("plan: %d %.300s", status, where)
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(con.Logs.String()[before:]))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 4<<10 {
			t.Errorf("a log line of %d bytes: %.200s…", len(line), line)
		}
		found = found || strings.Contains(line, "action planned")
	}
	if !found {
		t.Error("the plan was not logged")
	}
}
