package publishcli_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplaySameSequenceTwice: a sequence given twice (pasted from two
// lists) is one dead letter. Replay took it twice: the second found it
// gone and was counted skipped, so a replay that did all it was asked
// exited 5 (partial) saying "skipped 1 ... not in the dead-letter queue".
func TestReplaySameSequenceTwice(t *testing.T) {
	h := newHarness(t)
	seqs := h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "twice"})
	s := strconv.FormatUint(seqs[0], 10)
	r := h.run(t, "dlq", "replay", s, s)
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 1, skipped 0") || len(h.jobsMsgs(t)) != 1 || h.dlqCount(t) != 0 {
		t.Errorf("want exit 0, one job replayed and nothing skipped: %v; %d jobs", r, len(h.jobsMsgs(t)))
	}
}

// TestReplayOverATakenIdExits6: a job stored under a replay's message id
// before the replay (by whoever may publish jobs) is another job: the
// replay keeps the dead letter and exits 6, as a publish whose id another
// job holds, saying when to run it again. Before, the duplicate was taken
// for the replay's own and the dead letter deleted: the job lost.
func TestReplayOverATakenIdExits6(t *testing.T) {
	h := newHarness(t)
	seq := h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "real"})[0]
	s, err := h.js.Stream(t.Context(), h.topo.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(h.topo.Subjects.Job(jobs.OpRevoke))
	m.Data = []byte(testenv.JobBody(jobs.OpRevoke, "decoy"))
	m.Header.Set(jetstream.MsgIDHeader, dlq.ReplayMsgID(s.CachedInfo().Created, seq, 1))
	if _, err := h.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	r := h.run(t, "dlq", "replay", strconv.FormatUint(seq, 10))
	if r.code != 6 || !strings.Contains(r.stderr+r.stdout, "the dead letter is kept") || h.dlqCount(t) != 1 {
		t.Errorf("want exit 6, the reason, and the dead letter kept (%d left): %v", h.dlqCount(t), r)
	}
}

// TestSequenceGuardedByItsListedJob: a sequence names a dead letter only
// within one dead-letter stream. The operator lists letter 1 (job "old"),
// the stream is deleted and created again, and letter 1 is now another job.
// `replay 1` and `purge 1` had no way to say which letter was meant
// (sequences with filters were refused): now the filters given with a
// sequence guard it, and a letter that no longer matches is kept (exit 5).
func TestSequenceGuardedByItsListedJob(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"replay", []string{"dlq", "replay"}},
		{"purge", []string{"dlq", "purge", "--yes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			listed := h.seedThenRecreateDeadLetters(t)
			now := h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "new"})[0]
			if now != listed {
				t.Fatalf("the new letter is %d, not %d", now, listed)
			}
			seq := strconv.FormatUint(listed, 10)

			r := h.run(t, append(tc.args, seq, "--job-id", "old")...)
			if r.code != publishcli.ExitPartial || !strings.Contains(r.stdout+r.stderr, "does not match the filters given with its sequence") {
				t.Fatalf("want exit %d keeping letter %s of job new: %v", publishcli.ExitPartial, seq, r)
			}
			if h.dlqCount(t) != 1 || len(h.jobsMsgs(t)) != 0 {
				t.Fatalf("letter %s of another job was acted on: %d dead letters, %d jobs", seq, h.dlqCount(t), len(h.jobsMsgs(t)))
			}

			r = h.run(t, append(tc.args, seq, "--job-id", "new")...)
			if r.code != 0 || h.dlqCount(t) != 0 {
				t.Fatalf("the letter that matches: %v; %d dead letters", r, h.dlqCount(t))
			}
		})
	}
}

// TestBareSequenceNamesTheLetter: a sequence alone has nothing to check
// its letter against. The operator lists letter 1 (job "old"), the stream
// is deleted and created again, and `replay 1` or `purge 1` acted on the
// new letter 1 saying only "replayed 1" / "purged 1": nothing showed that
// it was another job's. Each letter acted on (and, for a purge, each one
// about to be, before the confirmation) is named by its job id, op, class
// and error.
func TestBareSequenceNamesTheLetter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		o     runOpts
		out   string // where the letter must be named, with this verb
		verb  string
		acted bool
	}{
		{"replay", []string{"dlq", "replay"}, runOpts{}, "stdout", "replayed", true},
		{"replay dry run", []string{"dlq", "replay", "--dry-run"}, runOpts{}, "stdout", "would replay", false},
		{"purge", []string{"dlq", "purge", "--yes"}, runOpts{}, "stdout", "purged", true},
		{"purge dry run", []string{"dlq", "purge", "--dry-run"}, runOpts{}, "stdout", "would purge", false},
		{"purge confirmation", []string{"dlq", "purge"}, runOpts{tty: true, stdin: "no\n"}, "stderr", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			listed := h.seedThenRecreateDeadLetters(t)
			if now := h.seed(t, letter{op: jobs.OpGet, class: jobs.ClassPermanent, jobID: "new"})[0]; now != listed {
				t.Fatalf("the new letter is %d, not %d", now, listed)
			}
			seq := strconv.FormatUint(listed, 10)
			r := h.runWith(t, tc.o, append(tc.args, seq)...)
			out := r.stdout
			if tc.out == "stderr" {
				out = r.stderr
			}
			want := strings.TrimSpace(tc.verb + " " + seq + ": job new (get, permanent, stored ")
			if !strings.Contains(out, want) || !strings.Contains(out, "): Clerk failed") {
				t.Errorf("%s does not name the letter (%q, its error): %v", tc.out, want, r)
			}
			if acted := h.dlqCount(t) == 0; acted != tc.acted {
				t.Errorf("letter acted on: %v, want %v: %v", acted, tc.acted, r)
			}
		})
	}
}

// seedThenRecreateDeadLetters stores the dead letter of job "old", then
// deletes the dead-letter stream and creates it again, empty: the
// sequence it returns, the old letter's, names nothing or another letter
// from now on.
func (h *harness) seedThenRecreateDeadLetters(t *testing.T) uint64 {
	t.Helper()
	listed := h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "old"})[0]
	cfg := h.topo.DeadLetterStreamConfig()
	if err := h.js.DeleteStream(t.Context(), cfg.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return listed
}
