package publishcli_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// listSeqs runs dlq list --json with args and returns the sequences.
func listSeqs(t *testing.T, h *harness, args ...string) []uint64 {
	t.Helper()
	r := h.run(t, append([]string{"dlq", "list"}, args...)...)
	if r.code != 0 {
		t.Fatalf("dlq list %v: %v", args, r)
	}
	var seqs []uint64
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		var e struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("dlq list %v: line %q is not JSON", args, l)
		}
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func TestDLQList(t *testing.T) {
	h := newHarness(t)
	early := h.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, code: "rate_limit_exceeded", jobID: "a1"},
		letter{op: jobs.OpGet, class: jobs.ClassPermanent, code: "resource_not_found", jobID: "a2"},
	)
	time.Sleep(30 * time.Millisecond)
	mid := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(30 * time.Millisecond)
	late := h.seed(t,
		letter{op: jobs.OpToken, class: jobs.ClassMaxDeliveries, jobID: "b1"},
		letter{op: jobs.OpRevokeAll, class: jobs.ClassExhausted, jobID: "b2"},
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "b3", body: `{"session":"x"}`},
	)
	tests := []struct {
		args []string
		want []uint64
	}{
		{nil, append(slices.Clone(early), late...)},
		{[]string{"--op", "revoke"}, []uint64{early[0], late[2]}},
		{[]string{"--op", "revoke-all,token"}, []uint64{late[0], late[1]}},
		{[]string{"--class", "exhausted"}, []uint64{early[0], late[1]}},
		{[]string{"--class", "exhausted", "--op", "revoke"}, []uint64{early[0]}},
		{[]string{"--code", "resource_not_found", "--code", "rate_limit_exceeded"}, early},
		{[]string{"--since", mid}, late},
		{[]string{"--until", mid}, early},
		{[]string{"--since", "1h"}, append(slices.Clone(early), late...)},
		{[]string{"--until", "1h"}, nil},
		{[]string{"--job-id", "b3,a2"}, []uint64{early[1], late[2]}},
		{[]string{strconv.FormatUint(late[1], 10), "999"}, []uint64{late[1]}},
	}
	for _, tt := range tests {
		if got := listSeqs(t, h, tt.args...); !slices.Equal(got, tt.want) {
			t.Errorf("dlq list %v = %v, want %v", tt.args, got, tt.want)
		}
	}
	// On a terminal: a table.
	r := h.runWith(t, runOpts{tty: true}, "dlq", "list", "--class", "exhausted")
	if r.code != 0 || !matches(r.stdout, `SEQ\s+TIME\s+OP\s+CLASS\s+STATUS\s+CODE\s+JOB ID\s+REPLAYS`) ||
		!matches(r.stdout, `\n1\s+.*revoke\s+exhausted\s+503\s+rate_limit_exceeded\s+a1\s+0`) || strings.Count(r.stdout, "\n") != 3 ||
		!strings.Contains(r.stderr, "2 dead letters") {
		t.Fatalf("%v", r)
	}
	for _, bad := range [][]string{{"--class", "boom"}, {"--op", "nope"}, {"--since", "yesterday"}, {"x1"}} {
		if r := h.run(t, append([]string{"dlq", "list"}, bad...)...); r.code != publishcli.ExitUsage {
			t.Errorf("dlq list %v: %v", bad, r)
		}
	}
}

