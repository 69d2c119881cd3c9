package publishcli_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSubmitEveryJobType publishes each job type from flags and checks the
// stored message: subject, body, and Nats-Msg-Id equal to the job id.
func TestSubmitEveryJobType(t *testing.T) {
	h := newHarness(t)
	expired := writeFile(t, "jwt", "EXPIRED-SECRET\n")
	refresh := writeFile(t, "refresh", "REFRESH-SECRET")
	headers := writeFile(t, "headers", `{"Cookie":"COOKIE-SECRET"}`)
	tests := []struct {
		name    string
		args    []string
		subject string
		want    map[string]any
	}{
		{"list", []string{"list", "--user", "user_1", "--status", "active", "--limit", "100", "--paginated"}, "sessions.list",
			map[string]any{"user_id": "user_1", "status": "active", "limit": 100.0, "paginated": true}},
		{"list by client", []string{"list", "--client", "client_1", "--offset", "5"}, "sessions.list",
			map[string]any{"client_id": "client_1", "offset": 5.0}},
		{"create", []string{"create", "--user", "user_1", "--org", "org_1"}, "sessions.create",
			map[string]any{"user_id": "user_1", "active_organization_id": "org_1"}},
		{"get", []string{"get", "sess_1"}, "sessions.get", map[string]any{"session_id": "sess_1"}},
		{"revoke positional", []string{"revoke", "sess_1"}, "sessions.revoke", map[string]any{"session_id": "sess_1"}},
		{"revoke flag", []string{"revoke", "--session", "sess_2"}, "sessions.revoke", map[string]any{"session_id": "sess_2"}},
		{"token", []string{"token", "sess_1", "--template", "hasura", "--expires-in", "5m", "--reply-to", "svc.inbox.1"}, "sessions.token.request",
			map[string]any{"session_id": "sess_1", "template_name": "hasura", "expires_in_seconds": 300.0, "reply_to": "svc.inbox.1"}},
		{"token seconds", []string{"token", "sess_1", "--expires-in", "60", "--reply-to", "svc.inbox.1"}, "sessions.token.request",
			map[string]any{"session_id": "sess_1", "expires_in_seconds": 60.0, "reply_to": "svc.inbox.1"}},
		{"refresh", []string{"refresh", "sess_1", "--origin", "https://app.example.com", "--expired-token-file", expired,
			"--refresh-token-file", refresh, "--headers-file", headers, "--format", "cookie", "--reply-to", "svc.inbox.2"}, "sessions.refresh",
			map[string]any{"session_id": "sess_1", "request_origin": "https://app.example.com", "expired_token": "EXPIRED-SECRET",
				"refresh_token": "REFRESH-SECRET", "request_headers": map[string]any{"Cookie": "COOKIE-SECRET"}, "format": "cookie", "reply_to": "svc.inbox.2"}},
		{"revoke-all", []string{"revoke-all", "--user", "user_1", "--except", "sess_a,sess_b", "--except", "sess_c"}, "sessions.revoke_all",
			map[string]any{"user_id": "user_1", "except_session_ids": []any{"sess_a", "sess_b", "sess_c"}}},
		{"revoke-all with lock", []string{"revoke-all", "--user", "user_1", "--lock"}, "sessions.revoke_all",
			map[string]any{"user_id": "user_1", "lock_user": true}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobID := fmt.Sprintf("job-%d", i)
			r := h.run(t, append(tt.args, "--job-id", jobID, "--json")...)
			if r.code != publishcli.ExitOK {
				t.Fatalf("%v", r)
			}
			for _, secret := range []string{"EXPIRED-SECRET", "REFRESH-SECRET", "COOKIE-SECRET"} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Fatalf("output shows a secret: %v", r)
				}
			}
			var acc struct {
				JobID     string `json:"job_id"`
				Subject   string `json:"subject"`
				Stream    string `json:"stream"`
				Seq       uint64 `json:"seq"`
				Duplicate bool   `json:"duplicate"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &acc); err != nil {
				t.Fatalf("output is not JSON: %v", r)
			}
			if acc.JobID != jobID || acc.Subject != tt.subject || acc.Stream != "SESSION_JOBS" || acc.Duplicate {
				t.Fatalf("printed %+v", acc)
			}
			s, _ := h.js.Stream(t.Context(), h.topo.JobsStream)
			m, err := s.GetMsg(t.Context(), acc.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject || m.Header.Get(jetstream.MsgIDHeader) != jobID {
				t.Fatalf("stored on %s with headers %v", m.Subject, m.Header)
			}
			var body map[string]any
			if err := json.Unmarshal(m.Data, &body); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"job_id": jobID}
			for k, v := range tt.want {
				want[k] = v
			}
			if !reflect.DeepEqual(body, want) {
				t.Fatalf("stored body %v, want %v", body, want)
			}
		})
	}

	// Human output names the job and the sequence; publishing the same
	// job id again says duplicate.
	r := h.run(t, "revoke", "sess_9", "--job-id", "again")
	if r.code != 0 || !strings.Contains(r.stdout, "job again queued on sessions.revoke (stream SESSION_JOBS, seq") {
		t.Fatalf("%v", r)
	}
	r = h.run(t, "revoke", "sess_9", "--job-id", "again")
	if r.code != 0 || !strings.Contains(r.stdout, "already in stream SESSION_JOBS") {
		t.Fatalf("%v", r)
	}
	// Without --job-id, a fresh id.
	r = h.run(t, "revoke", "sess_9", "--json")
	var acc struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &acc); r.code != 0 || err != nil || len(acc.JobID) < 10 {
		t.Fatalf("%v", r)
	}
}

// TestSubmitFromFile reads one JSON body, from a file and from stdin,
// pretty-printed over several lines.
func TestSubmitFromFile(t *testing.T) {
	h := newHarness(t)
	body := "{\n  \"session_id\": \"sess_1\",\n  \"job_id\": \"from-file\"\n}\n"
	r := h.run(t, "revoke", "--file", writeFile(t, "job.json", body))
	if r.code != 0 || !strings.Contains(r.stdout, "job from-file queued") {
		t.Fatalf("%v", r)
	}
	r = h.runWith(t, runOpts{stdin: `{"session_id":"sess_2"}`}, "get", "--file", "-", "--job-id", "from-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "job from-stdin queued on sessions.get") {
		t.Fatalf("%v", r)
	}
	msgs := h.jobsMsgs(t)
	if len(msgs) != 2 || msgs[1].Header.Get(jetstream.MsgIDHeader) != "from-stdin" {
		t.Fatalf("jobs stream: %d messages", len(msgs))
	}
}

// TestSubmitInvalid checks that bad input is refused with exit status 2, a
// message that names the field (and line), and nothing published.
func TestSubmitInvalid(t *testing.T) {
	h := newHarness(t)
	batch := writeFile(t, "batch.ndjson", `{"session_id":"sess_1"}
{"session_id":"nope"}

{"session_id":"sess_3","colour":"red"}
not json
{"session_id":"sess_5"}
`)
	dups := writeFile(t, "dups.ndjson", `{"session_id":"sess_1","job_id":"a"}
{"session_id":"sess_2","job_id":"a"}
`)
	tokens := writeFile(t, "tokens.ndjson", `{"session_id":"sess_1"}
`)
	withReply := writeFile(t, "reply.json", `{"session_id":"sess_1","reply_to":"svc.x"}`)
	// Job ids shaped like a secret fit the job id pattern; they are refused
	// and never repeated (the check after the table).
	key := "sk_" + "live_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
	jwt := "eyJ" + "hbGc.eyJz.c2lnbmF0dXJl"
	keyInBody := writeFile(t, "key.json", `{"session_id":"sess_1","job_id":"`+key+`"}`)
	keysInBatch := writeFile(t, "keys.ndjson", `{"session_id":"sess_1","job_id":"`+key+`"}
{"session_id":"sess_2","job_id":"`+jwt+`"}
`)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"bad session", "", []string{"revoke", "sess-1"}, []string{"--session (or the SESSION argument)", "does not match the pattern"}},
		{"missing session", "", []string{"get"}, []string{"--session", "required field is missing"}},
		{"list needs user or client", "", []string{"list", "--status", "active"}, []string{"invalid list job"}},
		{"bad status", "", []string{"list", "--user", "user_1", "--status", "gone"}, []string{"--status"}},
		{"limit too big", "", []string{"list", "--user", "user_1", "--limit", "501"}, []string{"--limit"}},
		{"bad --except id", "", []string{"revoke-all", "--user", "user_1", "--except", "sess_1,user_2"}, []string{"--except", "does not match the pattern"}},
		{"expires too short", "", []string{"token", "sess_1", "--expires-in", "5s", "--wait"}, []string{"--expires-in"}},
		{"token without wait", "", []string{"token", "sess_1"}, []string{"add --wait"}},
		{"refresh without wait", "", []string{"refresh", "sess_1"}, []string{"add --wait"}},
		{"argument and flag disagree", "", []string{"revoke", "sess_1", "--session", "sess_2"}, []string{"disagree"}},
		{"flags with file", "", []string{"revoke", "sess_1", "--file", batch}, []string{"cannot be combined with --file"}},
		{"batch lines", "", []string{"revoke", "--file", batch}, []string{
			"3 of 5 jobs in", "line 2: /session_id:", "line 4: /colour: unknown field", "line 5: body is not JSON", "nothing was published", "schemas/revoke.json"}},
		{"duplicate ids", "", []string{"revoke", "--file", dups}, []string{"line 2:", `job_id "a" is also on line 1`}},
		{"batch token without wait", "", []string{"token", "--file", tokens}, []string{"line 1: /reply_to: required field is missing", "use --wait"}},
		{"wait and body reply_to", "", []string{"revoke", "--file", withReply, "--wait"}, []string{"sets reply_to", "--wait"}},
		{"reply-to under prefix", "", []string{"revoke", "sess_1", "--reply-to", "sessions.mine"}, []string{"under the subject prefix"}},
		{"job id in batch", "", []string{"revoke", "--file", batch, "--job-id", "x"}, []string{"--job-id names a single job"}},
		{"empty stdin", "", []string{"revoke", "--file", "-"}, []string{"no jobs in standard input"}},
		{"unknown flag", "", []string{"revoke", "sess_1", "--nope"}, []string{"unknown flag"}},
		{"unknown command", "", []string{"revok"}, []string{"unknown command"}},
		{"bad job id", "", []string{"revoke", "sess_1", "--job-id", "has space"}, []string{"job_id"}},
		{"key as --job-id", "", []string{"revoke", "sess_1", "--job-id", key}, []string{"job_id", "shaped like a secret"}},
		{"JWT as --job-id", "", []string{"token", "sess_1", "--wait", "--job-id", jwt}, []string{"job_id", "shaped like a secret"}},
		{"key as the body's job_id", "", []string{"revoke", "--file", keyInBody}, []string{"job_id", "shaped like a secret"}},
		{"keys as job ids in a batch", "", []string{"revoke", "--file", keysInBatch}, []string{"line 1: /job_id", "line 2: /job_id", "shaped like a secret"}},
		{"key as job_id beside --job-id", "", []string{"revoke", "--file", keyInBody, "--job-id", "x"}, []string{"differs from --job-id", "unusable id of 48 characters"}},
		{"key as --job-id beside job_id", "", []string{"revoke", "--file", withReply, "--job-id", key}, []string{"shaped like a secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.runWith(t, runOpts{stdin: tt.stdin}, tt.args...)
			if r.code != publishcli.ExitUsage {
				t.Fatalf("want exit 2: %v", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
			if strings.Contains(r.stdout+r.stderr, key) || strings.Contains(r.stdout+r.stderr, jwt) {
				t.Errorf("the output repeats a secret-shaped job id")
			}
		})
	}
	if n := len(h.jobsMsgs(t)); n != 0 {
		t.Fatalf("invalid input published %d jobs", n)
	}
}

// TestBatch publishes NDJSON through a small window.
func TestBatch(t *testing.T) {
	h := newHarness(t)
	const n = 300
	var b strings.Builder
	for i := range n {
		if i == 10 {
			b.WriteString("\n") // blank lines are skipped, and still counted
		}
		fmt.Fprintf(&b, `{"session_id":"sess_%d"}`+"\n", i)
	}
	file := writeFile(t, "batch.ndjson", b.String())
	r := h.run(t, "revoke", "--file", file, "--window", "16", "--batch-id", "b1", "--json")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != n+1 || !strings.Contains(lines[n], `"accepted":300`) {
		t.Fatalf("want %d job lines and a summary: %v", n, r)
	}
	msgs := h.jobsMsgs(t)
	if len(msgs) != n {
		t.Fatalf("jobs stream has %d messages, want %d", len(msgs), n)
	}
	// Job ids are <batch id>-<line>: line 12 is sess_10, after the blank.
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.Header.Get(jetstream.MsgIDHeader)] = true
	}
	if !ids["b1-1"] || !ids["b1-12"] || ids["b1-11"] || len(ids) != n {
		t.Fatalf("job ids: %d distinct, b1-1 %v, b1-12 %v, b1-11 %v", len(ids), ids["b1-1"], ids["b1-12"], ids["b1-11"])
	}
	// The same batch again is deduplicated, and says so.
	r = h.run(t, "revoke", "--file", file, "--batch-id", "b1")
	if r.code != 0 || !strings.Contains(r.stdout, "300 accepted (300 duplicates") {
		t.Fatalf("%v", r)
	}
	if n2 := len(h.jobsMsgs(t)); n2 != n {
		t.Fatalf("jobs stream has %d messages after a duplicate batch", n2)
	}
}

// TestBatchStops fills the jobs stream mid-batch: publishing stops, says
// exactly how many were accepted and how to continue; continuing as told
// completes the batch with every job exactly once.
func TestBatchStops(t *testing.T) {
	h := newHarness(t)
	const n, room = 200, 120
	h.roomForJobs(t, room)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"session_id":"sess_%d"}`+"\n", i)
	}
	file := writeFile(t, "batch.ndjson", b.String())
	r := h.run(t, "revoke", "--file", file, "--window", "8")
	if r.code != publishcli.ExitPartial {
		t.Fatalf("want exit 5: %v", r)
	}
	want := fmt.Sprintf("%d of %d jobs were accepted", room, n)
	resume := fmt.Sprintf("--skip %d --batch-id ", room)
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, resume) || !strings.Contains(r.stderr, fmt.Sprintf("stopped at line %d", room+1)) {
		t.Fatalf("stderr lacks %q or %q: %v", want, resume, r)
	}
	if got := len(h.jobsMsgs(t)); got != room {
		t.Fatalf("jobs stream has %d, want %d", got, room)
	}
	// The command it suggests, once there is room.
	i := strings.Index(r.stderr, "To continue: publish ")
	cmdline := strings.Fields(strings.SplitN(r.stderr[i+len("To continue: publish "):], "\n", 2)[0])
	h.roomForJobs(t, -1)
	r = h.run(t, cmdline...)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d accepted", n-room)) {
		t.Fatalf("continuing with %v: %v", cmdline, r)
	}
	seen := map[string]int{}
	for _, m := range h.jobsMsgs(t) {
		var body jobs.RevokeArgs
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatal(err)
		}
		seen[body.SessionID]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct jobs, want %d", len(seen), n)
	}
	for s, c := range seen {
		if c != 1 {
			t.Fatalf("%s published %d times", s, c)
		}
	}
}

