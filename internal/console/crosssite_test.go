package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestOtherSitesAndHugeFilters: a page of another site cannot make a
// browser load the console (an <img> or fetch aimed at a costly filter),
// only open its overview; and a filter of more values or bytes than the
// console accepts is refused with a 400 that says so, before any work.
func TestOtherSitesAndHugeFilters(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	at := time.Now().UTC()
	seed(t, env.JS, 5, func(i int) *nats.Msg {
		id := fmt.Sprintf("job-%d", i)
		return deadLetter(subj, jobs.OpRevoke, jobs.ClassExhausted, id, fmt.Sprintf(`{"job_id":%q,"session_id":"sess_x%d"}`, id, i), at)
	})
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)

	ids := func(n int) string {
		v := make([]string, n)
		for i := range v {
			v[i] = fmt.Sprintf("job-%d", i)
		}
		return url.QueryEscape(strings.Join(v, ","))
	}
	crossImg := map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
	crossNav := map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		want               int
		says               string
	}{
		{"an image from another site", http.MethodGet, "/dlq?job-id=" + ids(3), crossImg, http.StatusForbidden, "came from another site"},
		{"a fetch from another site", http.MethodGet, "/", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, http.StatusForbidden, "came from another site"},
		{"a link from another site to a list", http.MethodGet, "/dlq", crossNav, http.StatusForbidden, "came from another site"},
		{"a link from another site to an entry", http.MethodGet, "/dlq/1", crossNav, http.StatusForbidden, "came from another site"},
		{"a form from another site to the overview", http.MethodPost, "/", crossNav, http.StatusForbidden, "came from another site"},
		{"a link from another site to the overview", http.MethodGet, "/", crossNav, http.StatusOK, "Overview"},
		{"the console's own page", http.MethodGet, "/dlq?job-id=" + ids(3), map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}, http.StatusOK, "<strong>3</strong> match"},
		{"typed in the address bar", http.MethodGet, "/dlq", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, http.StatusOK, "<strong>5</strong> dead letters"},
		{"no fetch metadata (curl)", http.MethodGet, "/dlq/1", nil, http.StatusOK, "Dead letter 1"},
		{"1,000 job ids", http.MethodGet, "/dlq?job-id=" + ids(1000), nil, http.StatusOK, "<strong>5</strong> match"},
		{"1,001 job ids", http.MethodGet, "/dlq?job-id=" + ids(1001), nil, http.StatusBadRequest, "more than 1000 values"},
		{"1,001 values over several filters", http.MethodGet, "/dlq?job-id=" + ids(1000) + "&code=a", nil, http.StatusBadRequest, "more than 1000 values"},
		{"a query over 64 KiB", http.MethodGet, "/dlq?job-id=" + strings.Repeat("x", 70<<10), nil, http.StatusBadRequest, "more than the 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, con.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.says) {
				t.Errorf("%d, want %d saying %q:\n%.2000s", resp.StatusCode, tc.want, tc.says, b)
			}
		})
	}
	// A POST selecting more dead letters than a page can show is refused.
	form := url.Values{"action": {"purge"}, "scope": {"selected"}}
	for i := range 1001 {
		form.Add("seq", fmt.Sprint(i+1))
	}
	if status, _ := con.post(t, "/dlq/plan", form); status != http.StatusBadRequest {
		t.Errorf("1,001 selected: %d, want 400", status)
	}
}