func TestDLQShow(t *testing.T) {
	h := newHarness(t)
	seqs := h.seed(t,
		letter{op: jobs.OpRefresh, class: jobs.ClassPermanent, jobID: "r1"},
		// A dead letter stored with its secrets in the clear, as a buggy
		// worker might: show must redact them all the same.
		letter{op: jobs.OpRefresh, class: jobs.ClassPermanent, jobID: "r2", noRedaction: true},
	)
	for _, seq := range seqs {
		for _, args := range [][]string{{}, {"--json"}} {
			r := h.run(t, append([]string{"dlq", "show", strconv.FormatUint(seq, 10)}, args...)...)
			if r.code != 0 || !strings.Contains(r.stdout, jobs.RedactedValue) || strings.Contains(r.stdout, "SECRET") {
				t.Fatalf("show %d %v: %v", seq, args, r)
			}
		}
	}
	r := h.run(t, "dlq", "show", strconv.FormatUint(seqs[0], 10))
	for _, want := range []string{"job          r1 (refresh, from sessions.refresh seq 7)", "replayable   no: its secret fields (expired_token, refresh_token) were redacted", "history:", "Dlq-Error-Class: permanent", `"session_id": "sess_1"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q: %v", want, r)
		}
	}
	r = h.run(t, "dlq", "show", strconv.FormatUint(seqs[0], 10), "--json")
	var j struct {
		Seq        uint64              `json:"seq"`
		Replayable bool                `json:"replayable"`
		Payload    map[string]any      `json:"payload"`
		Headers    map[string][]string `json:"headers"`
		History    []jobs.Failure      `json:"history"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.Seq != seqs[0] || j.Replayable || j.Payload["job_id"] != "r1" || len(j.History) != 1 || j.Headers[jobs.HeaderJobID][0] != "r1" {
		t.Fatalf("%v", r)
	}
	// A sequence not in the queue is an answer, not a usage error.
	if r := h.run(t, "dlq", "show", "999999"); r.code != publishcli.ExitNotFound || !strings.Contains(r.stderr, "dead letter 999999: no such dead letter") || strings.Contains(r.stderr, "--help") {
		t.Fatalf("%v", r)
	}
}

func TestDLQReplay(t *testing.T) {
	h := newHarness(t)
	seqs := h.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "x1"},
		letter{op: jobs.OpGet, class: jobs.ClassExhausted, jobID: "x2"},
		letter{op: jobs.OpRevoke, class: jobs.ClassPermanent, jobID: "x3"},
		letter{op: jobs.OpRefresh, class: jobs.ClassExhausted, jobID: "x4"}, // redacted
	)
	// Replay needs a selection.
	if r := h.run(t, "dlq", "replay"); r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--all") {
		t.Fatalf("%v", r)
	}
	// Sequences with filters: only while the letter matches them.
	if r := h.run(t, "dlq", "replay", strconv.FormatUint(seqs[2], 10), "--class", "exhausted"); r.code != publishcli.ExitPartial || h.dlqCount(t) != 4 || len(h.jobsMsgs(t)) != 0 {
		t.Fatalf("%v", r)
	}
	// A dry run changes nothing.
	r := h.run(t, "dlq", "replay", "--class", "exhausted", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would replay 2, skipped 1") || !strings.Contains(r.stdout, "would replay 1: job x1 (revoke) to sessions.revoke") {
		t.Fatalf("%v", r)
	}
	if h.dlqCount(t) != 4 || len(h.jobsMsgs(t)) != 0 {
		t.Fatal("dry run changed the streams")
	}

	// By filter: the redacted entry is refused and stays; exit 5.
	r = h.run(t, "dlq", "replay", "--class", "exhausted", "--rate", "100/s")
	if r.code != publishcli.ExitPartial || !strings.Contains(r.stdout, "replayed 2, skipped 1, failed 0") ||
		!strings.Contains(r.stdout, "skipped 4 (job x4, refresh): its secret fields (expired_token, refresh_token) were redacted") {
		t.Fatalf("%v", r)
	}
	msgs := h.jobsMsgs(t)
	if len(msgs) != 2 {
		t.Fatalf("jobs stream has %d messages, want 2", len(msgs))
	}
	dlqStream, err := h.js.Stream(t.Context(), h.topo.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	created := dlqStream.CachedInfo().Created
	for i, m := range msgs {
		seq := seqs[i]
		if m.Header.Get(jetstream.MsgIDHeader) != dlq.ReplayMsgID(created, seq, 1) || m.Header.Get(jobs.HeaderReplays) != "1" || m.Header.Get(jobs.HeaderReplayOf) != strconv.FormatUint(seq, 10) {
			t.Errorf("replayed job %d: %s headers %v", i, m.Subject, m.Header)
		}
	}
	if got := listSeqs(t, h); !slices.Equal(got, seqs[2:]) {
		t.Fatalf("left in the queue: %v, want %v", got, seqs[2:])
	}

	// By sequence, JSON: one outcome per entry and a summary.
	r = h.run(t, "dlq", "replay", strconv.FormatUint(seqs[2], 10), "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.Contains(lines[0], `"status":"replayed"`) || !strings.Contains(lines[1], `"replayed":1`) {
		t.Fatalf("%v", r)
	}
	// Nothing selected is not an error.
	if r := h.run(t, "dlq", "replay", "--op", "list"); r.code != 0 || !strings.Contains(r.stdout, "nothing to replay") {
		t.Fatalf("%v", r)
	}
	// A sequence that is gone is reported.
	if r := h.run(t, "dlq", "replay", strconv.FormatUint(seqs[0], 10)); r.code != publishcli.ExitPartial || !strings.Contains(r.stdout, "not in the dead-letter queue") {
		t.Fatalf("%v", r)
	}
	// NaN and Inf would mean no limit at all: refused like any bad rate.
	for _, rate := range []string{"fast", "NaN", "Inf/s"} {
		if r := h.run(t, "dlq", "replay", "--all", "--rate", rate); r.code != publishcli.ExitUsage {
			t.Fatalf("--rate %s: %v", rate, r)
		}
	}
}