func TestConnectionErrors(t *testing.T) {
	h := newHarness(t)
	r := h.runWith(t, runOpts{env: map[string]string{"NATS_URL": "nats://bob:s3cret@127.0.0.1:1"}}, "revoke", "sess_1")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "127.0.0.1:1") || !strings.Contains(r.stderr, "go run ./cmd/worker") || strings.Contains(r.stderr, "s3cret") {
		t.Fatalf("%v", r)
	}
	// --server wins over NATS_URL.
	r = h.runWith(t, runOpts{env: map[string]string{"NATS_URL": "nats://127.0.0.1:1"}}, "revoke", "sess_1", "--server", h.url)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	// A prefix no stream captures.
	r = h.run(t, "revoke", "sess_1", "--prefix", "elsewhere")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "no JetStream stream stores elsewhere.revoke") {
		t.Fatalf("%v", r)
	}
	// The worker's variable names work too.
	r = h.runWith(t, runOpts{env: map[string]string{"WORKER_SUBJECT_PREFIX": "elsewhere"}}, "revoke", "sess_1")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "elsewhere.revoke") {
		t.Fatalf("%v", r)
	}
	r = h.run(t, "dlq", "list", "--dlq-stream", "NOPE")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "stream NOPE does not exist") {
		t.Fatalf("%v", r)
	}
	r = h.run(t, "revoke", "sess_1", "--creds", "/does/not/exist")
	if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "credentials file") {
		t.Fatalf("%v", r)
	}
}

