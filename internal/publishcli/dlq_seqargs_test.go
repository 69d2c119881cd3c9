package publishcli_test

import (
	"strconv"
	"strings"
	"testing"

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