// TestDLQTenantScope: `publish --tenant X dlq …` is tenant X's dead-letter
// queue. Before, the tenant was ignored: purge --all deleted every
// tenant's dead letters, and list showed them all.
func TestDLQTenantScope(t *testing.T) {
	h := newHarness(t)
	seqs := h.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "a1", tenant: "acme"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "g1", tenant: "globex"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "n1"},
		letter{op: jobs.OpGet, class: jobs.ClassExhausted, jobID: "a2", tenant: "acme"},
	)
	acme := func(args ...string) []string { return append([]string{"--tenant", "acme", "dlq"}, args...) }
	if got := listSeqs(t, h, "--tenant", "acme"); !slices.Equal(got, []uint64{seqs[0], seqs[3]}) {
		t.Errorf("list as acme: %v, want %v", got, []uint64{seqs[0], seqs[3]})
	}
	if got := listSeqs(t, h, "--tenant", "acme", "--op", "get"); !slices.Equal(got, seqs[3:4]) {
		t.Errorf("list --op get as acme: %v, want %v", got, seqs[3:4])
	}
	globex := strconv.FormatUint(seqs[1], 10)
	if r := h.run(t, acme("show", globex)...); r.code != publishcli.ExitNotFound {
		t.Errorf("show of globex's letter as acme: %v", r)
	}
	if r := h.run(t, acme("replay", globex)...); r.code == 0 && !strings.Contains(r.stdout+r.stderr, "not in the dead-letter queue") || len(h.jobsMsgs(t)) != 0 {
		t.Errorf("replay of globex's letter as acme: %v; %d jobs published", r, len(h.jobsMsgs(t)))
	}
	if r := h.run(t, acme("purge", globex, "--yes")...); !strings.Contains(r.stdout+r.stderr, "not in the dead-letter queue") {
		t.Errorf("purge of globex's letter as acme: %v", r)
	}
	if r := h.run(t, acme("purge", "--all", "--yes")...); r.code != 0 || !strings.Contains(r.stdout, "purged 2") {
		t.Errorf("purge --all as acme: %v", r)
	}
	if got := listSeqs(t, h); !slices.Equal(got, seqs[1:3]) {
		t.Errorf("left %v, want the other tenants' %v", got, seqs[1:3])
	}
	if r := h.run(t, "--tenant", "acme", "console", "--listen", "127.0.0.1:0"); r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "every tenant's dead letters") {
		t.Errorf("console as acme: %v", r)
	}
}

// TestConsoleRefreshHasAFloor: each refresh reads the jobs stream and asks
// every worker; --refresh 1ms did that a thousand times a second.
func TestConsoleRefreshHasAFloor(t *testing.T) {
	h := newHarness(t)
	for _, d := range []string{"1ms", "99ms"} {
		if r := h.run(t, "console", "--listen", "127.0.0.1:0", "--refresh", d); r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--refresh "+d+": must be at least 100ms") {
			t.Errorf("console --refresh %s: %v", d, r)
		}
	}
}

func TestDLQPurge(t *testing.T) {
	h := newHarness(t)
	seqs := h.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "p1", body: `{"x":1}`},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "p2"},
		letter{op: jobs.OpGet, class: jobs.ClassInvalid, jobID: "p3", body: `{}`},
	)
	// Standard input is not a terminal: refused without --yes.
	r := h.runWith(t, runOpts{stdin: "yes\n"}, "dlq", "purge", "--class", "invalid")
	if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "refusing to purge 2 dead letters") || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("%v", r)
	}
	// On a terminal: asks, and anything but "yes" keeps them.
	r = h.runWith(t, runOpts{tty: true, stdin: "y\n"}, "dlq", "purge", "--class", "invalid")
	if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "Type yes") || !strings.Contains(r.stderr, "nothing was purged") {
		t.Fatalf("%v", r)
	}
	if h.dlqCount(t) != 3 {
		t.Fatal("a refused purge deleted dead letters")
	}
	r = h.runWith(t, runOpts{tty: true, stdin: "yes\n"}, "dlq", "purge", "--class", "invalid")
	if r.code != 0 || !strings.Contains(r.stdout, "purged 2") {
		t.Fatalf("%v", r)
	}
	if got := listSeqs(t, h); !slices.Equal(got, seqs[1:2]) {
		t.Fatalf("left %v, want %v", got, seqs[1:2])
	}
	// --yes, by sequence, with one that is gone.
	r = h.run(t, "dlq", "purge", strconv.FormatUint(seqs[1], 10), strconv.FormatUint(seqs[0], 10), "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "purged 1") || !strings.Contains(r.stderr, "dead letter "+strconv.FormatUint(seqs[0], 10)+" is gone already") {
		t.Fatalf("%v", r)
	}
	if h.dlqCount(t) != 0 {
		t.Fatal("purge --yes left dead letters")
	}
	if r := h.run(t, "dlq", "purge", "--all", "--op", "get", "--yes"); r.code != publishcli.ExitUsage {
		t.Fatalf("%v", r)
	}
}