// TestJobIDReused: "revoke-all --user A --job-id incident-77" then "--user
// B --job-id incident-77" once said "duplicate, not queued again" and
// exited 0 with user B's sessions left active. Now the second exits 6 and
// says the job was not queued; the same job twice stays exit 0.
func TestJobIDReused(t *testing.T) {
	h := newHarness(t)
	if r := h.run(t, "revoke-all", "--user", "user_A", "--job-id", "incident-77"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if r := h.run(t, "revoke-all", "--user", "user_A", "--job-id", "incident-77"); r.code != 0 || !strings.Contains(r.stdout, "is a duplicate") {
		t.Fatalf("the same job again: %v", r)
	}
	r := h.run(t, "revoke-all", "--user", "user_B", "--job-id", "incident-77")
	if r.code != publishcli.ExitJobIDReused || !strings.Contains(r.stderr, "incident-77 is already used by a different job") || !strings.Contains(r.stderr, "not queued") {
		t.Fatalf("another job under the same id: want exit 6: %v", r)
	}
	r = h.run(t, "revoke-all", "--user", "user_B", "--job-id", "incident-77", "--wait", "--timeout", "1s")
	if r.code != publishcli.ExitJobIDReused {
		t.Fatalf("another job under the same id, with --wait: want exit 6: %v", r)
	}
	// In a batch: the other lines are queued, the reused one is named.
	file := writeFile(t, "batch.ndjson", "{\"user_id\":\"user_C\",\"job_id\":\"c-1\"}\n{\"user_id\":\"user_D\",\"job_id\":\"incident-77\"}\n")
	r = h.run(t, "revoke-all", "--file", file)
	if r.code != publishcli.ExitJobIDReused || !strings.Contains(r.stderr, "1 jobs were not queued") || !strings.Contains(r.stderr, "line 2 (job incident-77):") {
		t.Fatalf("a batch with a reused id: want exit 6 naming line 2: %v", r)
	}
	var users []string
	for _, m := range h.jobsMsgs(t) {
		var a jobs.RevokeAllArgs
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		users = append(users, a.UserID)
	}
	if fmt.Sprint(users) != "[user_A user_C]" {
		t.Errorf("jobs stream holds the jobs of %v; want user_A's and user_C's", users)
	}
}

// TestTenant publishes as a tenant: its subjects, its Nats-Msg-Id
// namespace, and inboxes under _INBOX.<tenant> by default.
func TestTenant(t *testing.T) {
	h := newHarness(t)
	fakeWorker(t, h)
	r := h.run(t, "--tenant", "svc_a", "revoke", "sess_1", "--job-id", "incident-77", "--json")
	var acc struct {
		Subject   string `json:"subject"`
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &acc); r.code != 0 || err != nil || acc.Subject != "sessions.tenant.svc_a.revoke" {
		t.Fatalf("%v", r)
	}
	// Another tenant's incident-77 is a job of its own (the variable works
	// as the flag does).
	r = h.runWith(t, runOpts{env: map[string]string{"CLERKJOBS_TENANT": "svc_b"}}, "revoke", "sess_1", "--job-id", "incident-77")
	if r.code != 0 || !strings.Contains(r.stdout, "queued on sessions.tenant.svc_b.revoke") {
		t.Fatalf("%v", r)
	}
	msgs := h.jobsMsgs(t)
	if len(msgs) != 2 || msgs[0].Header.Get(jetstream.MsgIDHeader) != "svc_a:incident-77" || msgs[1].Header.Get(jetstream.MsgIDHeader) != "svc_b:incident-77" {
		t.Fatalf("jobs stream: %d messages", len(msgs))
	}
	// --wait: the reply inbox is under _INBOX.svc_a.
	r = h.run(t, "--tenant", "svc_a", "get", "sess_2", "--wait", "--json")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	msgs = h.jobsMsgs(t)
	var stored jobs.GetArgs
	if err := json.Unmarshal(msgs[len(msgs)-1].Data, &stored); err != nil || !strings.HasPrefix(stored.ReplyTo, "_INBOX.svc_a.") {
		t.Fatalf("stored job %s", msgs[len(msgs)-1].Data)
	}
	r = h.run(t, "--tenant", "svc a", "revoke", "sess_1")
	if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "tenant") {
		t.Fatalf("a bad tenant: %v", r)
	}
}

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
			h.roomForJobs(t, 4)
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
				testenv.DecodeJSON(t, []byte(lines[len(lines)-1]), &last)
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
		op     string // default revoke
		lines  []string
		twice  bool // publish the batch once before, with --wait
		json   bool
		code   int
		stdout []string
		stderr []string
	}{
		{
			// Their tokens went to the first publish: no token here is not
			// a success (as for one job).
			name:   "duplicates of token jobs",
			op:     "token",
			lines:  []string{`{"session_id":"` + sess[0] + `","job_id":"tokdup-1"}`, `{"session_id":"` + sess[0] + `","job_id":"tokdup-2"}`},
			twice:  true,
			code:   publishcli.ExitJobIDReused,
			stderr: []string{"2 token jobs had been requested before", "request new ones with other job ids"},
		},
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
			op := cmp.Or(tc.op, "revoke")
			args := []string{op, "--file", file, "--wait", "--timeout", "20s"}
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

// TestBatchLooksUpLostAnswers: an answer is sent once, so it can be lost; a
// batch whose answers did not come looks up the jobs' records before it
// says they had no result. A token job found so succeeded, but its token
// existed only in the lost answer: that is no success.
func TestBatchLooksUpLostAnswers(t *testing.T) {
	for _, tc := range []struct {
		op, line string
		code     int
		stdout   string
		stderr   string
	}{
		{"revoke", `{"session_id":"sess_lost%d"}`, 0, "2 accepted, 2 succeeded, 0 failed, 0 without a result", ""},
		{"token", `{"session_id":"sess_lost%d"}`, publishcli.ExitTimeout, "2 accepted, 2 succeeded, 0 failed, 0 without a result",
			"2 token jobs succeeded, but their answers, the only copies of their secrets, never came"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			h := newHarness(t)
			file := writeFile(t, "batch.ndjson", fmt.Sprintf(tc.line+"\n"+tc.line+"\n", 1, 2))
			done := make(chan result, 1)
			go func() { done <- h.run(t, tc.op, "--file", file, "--wait", "--timeout", "2s") }()
			// A worker that stores the jobs' records and whose answers are
			// lost.
			msgs := h.waitJobs(t, 2)
			for _, m := range msgs {
				id := m.Header.Get(jetstream.MsgIDHeader)
				rec, err := json.Marshal(jobs.Result{JobID: id, Op: jobs.Op(tc.op), Outcome: jobs.Succeeded, StreamSeq: m.Sequence, FinishedAt: time.Now()})
				if err != nil {
					t.Fatal(err)
				}
				key := jobs.RecordKey{Op: jobs.Op(tc.op), JobID: id, Gen: "0", Seq: m.Sequence}
				out := nats.NewMsg(h.topo.Subjects.Result(key))
				out.Header.Set(jobs.HeaderJobDigest, jobs.Digest(m.Subject, m.Data))
				out.Data = rec
				if _, err := h.js.PublishMsg(t.Context(), out); err != nil {
					t.Fatal(err)
				}
			}
			r := <-done
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stdout, "its record)") || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("want exit %d, %q and %q: %v", tc.code, tc.stdout, tc.stderr, r)
			}
		})
	}
}

