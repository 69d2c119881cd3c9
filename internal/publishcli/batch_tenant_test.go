package publishcli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
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
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "../../deploy/nats/server.conf")
	wnc, err := natsconn.Options{URL: s.ClientURL(), User: "worker", Password: pw["worker"]}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	js, err := jetstream.New(wnc)
	if err != nil {
		t.Fatal(err)
	}
	// The worker's streams, and no worker: the jobs stay queued.
	if _, err := jobs.DefaultTopology().Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "sessions.ndjson")
	if err := os.WriteFile(file, []byte("{\"session_id\":\"sess_1\"}\n{\"session_id\":\"sess_2\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{url: s.ClientURL()}
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
