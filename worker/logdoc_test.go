package worker_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestJobLogLineIsTheREADMEs: the README's paragraph on logs names the
// fields of a job's outcome line, which log pipelines and alerts parse.
// Every field of a failed job's line must be named there.
func TestJobLogLineIsTheREADMEs(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, para, ok := strings.Cut(string(b), "Logs are JSON lines")
	if !ok {
		t.Fatal("README: no paragraph on logs")
	}
	para, _, _ = strings.Cut(para, "\n\n")

	env := testenv.New(t)
	env.StartWorker(t)
	if r := request(t, env, &jobs.RevokeArgs{SessionID: "sess_missing"}); r.Outcome != jobs.Failed || r.Error.TraceID == "" {
		t.Fatalf("revoke of a missing session: %+v (want a failure with Clerk's trace id)", r)
	}
	var line map[string]any
	testenv.Eventually(t, 5*time.Second, "the job's log line", func() bool {
		sc := bufio.NewScanner(strings.NewReader(env.Logs.String()))
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["outcome"] == "dead_lettered" {
				line = l
				return true
			}
		}
		return false
	})
	for k := range line {
		switch k {
		case "level", "time", "message", "error":
			continue // every line's, or the text for a person
		}
		if !strings.Contains(para, "`"+k+"`") {
			t.Errorf("a failed job's log line has %q, which the README's paragraph on logs does not name: %v", k, line)
		}
	}
}