// TestBatchWaitTakesASecondAnswer: two deliveries of a job that ran at
// once both answer, the dead letter's failure first perhaps, and the
// result wins (the letter is deleted). The batch counted the second answer
// as a stranger's ("not the answer of a job of this batch ... or forged")
// and reported the job failed, exit 1.
func TestBatchWaitTakesASecondAnswer(t *testing.T) {
	failed := jobs.Result{Outcome: jobs.Failed, Error: &jobs.ErrorInfo{Class: jobs.ClassExhausted, Message: "Clerk failed"}}
	succeeded := jobs.Result{Outcome: jobs.Succeeded}
	for _, tc := range []struct {
		name    string
		answers [][2]any // the line's job (0 or 1), and its answer
		code    int
		stdout  []string
		stderr  string
	}{
		{"a failure, then the result that won", [][2]any{{0, failed}, {0, succeeded}, {1, succeeded}}, 0,
			[]string{"2 succeeded, 0 failed", "a second answer: another delivery of the job stored its result"}, ""},
		{"a result, then a failure that lost", [][2]any{{0, succeeded}, {0, failed}, {1, succeeded}}, 0,
			[]string{"2 succeeded, 0 failed"}, "1 second answer of jobs of this batch read and set aside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			file := writeFile(t, "batch.ndjson", `{"session_id":"sess_twice1"}`+"\n"+`{"session_id":"sess_twice2"}`+"\n")
			done := make(chan result, 1)
			go func() { done <- h.run(t, "revoke", "--file", file, "--wait", "--timeout", "5s") }()
			msgs := h.waitJobs(t, 2)
			// The worker's answers, in order on one connection.
			for _, a := range tc.answers {
				m := msgs[a[0].(int)]
				res := a[1].(jobs.Result)
				res.JobID, res.Op, res.StreamSeq, res.FinishedAt = m.Header.Get(jetstream.MsgIDHeader), jobs.OpRevoke, m.Sequence, time.Now()
				answerAsTheWorker(t, h, m, res)
			}
			r := <-done
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %v", r.code, tc.code, r)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q: %v", w, r)
				}
			}
			if !strings.Contains(r.stderr, tc.stderr) || strings.Contains(r.stderr, "ignored") {
				t.Errorf("stderr: want %q and nothing ignored: %v", tc.stderr, r)
			}
		})
	}
}

