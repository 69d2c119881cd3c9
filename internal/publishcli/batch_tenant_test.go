package publishcli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestTenantBatchSentTwiceIsNotCalledAnotherJobs: a tenant under
// deploy/nats may not read the jobs stream, so a batch sent again (resumed
// within the deduplication window, or run twice) cannot compare its
// duplicates with the jobs stored. Those lines were said to be "taken by
// other jobs", to be sent again with other ids: the same jobs would then
// run twice. They are named as unverified, apart from the lines not
// queued, with what to do in each case.
func TestTenantBatchSentTwiceIsNotCalledAnotherJobs(t *testing.T) {
	url, pw := deployServer(t)

	file := filepath.Join(t.TempDir(), "sessions.ndjson")
	if err := os.WriteFile(file, []byte("{\"session_id\":\"sess_1\"}\n{\"session_id\":\"sess_2\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{url: url}
	env := map[string]string{"NATS_USER": "svc_a", "NATS_PASSWORD": pw["svc_a"]}
	args := []string{"revoke", "--file", file, "--batch-id", "b1", "--tenant", "svc_a", "--json"}
	if r := h.runWith(t, runOpts{env: env}, args...); r.code != 0 {
		t.Fatalf("first run: %v", r)
	}
	r := h.runWith(t, runOpts{env: env}, args...)
	if strings.Contains(r.stderr, "taken by other jobs") || !strings.Contains(r.stderr, "these are its own jobs, queued, and resending them with other ids would run them twice") {
		t.Errorf("second run: %v; want the lines named as unverified, not as taken by other jobs", r)
	}
	var last struct {
		Summary struct {
			NotQueued  []json.RawMessage `json:"not_queued"`
			Unverified []json.RawMessage `json:"unverified"`
		} `json:"summary"`
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("summary: %v\n%v", err, r)
	}
	if len(last.Summary.NotQueued) != 0 || len(last.Summary.Unverified) != 2 {
		t.Errorf("summary not_queued %d, unverified %d; want 0 and 2\n%v", len(last.Summary.NotQueued), len(last.Summary.Unverified), r)
	}
}

// TestTenantJobOverMaxPayload: a tenant's account under deploy/nats takes
// no message larger than the jobs stream does (max_payload 69632, its max
// message size). A job over it (a body under jobs.MaxJobBytes, and a large
// TRACESTATE) was said to need the server's max_payload raised, which
// would only have the jobs stream refuse it instead. (A batch's lines
// carry no TRACESTATE: under a tenant's max_payload they always fit.)
func TestTenantJobOverMaxPayload(t *testing.T) {
	url, pw := deployServer(t)
	var except, state []string
	for i := range 1000 {
		except = append(except, fmt.Sprintf(`"sess_%055d"`, i))
	}
	for i := range 26 {
		state = append(state, fmt.Sprintf("k%02d=%s", i, strings.Repeat("v", 250)))
	}
	line := `{"user_id":"user_big","except_session_ids":[` + strings.Join(except, ",") + "]}\n"
	if len(line) > jobs.MaxJobBytes {
		t.Fatalf("a line of %d bytes: over jobs.MaxJobBytes alone", len(line))
	}
	h := &harness{url: url}
	env := map[string]string{"NATS_USER": "svc_a", "NATS_PASSWORD": pw["svc_a"],
		"TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "TRACESTATE": strings.Join(state, ",")}
	file := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.runWith(t, runOpts{env: env}, "revoke-all", "--file", file, "--tenant", "svc_a")
	if r.code != publishcli.ExitUsage {
		t.Errorf("exit %d, want %d\n%s", r.code, publishcli.ExitUsage, r)
	}
	for _, want := range []string{"it was not sent", fmt.Sprintf("max_payload %d bytes", jobs.MaxJobMessageBytes), "would not help", "less trace baggage"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q\n%s", want, r)
		}
	}
	if strings.Contains(r.stderr, "raise max_payload") || strings.Contains(r.stderr, "raise the server's max_payload") {
		t.Errorf("a tenant is told to raise a limit the jobs stream would refuse the job under anyway\n%s", r)
	}
}
