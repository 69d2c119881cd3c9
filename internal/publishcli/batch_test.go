package publishcli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestBatchStoppedNamesUnqueuedLines: a batch that stopped once hid a line
// whose job id was taken by another job ("3 of 8 jobs were accepted: every
// job before line 5 ... --skip 4"), and the advice skipped it for good.
// Now every exit of a stopped batch names that line and its job id, counts
// the accepted lines from the items, and says the resume skips it.
func TestBatchStoppedNamesUnqueuedLines(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reuse    bool // line 2's id was taken before the batch
		jsonOut  bool
		accepted string
	}{
		{name: "no reuse", accepted: "4 of 8 jobs were accepted (confirmed by JetStream): every job before line 5."},
		{name: "line 2 reused", reuse: true, accepted: "3 of 8 jobs were accepted (confirmed by JetStream): every job before line 5 but line 2 (not queued, below)."},
		{name: "line 2 reused, json", reuse: true, jsonOut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.reuse {
				if r := h.run(t, "revoke", "sess_other", "--job-id", "L-2"); r.code != 0 {
					t.Fatalf("%v", r)
				}
			}
			cfg := h.topo.JobsStreamConfig()
			cfg.MaxMsgs = 4
			if _, err := h.js.UpdateStream(t.Context(), cfg); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i := 1; i <= 8; i++ {
				fmt.Fprintf(&b, `{"session_id":"sess_%d","job_id":"L-%d"}`+"\n", i, i)
			}
			file := writeFile(t, "batch.ndjson", b.String())
			args := []string{"revoke", "--file", file, "--window", "1", "--batch-id", "b"}
			if tc.jsonOut {
				args = append(args, "--json")
			}
			r := h.run(t, args...)
			if r.code != publishcli.ExitPartial {
				t.Fatalf("want exit 5: %v", r)
			}
			want := []string{"stopped at line 5", "--skip 4"}
			if tc.accepted != "" {
				want = append(want, tc.accepted)
			}
			if tc.reuse {
				want = append(want, "line 2 (job L-2)", "That command skips line 2, which was not queued")
			}
			for _, w := range want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
			if tc.jsonOut {
				lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
				var last struct {
					Summary struct {
						Accepted  int `json:"accepted"`
						NotQueued []struct {
							Line  int    `json:"line"`
							JobID string `json:"job_id"`
						} `json:"not_queued"`
					} `json:"summary"`
				}
				mustJSON(t, []byte(lines[len(lines)-1]), &last)
				if s := last.Summary; s.Accepted != 3 || len(s.NotQueued) != 1 || s.NotQueued[0].Line != 2 || s.NotQueued[0].JobID != "L-2" {
					t.Errorf("summary %+v: want 3 accepted and line 2 (L-2) not queued", s)
				}
			}
			// The stream holds what the report says it does.
			var ids []string
			for _, m := range h.jobsMsgs(t) {
				var a jobs.RevokeArgs
				if err := json.Unmarshal(m.Data, &a); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, a.JobID+"="+a.SessionID)
			}
			wantIDs := "[L-1=sess_1 L-2=sess_2 L-3=sess_3 L-4=sess_4]"
			if tc.reuse {
				wantIDs = "[L-2=sess_other L-1=sess_1 L-3=sess_3 L-4=sess_4]"
			}
			if fmt.Sprint(ids) != wantIDs {
				t.Errorf("jobs stream %v, want %s", ids, wantIDs)
			}
		})
	}
}

// TestBatchWaitExitCodes: a batch of duplicates with --wait was never
// waited for and exited 0 ("2 accepted (2 duplicates, not awaited) ... 0
// succeeded"), and a batch with a failed job returned before naming its
// reused lines, exiting 1 instead of 6. Now duplicates are awaited through
// their records, and every branch names the reused lines.
func TestBatchWaitExitCodes(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 2)
	env.StartWorker(t)
	if r := h.run(t, "revoke", sess[1], "--job-id", "taken", "--wait"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	for _, tc := range []struct {
		name   string
		lines  []string
		twice  bool // publish the batch once before, with --wait
		json   bool
		code   int
		stdout []string
		stderr []string
	}{
		{
			name:   "duplicates of jobs that succeeded",
			lines:  []string{`{"session_id":"` + sess[0] + `","job_id":"dup-1"}`, `{"session_id":"` + sess[1] + `","job_id":"dup-2"}`},
			twice:  true,
			stdout: []string{"2 accepted (2 duplicates, awaited through their records), 2 succeeded, 0 failed, 0 without a result"},
		},
		{
			name:   "duplicates, json",
			lines:  []string{`{"session_id":"` + sess[0] + `","job_id":"dupj-1"}`, `{"session_id":"` + sess[1] + `","job_id":"dupj-2"}`},
			twice:  true,
			json:   true,
			stdout: []string{`"duplicates":2`, `"succeeded":2,"failed":0,"no_result":0`},
		},
		{
			name:   "a duplicate of a job that failed",
			lines:  []string{`{"session_id":"sess_missing","job_id":"dupf-1"}`, `{"session_id":"` + sess[0] + `","job_id":"dupf-2"}`},
			twice:  true,
			code:   publishcli.ExitJobFailed,
			stdout: []string{"1 succeeded, 1 failed"},
			stderr: []string{"1 of the jobs failed"},
		},
		{
			name:   "a failed job and a reused line",
			lines:  []string{`{"session_id":"sess_missing","job_id":"f-1"}`, `{"session_id":"` + sess[0] + `","job_id":"taken"}`},
			code:   publishcli.ExitJobIDReused,
			stdout: []string{"0 succeeded, 1 failed"},
			stderr: []string{"1 jobs were not queued", "line 2 (job taken)", "1 of the jobs failed"},
		},
		{
			name:   "a reused line, json",
			lines:  []string{`{"session_id":"` + sess[0] + `","job_id":"ok-1"}`, `{"session_id":"` + sess[0] + `","job_id":"taken"}`},
			json:   true,
			code:   publishcli.ExitJobIDReused,
			stdout: []string{`"not_queued":[{"line":2,"job_id":"taken"}]`},
			stderr: []string{"line 2 (job taken)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "batch.ndjson", strings.Join(tc.lines, "\n")+"\n")
			args := []string{"revoke", "--file", file, "--wait", "--timeout", "20s"}
			if tc.json {
				args = append(args, "--json")
			}
			if tc.twice {
				h.run(t, args...)
			}
			r := h.run(t, args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %v", r.code, tc.code, r)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q: %v", w, r)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
		})
	}
}