// TestBatchWaitLooksUpAFailedJobsResult: a job's result wins over its
// dead letter, but the second delivery that stored it may answer after the
// batch read its last awaited answer: the batch reported such a job failed
// (exit 1, "in the dead-letter queue") while its dead letter had given way
// to its result. A job whose answer was a failure is looked up before it
// is counted failed; a token job found so succeeded, but its secret came
// only in the answer not read.
func TestBatchWaitLooksUpAFailedJobsResult(t *testing.T) {
	for _, tc := range []struct {
		op      string
		answers []jobs.Outcome // per line: its answer
		stored  []bool         // per line: a result stored by another delivery
		code    int
		stdout  []string
		stderr  string
	}{
		{"revoke", []jobs.Outcome{jobs.Failed, jobs.Succeeded}, []bool{true, false}, 0, []string{"2 succeeded, 0 failed", "wins over its dead letter"}, ""},
		{"token", []jobs.Outcome{jobs.Failed, jobs.Failed}, []bool{true, false}, publishcli.ExitJobFailed, []string{"1 succeeded, 1 failed"},
			"1 token job succeeded, but their answers, the only copies of their secrets, never came"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			h := newHarness(t)
			file := writeFile(t, "batch.ndjson", `{"session_id":"sess_late1"}`+"\n"+`{"session_id":"sess_late2"}`+"\n")
			done := make(chan result, 1)
			go func() { done <- h.run(t, tc.op, "--file", file, "--wait", "--timeout", "5s") }()
			msgs := h.waitJobs(t, 2)
			for i, m := range msgs {
				id := m.Header.Get(jetstream.MsgIDHeader)
				if tc.stored[i] {
					// Another delivery of the job succeeded: its result is
					// stored, its answer is not read by the batch.
					rec, err := json.Marshal(jobs.Result{JobID: id, Op: jobs.Op(tc.op), Outcome: jobs.Succeeded, StreamSeq: m.Sequence, FinishedAt: time.Now()})
					if err != nil {
						t.Fatal(err)
					}
					out := nats.NewMsg(h.topo.Subjects.Result(jobs.RecordKey{Op: jobs.Op(tc.op), JobID: id, Gen: "0", Seq: m.Sequence}))
					out.Header.Set(jobs.HeaderJobDigest, jobs.Digest(m.Subject, m.Data))
					out.Data = rec
					if _, err := h.js.PublishMsg(t.Context(), out); err != nil {
						t.Fatal(err)
					}
				}
				answer := jobs.Result{JobID: id, Op: jobs.Op(tc.op), StreamSeq: m.Sequence, FinishedAt: time.Now(), Outcome: tc.answers[i]}
				if answer.Outcome == jobs.Failed {
					answer.Error = &jobs.ErrorInfo{Class: jobs.ClassExhausted, Message: "Clerk failed"}
				}
				answerAsTheWorker(t, h, m, answer)
			}
			r := <-done
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %v", r.code, tc.code, r)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q: %v", w, r)
				}
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr lacks %q: %v", tc.stderr, r)
			}
		})
	}
}

// TestBatchResumeKeepsWhatTheJobsAre: the command a stopped batch printed
// to continue it named --file, --skip, --batch-id and --wait only. A batch
// published with --tenant and --reply-to, continued with that command, put
// its remaining jobs outside the tenant (another subject, another
// Nats-Msg-Id, records another service's Wait never finds) and without
// their reply_to (answers the listening service never gets). The command
// now repeats every flag that decides what is published.
func TestBatchResumeKeepsWhatTheJobsAre(t *testing.T) {
	h := newHarness(t)
	h.roomForJobs(t, 4)
	var b strings.Builder
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, `{"session_id":"sess_%d"}`+"\n", i)
	}
	file := writeFile(t, "batch.ndjson", b.String())
	const reply = "_INBOX.svc_a.listener"
	r := h.run(t, "revoke", "--file", file, "--window", "1", "--tenant", "svc_a", "--reply-to", reply)
	if r.code != publishcli.ExitPartial {
		t.Fatalf("want exit 5: %v", r)
	}
	i := strings.Index(r.stderr, "To continue: publish ")
	if i < 0 {
		t.Fatalf("no command to continue: %v", r)
	}
	cmdline := strings.Fields(strings.SplitN(r.stderr[i+len("To continue: publish "):], "\n", 2)[0])
	h.roomForJobs(t, -1)
	if r := h.run(t, cmdline...); r.code != 0 {
		t.Fatalf("continuing with %v: %v", cmdline, r)
	}
	msgs := h.jobsMsgs(t)
	if len(msgs) != 8 {
		t.Errorf("jobs stream holds %d jobs, want 8", len(msgs))
	}
	for _, m := range msgs {
		var a jobs.RevokeArgs
		testenv.DecodeJSON(t, m.Data, &a)
		if m.Subject != "sessions.tenant.svc_a.revoke" || a.ReplyTo != reply {
			t.Errorf("job %s (%s) on %s with reply_to %q; want the tenant's subject and %s (continued with %v)", a.JobID, a.SessionID, m.Subject, a.ReplyTo, reply, cmdline)
		}
	}
}

// TestSubmitRefusesAMemberGivenTwice: the contract refuses a job that
// names a member twice (readers disagree on which value counts), and
// jobs.Decode does; but the command read each body into a map to set its
// job id and reply_to, and published the map: the last value, silently
// ({"session_id":"sess_a","session_id":"sess_b"} revoked sess_b, exit 0).
func TestSubmitRefusesAMemberGivenTwice(t *testing.T) {
	h := newHarness(t)
	twice := `{"session_id":"sess_a","session_id":"sess_b"}`
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"batch", []string{"revoke", "--file", writeFile(t, "b.ndjson", twice+"\n"+`{"session_id":"sess_2"}`+"\n")}},
		{"single", []string{"revoke", "--file", writeFile(t, "s.json", twice)}},
		{"single with --job-id", []string{"revoke", "--file", writeFile(t, "s.json", twice), "--job-id", "x"}},
		{"single with --wait", []string{"revoke", "--file", writeFile(t, "s.json", twice), "--wait", "--timeout", "1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run(t, tc.args...)
			if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "/session_id") || !strings.Contains(r.stderr, "more than once") {
				t.Errorf("want exit 2 naming /session_id given more than once: %v", r)
			}
		})
	}
	if n := len(h.jobsMsgs(t)); n != 0 {
		t.Fatalf("published %d jobs", n)
	}
}

// TestSubmitFileWithByteOrderMark: a file saved with a UTF-8 byte order
// mark (Windows editors, PowerShell's Out-File) was refused as "line 1:
// body is not JSON: invalid character 'ï' looking for beginning of value",
// which names neither the cause nor the fix; a pretty-printed single job
// was read as NDJSON, each of its lines invalid. The mark is not content
// (RFC 8259 lets a reader ignore it): it is skipped.
func TestSubmitFileWithByteOrderMark(t *testing.T) {
	h := newHarness(t)
	const bom = "\ufeff"
	batch := writeFile(t, "b.ndjson", bom+`{"session_id":"sess_1"}`+"\r\n"+`{"session_id":"sess_2"}`+"\r\n")
	if r := h.run(t, "revoke", "--file", batch); r.code != 0 || !strings.Contains(r.stdout, "2 accepted") {
		t.Errorf("batch with a BOM: %v", r)
	}
	single := writeFile(t, "s.json", bom+"{\n  \"session_id\": \"sess_3\"\n}\n")
	if r := h.run(t, "revoke", "--file", single, "--job-id", "bom-single"); r.code != 0 || !strings.Contains(r.stdout, "job bom-single queued") {
		t.Errorf("single job with a BOM: %v", r)
	}
	if n := len(h.jobsMsgs(t)); n != 3 {
		t.Errorf("jobs stream holds %d jobs, want 3", n)
	}
}

