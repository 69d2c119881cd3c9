package publishcli_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDLQJSONHidesSecretShapedFields: a letter stored by an older worker,
// or written some other way, may carry a key or a token in any header: the
// job id (a publisher that named the job with its token), the worker, the
// parent job, the original subject. The text output clears them of secret
// shapes, as docs/publish.md says both outputs do; `list --json`, `show
// --json` and `replay --json` printed the job id, subjects, worker and
// parent job as stored.
func TestDLQJSONHidesSecretShapedFields(t *testing.T) {
	h := newHarness(t)
	for _, s := range secretShapes {
		if strings.ContainsAny(s.text, " ") {
			continue // not a subject token or a job id
		}
		now := time.Now()
		d := jobs.DeadLetter{
			Subject: h.topo.Subjects.Job(jobs.OpRevoke) + "." + s.text, StreamSeq: 7, JobID: s.text, Op: jobs.OpRevoke,
			Error:    jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "Clerk failed"},
			Attempts: 1, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: "w-" + s.text,
		}
		seq := strconv.FormatUint(h.seedRaw(t, rawLetter{d: d, jobID: s.text, header: map[string]string{jobs.HeaderParentJob: s.text},
			body: `{"session_id":"sess_1"}`})[0], 10)
		t.Run(s.name, func(t *testing.T) {
			for name, r := range map[string]result{
				"list json":   h.run(t, "dlq", "list", "--json", seq),
				"show json":   h.run(t, "dlq", "show", seq, "--json"),
				"replay json": h.run(t, "dlq", "replay", seq, "--dry-run", "--json"),
				"show":        h.run(t, "dlq", "show", seq),
			} {
				if !strings.Contains(r.stdout, "[REDACTED]") {
					t.Errorf("%s: want the secret-shaped values redacted: %v", name, r)
				}
				if strings.Contains(r.stdout+r.stderr, s.secret) {
					t.Errorf("%s: the secret was printed:\n%v", name, r)
				}
			}
		})
	}
}

// TestNotReplayableReasonHidesRedactedNames: why a letter cannot be
// replayed names its Dlq-Redacted fields, and a letter written some other
// way (or by an older worker) may carry a key or a token there. The
// "redacted" member was cleared of secret shapes, but the reason quoting
// the same header (`not_replayable` of list and show --json, the reason
// replay prints and its --json report) repeated it as stored.
func TestNotReplayableReasonHidesRedactedNames(t *testing.T) {
	h := newHarness(t)
	for i, s := range secretShapes {
		now := time.Now()
		jobID := "redacted-name-" + strconv.Itoa(i)
		d := jobs.DeadLetter{
			Subject: h.topo.Subjects.Job(jobs.OpRevoke), StreamSeq: 7, JobID: jobID, Op: jobs.OpRevoke,
			Error:    jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "Clerk failed"},
			Attempts: 1, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: "w1",
			Redacted: []string{"session_id", s.text},
		}
		seq := strconv.FormatUint(h.seedRaw(t, rawLetter{d: d, jobID: jobID, body: `{"session_id":"[REDACTED]"}`})[0], 10)
		t.Run(s.name, func(t *testing.T) {
			for name, r := range map[string]result{
				"list json":           h.run(t, "dlq", "list", "--json", seq),
				"show json":           h.run(t, "dlq", "show", seq, "--json"),
				"show":                h.run(t, "dlq", "show", seq),
				"replay dry-run":      h.run(t, "dlq", "replay", seq, "--dry-run"),
				"replay dry-run json": h.run(t, "dlq", "replay", seq, "--dry-run", "--json"),
				"replay":              h.run(t, "dlq", "replay", seq),
				"replay json":         h.run(t, "dlq", "replay", seq, "--json"),
			} {
				if !strings.Contains(r.stdout, "were redacted") {
					t.Errorf("%s: want the reason it is not replayable: %v", name, r)
				}
				if strings.Contains(r.stdout+r.stderr, s.secret) {
					t.Errorf("%s: the secret was printed:\n%v", name, r)
				}
			}
		})
	}
	if n := h.dlqCount(t); n != len(secretShapes) {
		t.Errorf("%d dead letters left, want all %d kept", n, len(secretShapes))
	}
}

// TestShowHidesAnEscapedSecretInTheHistoryHeader: Dlq-History is JSON, and
// JSON may write a JWT's dots as \u002e: the history rows (decoded) showed
// it [REDACTED], but the headers `dlq show` lists (text and --json) gave
// the header as stored, where the escapes hid the JWT from the shape
// check and any reader of the output could decode it.
func TestShowHidesAnEscapedSecretInTheHistoryHeader(t *testing.T) {
	h := newHarness(t)
	const (
		header = "eyJhbGciOiJSUzI1NiJ9"
		claims = "eyJzdWIiOiJ1c2VyXzEifQ"
	)
	escaped := header + `\u002e` + claims + `\u002ec2lnbmF0dXJlLXBhcnQ`
	now := time.Now()
	d := jobs.DeadLetter{
		Subject: h.topo.Subjects.Job(jobs.OpRevoke), StreamSeq: 7, JobID: "escaped-history", Op: jobs.OpRevoke,
		Error:    jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "Clerk failed"},
		Attempts: 1, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: "w1",
	}
	seq := strconv.FormatUint(h.seedRaw(t, rawLetter{d: d, jobID: "escaped-history", body: `{"session_id":"sess_1"}`, header: map[string]string{
		jobs.HeaderHistory: `[{"at":"` + now.UTC().Format(time.RFC3339Nano) + `","error":"upstream echoed Authorization: Bearer ` + escaped + `"}]`,
		// A header whose name is a secret (a proxy's, or a forger's): the
		// text view and the console clear names; show --json listed it as is.
		"sk_" + "live_0123456789abcdefXYZ": "x",
	}})[0], 10)
	for name, r := range map[string]result{
		"show":      h.run(t, "dlq", "show", seq),
		"show json": h.run(t, "dlq", "show", seq, "--json"),
		"list json": h.run(t, "dlq", "list", "--json", seq),
	} {
		if r.code != 0 || !strings.Contains(r.stdout, "[REDACTED]") {
			t.Errorf("%s: want exit 0 and the history redacted: %v", name, r)
		}
		if strings.Contains(r.stdout+r.stderr, claims) {
			t.Errorf("%s: the JWT was printed, escaped:\n%v", name, r)
		}
		if strings.Contains(r.stdout+r.stderr, "0123456789abcdef") {
			t.Errorf("%s: a header name that is a secret key was printed:\n%v", name, r)
		}
	}
}