func TestStatus(t *testing.T) {
	h := newHarness(t)
	for _, s := range []string{"sess_1", "sess_2"} {
		if r := h.run(t, "revoke", s); r.code != 0 {
			t.Fatalf("%v", r)
		}
	}
	if r := h.run(t, "get", "sess_1"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	h.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted},
		letter{op: jobs.OpRevoke, class: jobs.ClassPermanent},
		letter{op: jobs.OpToken, class: jobs.ClassExhausted},
	)
	// Two worker instances, as the worker registers them.
	for range 2 {
		svc, err := micro.AddService(h.nc, micro.Config{Name: jobs.WorkerService, Version: "0.1.0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
	}
	flushServices(t, h)
	// The server counts a consumer's pending jobs after storing them, not
	// with the store's answer: wait for its count, which status shows.
	cons, err := h.js.Consumer(t.Context(), h.topo.JobsStream, h.topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ci, err := cons.Info(t.Context())
		if err == nil && ci.NumPending == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer's pending jobs: %+v, %v", ci, err)
		}
	}
	r := h.run(t, "status", "--json")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	var st struct {
		Jobs struct {
			Stored uint64            `json:"stored"`
			ByOp   map[string]uint64 `json:"by_op"`
		} `json:"jobs"`
		Consumers []struct {
			Name    string `json:"name"`
			Pending uint64 `json:"pending"`
		} `json:"consumers"`
		DeadLetters struct {
			Entries   uint64                       `json:"entries"`
			ByOp      map[string]uint64            `json:"by_op"`
			ByClass   map[string]uint64            `json:"by_class"`
			ByOpClass map[string]map[string]uint64 `json:"by_op_class"`
		} `json:"dead_letters"`
		Workers struct {
			Instances []micro.Ping `json:"instances"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v", r)
	}
	if st.Jobs.Stored != 3 || st.Jobs.ByOp["revoke"] != 2 || st.Jobs.ByOp["get"] != 1 ||
		len(st.Consumers) != 1 || st.Consumers[0].Name != "session-worker" || st.Consumers[0].Pending != 3 ||
		st.DeadLetters.Entries != 3 || st.DeadLetters.ByOp["revoke"] != 2 || st.DeadLetters.ByClass["exhausted"] != 2 ||
		st.DeadLetters.ByOpClass["revoke"]["permanent"] != 1 || len(st.Workers.Instances) != 2 {
		t.Fatalf("%+v\n%v", st, r)
	}
	r = h.run(t, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "workers: 2 instances") || !matches(r.stdout, `revoke\s+0\s+1\s+1\s+0\s+2`) {
		t.Fatalf("%v", r)
	}
	// A missing stream: shown, and exit 4.
	if err := h.js.DeleteStream(t.Context(), h.topo.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	r = h.run(t, "status")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stdout, "stream SESSION_DLQ does not exist") || !strings.Contains(r.stdout, "revoke  2") {
		t.Fatalf("%v", r)
	}
}

// TestDLQReplayInterrupted interrupts a rate-limited replay, then runs it
// again: every dead letter ends up in the jobs stream exactly once.
func TestDLQReplayInterrupted(t *testing.T) {
	h := newHarness(t)
	const n = 12
	var letters []letter
	for i := range n {
		letters = append(letters, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "j" + strconv.Itoa(i)})
	}
	h.seed(t, letters...)
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	r := h.runWith(t, runOpts{ctx: ctx}, "dlq", "replay", "--all", "--rate", "10")
	if r.code != publishcli.ExitInterrupted || !strings.Contains(r.stderr, "run the same command again to continue") {
		t.Fatalf("%v", r)
	}
	done := len(h.jobsMsgs(t))
	if done == 0 || done == n || h.dlqCount(t) != n-done {
		t.Fatalf("after the interrupt: %d replayed, %d dead letters left", done, h.dlqCount(t))
	}
	r = h.run(t, "dlq", "replay", "--all")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed "+strconv.Itoa(n-done)+",") {
		t.Fatalf("%v", r)
	}
	ids := map[string]int{}
	for _, m := range h.jobsMsgs(t) {
		var a jobs.RevokeArgs
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		ids[a.JobID]++
	}
	if len(ids) != n || h.dlqCount(t) != 0 {
		t.Fatalf("%d distinct jobs replayed, %d dead letters left", len(ids), h.dlqCount(t))
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("job %s replayed %d times", id, c)
		}
	}
}