// TestBatchWaitLooksUpDuplicatesAfterTheTimeout: a batch with --wait awaits
// the answers of its new jobs first, then the records of its duplicates,
// on the same deadline. When a new job had no answer by --timeout, the
// duplicates were never looked up: a duplicate of a job that had failed
// long before was reported "without a result" and the batch exited 3, its
// failure (exit 1, which wins over 3) unsaid. Their records are now looked
// up once the wait is over, as those of the new jobs are.
func TestBatchWaitLooksUpDuplicatesAfterTheTimeout(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)
	w := env.StartWorker(t)
	failed := `{"session_id":"sess_missing","job_id":"gone-1"}`
	if r := h.run(t, "revoke", "--file", writeFile(t, "f.json", failed), "--wait"); r.code != publishcli.ExitJobFailed {
		t.Fatalf("%v", r)
	}
	w.Stop(t) // the new job below gets no answer
	file := writeFile(t, "batch.ndjson", failed+"\n"+`{"session_id":"`+sess[0]+`","job_id":"new-2"}`+"\n")
	r := h.run(t, "revoke", "--file", file, "--wait", "--timeout", "1s")
	if r.code != publishcli.ExitJobFailed || !strings.Contains(r.stdout, "job gone-1: failed") || !strings.Contains(r.stdout, "0 succeeded, 1 failed, 1 without a result") {
		t.Fatalf("want exit 1, gone-1 failed and new-2 without a result: %v", r)
	}
}

// TestBadNKeySeedFile: a --nats-nkey file that holds no seed was reported
// as "NKey seed file: illegal base32 data at input byte 58" with exit 4
// (NATS unavailable), naming neither the flag nor the file: it is bad
// input, exit 2, and the message says which setting and file.
func TestBadNKeySeedFile(t *testing.T) {
	h := newHarness(t)
	seed := "SU" + "AIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTBM" // a seed's shape, split so no scanner takes it for one
	for name, content := range map[string]string{"corrupt": seed + "x\n", "no seed": "hello\n"} {
		t.Run(name, func(t *testing.T) {
			file := writeFile(t, "user.nk", content)
			r := h.run(t, "revoke", "sess_1", "--nats-nkey", file)
			if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--nats-nkey") || !strings.Contains(r.stderr, file) || strings.Contains(r.stderr, seed[:12]) {
				t.Errorf("want exit 2 naming --nats-nkey and %s, not the seed: %v", file, r)
			}
		})
	}
	if n := len(h.jobsMsgs(t)); n != 0 {
		t.Fatalf("published %d jobs", n)
	}
}

// TestBadBatchIDIsNamed: a batch's lines without job_id get the job ids
// <batch-id>-<line>. A --batch-id that cannot make job ids (a space, too
// long, shaped like a secret) was reported as every line of the file
// being invalid ("line 1: /job_id: ...; Fix them (schemas/revoke.json
// describes a revoke job)"), sending the operator to a file with nothing
// wrong in it. The flag is now named, once, with what it must be.
func TestBadBatchIDIsNamed(t *testing.T) {
	h := newHarness(t)
	file := writeFile(t, "batch.ndjson", `{"session_id":"sess_1"}`+"\n"+`{"session_id":"sess_2"}`+"\n")
	key := "sk_" + "live_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
	for _, id := range []string{"my batch", strings.Repeat("b", 127), key} {
		r := h.run(t, "revoke", "--file", file, "--batch-id", id)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--batch-id") || strings.Contains(r.stderr, "line 1") || strings.Contains(r.stderr, "Fix them") {
			t.Errorf("--batch-id %.20q: want exit 2 naming --batch-id, not the file's lines: %v", id, r)
		}
		if strings.Contains(r.stderr, key) {
			t.Errorf("the error repeats a secret-shaped batch id")
		}
	}
	if n := len(h.jobsMsgs(t)); n != 0 {
		t.Fatalf("%d jobs published", n)
	}
	// A batch id whose job ids are fine works.
	if r := h.run(t, "revoke", "--file", file, "--batch-id", "incident-77.batch"); r.code != 0 {
		t.Fatalf("%v", r)
	}
}

// TestRefreshReadsStandardInputOnce: --expired-token-file - and
// --headers-file - both read standard input. The token file read it all,
// the headers nothing, and publish said "--headers-file -: not a JSON
// object" of headers that were fine (having taken them for the expired
// token). Two of the three files on standard input are now refused,
// naming them.
func TestRefreshReadsStandardInputOnce(t *testing.T) {
	h := newHarness(t)
	refresh := writeFile(t, "refresh.txt", "refresh-secret\n")
	base := []string{"refresh", "sess_1", "--origin", "https://app.example.com", "--wait"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--expired-token-file", "-", "--refresh-token-file", "-"}, "--expired-token-file and --refresh-token-file all read standard input"},
		{[]string{"--expired-token-file", "-", "--refresh-token-file", refresh, "--headers-file", "-"}, "--expired-token-file and --headers-file all read standard input"},
		{[]string{"--headers-file", "-", "--refresh-token-file", "-", "--expired-token-file", refresh}, "--refresh-token-file and --headers-file all read standard input"},
	} {
		r := h.runWith(t, runOpts{stdin: `{"Cookie":"__client=abc"}`}, append(base, tc.args...)...)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: want exit 2 and %q: %v", tc.args, tc.want, r)
		}
	}
	if n := len(h.jobsMsgs(t)); n != 0 {
		t.Fatalf("%d jobs published", n)
	}
}

// TestTooLongFromFlagsNamesTheFlag: a job built from flags longer than
// 64 KiB (thousands of --except sessions, a large --headers-file) was
// refused as "body is 114043 bytes, more than 65536", naming no flag:
// the message now says which flag made it so long.
func TestTooLongFromFlagsNamesTheFlag(t *testing.T) {
	h := newHarness(t)
	except := make([]string, 3000)
	for i := range except {
		except[i] = fmt.Sprintf("sess_%030d", i)
	}
	headers := writeFile(t, "headers.json", `{"X-Big":"`+strings.Repeat("a", 70000)+`"}`)
	token := writeFile(t, "token.txt", "tok\n")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"revoke-all", "--user", "user_1", "--except", strings.Join(except, ",")}, "--except alone is"},
		{[]string{"refresh", "sess_1", "--origin", "https://app.example.com", "--expired-token-file", token, "--refresh-token-file", token, "--headers-file", headers, "--wait"}, "--headers-file alone is"},
	} {
		r := h.run(t, tc.args...)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "more than 65536") || !strings.Contains(r.stderr, tc.flag) {
			t.Errorf("%s: want exit 2 naming %q: exit %d, %.300s", tc.args[0], tc.flag, r.code, r.stderr)
		}
	}
	if n := len(h.jobsMsgs(t)); n != 0 {
		t.Fatalf("%d jobs published", n)
	}
}

// TestWaitOnTheIDOfADeletedJob: a job deleted from the jobs stream before
// it ran leaves no record; a job published under its id within the
// deduplication window is not queued. Without --wait that exits 6; with
// --wait it waited all of --timeout and exited 3, "accepted and may still
// run". It exits 6 at once either way.
func TestWaitOnTheIDOfADeletedJob(t *testing.T) {
	h := newHarness(t)
	if r := h.run(t, "revoke", "sess_1", "--job-id", "purged-1"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	msgs := h.jobsMsgs(t)
	s, err := h.js.Stream(t.Context(), h.topo.JobsStream)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%v, %d jobs", err, len(msgs))
	}
	if err := s.DeleteMsg(t.Context(), msgs[0].Sequence); err != nil {
		t.Fatal(err)
	}
	for _, wait := range [][]string{nil, {"--wait", "--timeout", "5s"}} {
		start := time.Now()
		r := h.run(t, append([]string{"revoke", "sess_1", "--job-id", "purged-1"}, wait...)...)
		if r.code != publishcli.ExitJobIDReused || time.Since(start) > 3*time.Second {
			t.Errorf("%v: want exit 6 at once, after %s: %v", wait, time.Since(start).Round(time.Millisecond), r)
		}
	}
}

// TestExceptKeepsEverySessionGiven: --except was a comma-separated list
// read as CSV, which takes the first line of a value and drops the rest
// unsaid: `--except "$(cat keep.txt)"`, one session a line, kept the
// first session and revoked the others the operator asked to keep. Every
// id given, separated by commas, spaces or lines, is now kept.
func TestExceptKeepsEverySessionGiven(t *testing.T) {
	h := newHarness(t)
	r := h.run(t, "revoke-all", "--user", "user_1", "--except", "sess_a\nsess_b\r\nsess_c\n", "--except", "sess_d, sess_e")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	msgs := h.jobsMsgs(t)
	var a jobs.RevokeAllArgs
	if len(msgs) != 1 || json.Unmarshal(msgs[0].Data, &a) != nil {
		t.Fatalf("%d jobs", len(msgs))
	}
	if got := fmt.Sprint(a.ExceptSessionIDs); got != "[sess_a sess_b sess_c sess_d sess_e]" {
		t.Fatalf("the job keeps %s; want every session given", got)
	}
}

// TestAgainAdviceForSecrets: a job that may or may not be stored is safe
// to publish again under the same id, except a token or refresh job waited
// for: deduplicated, its secret would go only to the closed inbox of the
// first run. The advice says so.
func TestAgainAdviceForSecrets(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "sess_1", "--wait", "--job-id", "t-1"}, "publish it again with another --job-id"},
		{[]string{"revoke", "sess_1", "--wait", "--job-id", "r-1"}, "publishing it again with --job-id r-1 is safe"},
		{[]string{"token", "sess_1", "--reply-to", "_INBOX.svc.x", "--job-id", "t-2"}, "publishing it again with --job-id t-2 is safe"},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // interrupted while publishing
		r := h.runWith(t, runOpts{ctx: ctx}, tc.args...)
		if r.code != publishcli.ExitInterrupted || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: %v; want exit %d advising %q", tc.args, r, publishcli.ExitInterrupted, tc.want)
		}
	}
}

// answerAsTheWorker sends res to the reply_to of the stored job m, as the
// worker answers.
func answerAsTheWorker(t *testing.T, h *harness, m *jetstream.RawStreamMsg, res jobs.Result) {
	t.Helper()
	var job struct {
		ReplyTo string `json:"reply_to"`
	}
	if err := json.Unmarshal(m.Data, &job); err != nil || job.ReplyTo == "" {
		t.Fatalf("job without reply_to (%d bytes)", len(m.Data))
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Publish(job.ReplyTo, b); err != nil {
		t.Fatal(err)
	}
}

// TestFullJobsStream: a job the full jobs stream refuses, alone or in a
// batch, is said NOT stored, safe to publish again later, with the
// setting that raises the cap; exit 4 (as NATS unavailable: retry), not 2.
// Both said the server's "maximum bytes exceeded" alone, and the job "may
// or may not be stored".
func TestFullJobsStream(t *testing.T) {
	h := newHarness(t)
	held := h.fillJobsStream(t)
	file := writeFile(t, "batch.ndjson", `{"session_id":"sess_1"}`+"\n"+`{"session_id":"sess_2"}`+"\n")
	for name, args := range map[string][]string{
		"one job":        {"revoke", "sess_1"},
		"a tenant's job": {"revoke", "sess_1", "--tenant", "svc_a"},
		"a batch":        {"revoke", "--file", file},
	} {
		r := h.run(t, args...)
		if r.code != publishcli.ExitUnavailable {
			t.Errorf("%s: want exit %d: %v", name, publishcli.ExitUnavailable, r)
		}
		for _, want := range []string{"jobs stream " + h.topo.JobsStream + " is full", "NOT stored", "later", "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q: %v", name, want, r)
			}
		}
		if strings.Contains(r.stderr, "may or may not") {
			t.Errorf("%s: a job refused by a full stream was not stored: %v", name, r)
		}
	}
	if got := len(h.jobsMsgs(t)); got != held {
		t.Errorf("the full jobs stream holds %d jobs, want the %d it held", got, held)
	}
}

// TestFullJobsStreamTookLaterLines: a full jobs stream that refused a
// batch's line still took smaller lines after it. The advice was to
// continue later, once the workers had made room, while the command it gave
// sends those lines again, dropped as duplicates only within the
// deduplication window: continued after it, they would be queued again and
// run twice. The message names them and says so. JetStream's storage used
// up (the account's limit here: it measures each message against the room
// left, so a smaller one still fits) stops a batch the same way, and the
// stop said nothing of the lines it took.
func TestFullJobsStreamTookLaterLines(t *testing.T) {
	for _, tt := range []struct {
		name string
		// fill makes JetStream refuse any job; it returns the harness and
		// the stream it filled, whose last messages make room again.
		fill  func(t *testing.T) (*harness, string)
		said  string // the reason of the stop
		probe string // a subject of the stream fill filled
	}{
		{"the jobs stream's cap", func(t *testing.T) (*harness, string) {
			h := newHarness(t)
			h.fillJobsStream(t)
			return h, h.topo.JobsStream
		}, "is full", "sessions.revoke"},
		{"the account's storage", func(t *testing.T) (*harness, string) {
			h := storageHarness(t)
			if _, err := h.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}, Storage: jetstream.FileStorage}); err != nil {
				t.Fatal(err)
			}
			testenv.FillStorage(t, h.js, "other.revoke")
			return h, "OTHER"
		}, "storage is full", "other.revoke"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, filled := tt.fill(t)
			// Room for the small job (under 250 bytes stored, its headers
			// included), not for the large one (an id and a session id of
			// 128 characters: about 500). The last fillers (16 bytes and
			// their subject and id, about 75 each) are deleted one at a
			// time until a probe the small job's size and 160 bytes more
			// is taken (and deleted again): a count fixed beforehand left
			// no room for the small one when the filling ended with less
			// room to spare.
			s, err := h.js.Stream(t.Context(), filled)
			if err != nil {
				t.Fatal(err)
			}
			small := `{"job_id":"b","session_id":"sess_2"}`
			probe := []byte(small + strings.Repeat(" ", 160))
			for seq := s.CachedInfo().State.LastSeq; ; seq-- {
				if err := s.DeleteMsg(t.Context(), seq); err != nil {
					t.Fatal(err)
				}
				ack, err := h.js.Publish(t.Context(), tt.probe, probe)
				if err == nil {
					if err := s.DeleteMsg(t.Context(), ack.Sequence); err != nil {
						t.Fatal(err)
					}
					break
				}
				if seq == 1 {
					t.Fatalf("no room for a probe after deleting every filler: %v", err)
				}
			}
			held := len(h.jobsMsgs(t))
			large := fmt.Sprintf(`{"job_id":%q,"session_id":%q}`, strings.Repeat("j", 128), "sess_"+strings.Repeat("a", 123))
			file := writeFile(t, "batch.ndjson", large+"\n"+small+"\n")
			// The command stops sending at the first refusal it has read:
			// when line 1's came back before line 2 was sent (a busy
			// machine), nothing was stored and the run is tried again.
			var r result
			for try := 1; ; try++ {
				r = h.run(t, "revoke", "--file", file)
				if r.code == publishcli.ExitPartial || try == 5 || !strings.Contains(r.stderr, "0 of 2 jobs were accepted") {
					break
				}
			}
			if r.code != publishcli.ExitPartial {
				t.Fatalf("want exit %d (some accepted): %v", publishcli.ExitPartial, r)
			}
			if got := len(h.jobsMsgs(t)); got != held+1 {
				t.Fatalf("the jobs stream holds %d jobs, want %d: the small line taken, the large one refused", got, held+1)
			}
			for _, want := range []string{tt.said, "NOT stored", "took 1 smaller jobs after line 1 (line 2)", "run twice", "continue within it"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q: %v", want, r)
				}
			}
		})
	}
}

// storageHarness is a harness whose account may store 12 MiB in all
// (JetStream's max_file for the account), the jobs and dead-letter streams
// capped at 1 MiB each within it (the given-up stream's 8 MiB beside), so that another stream of the account
// can use up its storage before the jobs stream is full. The command
// line connects into the account without credentials (no_auth_user).
func storageHarness(t *testing.T) *harness {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(conf, []byte(`jetstream: {}
accounts: {
  A: {
    jetstream: {max_file: 12MB, max_mem: 1MB}
    users: [{user: a, password: a}]
  }
}
no_auth_user: a
`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartConfiguredServer(t, conf)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo := jobs.DefaultTopology()
	topo.JobsMaxBytes, topo.ResultsMaxBytes, topo.DeadLetterMaxBytes = 1<<20, 1<<20, 1<<20 // reserved within the 12 MiB, with the given-up stream's 8
	if _, err := topo.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	return &harness{url: srv.ClientURL(), nc: nc, js: js, topo: topo}
}

// fillJobsStream caps the jobs stream at 1 MiB and fills it until it
// refuses any job; it returns how many messages it holds.
func (h *harness) fillJobsStream(t *testing.T) int {
	t.Helper()
	return testenv.FillJobsStream(t, h.js, h.topo)
}

// TestSecretGivenForItsFileIsNotRepeated: the refresh token, the expired
// token or the headers pasted in place of their file's path (the files
// keep them out of the arguments) were repeated by the error that the
// file does not exist: an opaque refresh token is shaped like nothing, so
// nothing redacted it. Also a token too long for a file name.
func TestSecretGivenForItsFileIsNotRepeated(t *testing.T) {
	h := newHarness(t)
	token := writeFile(t, "token.txt", "tok\n")
	const refresh = "opaqueRefreshTokenPasted0123456789"
	long := strings.Repeat("opaqueLongRefreshToken", 20)
	base := []string{"refresh", "sess_1", "--origin", "https://app.example.com", "--wait"}
	for _, tc := range []struct {
		flag, value string
	}{
		{"--refresh-token-file", refresh},
		{"--refresh-token-file", long},
		{"--expired-token-file", refresh},
		{"--headers-file", `{"Cookie":"__client=x; theme=` + refresh + `"}`},
	} {
		args := append(slices.Clone(base), "--expired-token-file", token, "--refresh-token-file", token, tc.flag, tc.value)
		r := h.run(t, args...)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, tc.flag) {
			t.Errorf("%s: want exit 2 naming the flag: %v", tc.flag, r)
		}
		if strings.Contains(r.stdout+r.stderr, "opaque") {
			t.Errorf("%s: the value given is repeated: %v", tc.flag, r)
		}
	}
	// A path that is a path (absolute, in a directory that exists) is
	// still named.
	missing := filepath.Join(t.TempDir(), "refresh.txt")
	r := h.run(t, append(slices.Clone(base), "--expired-token-file", token, "--refresh-token-file", missing)...)
	if !strings.Contains(r.stderr, missing) {
		t.Errorf("an absolute path is not named: %v", r)
	}
	if n := len(h.jobsMsgs(t)); n != 0 {
		t.Fatalf("%d jobs published", n)
	}
}

// TestConsoleSecretGivenForItsFileIsNotRepeated: the console's token, a
// basic-auth line or the HTTPS key pasted in place of its file's path was
// repeated by the error that the file does not exist (the key's only once
// the console already listened).
func TestConsoleSecretGivenForItsFileIsNotRepeated(t *testing.T) {
	h := newHarness(t)
	cert := writeFile(t, "console.crt", "not a certificate, read before the key\n")
	for _, tc := range []struct {
		says string
		args []string
	}{
		{"token file", []string{"--token-file", "consoleTokenPasted0123456789abcdef"}},
		{"basic-auth file", []string{"--basic-auth-file", "alice:consolePasswordPasted012345"}},
		{"--https-key", []string{"--https-cert", cert, "--https-key", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANconsoleKeyPasted\n-----END PRIVATE KEY-----"}},
	} {
		r := h.run(t, append([]string{"console", "--listen", "127.0.0.1:0"}, tc.args...)...)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("%s: want exit 2 naming it: %v", tc.says, r)
		}
		if strings.Contains(r.stdout+r.stderr, "Pasted") || strings.Contains(r.stderr, "console listening") {
			t.Errorf("%s: the value given is repeated, or the console listened first: %v", tc.says, r)
		}
	}
}
