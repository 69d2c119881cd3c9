package publishcli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDLQTimesWithoutZoneAreLocal: `dlq list` shows when each letter was
// stored in local time, without a zone, and --since/--until take a time
// without a zone too: they read it as UTC. East of Greenwich, an operator
// purging "--until" the time of the last letter they meant to delete,
// as the table shows it, deleted letters stored hours after it, newer
// ones they never saw.
func TestDLQTimesWithoutZoneAreLocal(t *testing.T) {
	east := runOpts{loc: time.FixedZone("UTC+2", 2*60*60)}
	h := newHarness(t)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "new-1", body: `{"x":1}`})
	// An hour before the letter came, as the table writes local times.
	hourAgo := time.Now().Add(-time.Hour).In(east.loc)
	for _, until := range []string{hourAgo.Format("2006-01-02T15:04"), hourAgo.Format("2006-01-02 15:04:05")} {
		r := h.runWith(t, east, "dlq", "purge", "--until", until, "--yes")
		if r.code != 0 || h.dlqCount(t) != 1 {
			t.Fatalf("purge --until %q (an hour before the letter, local time) deleted it: %v", until, r)
		}
	}
	since := hourAgo.Format("2006-01-02T15:04")
	r := h.runWith(t, east, "dlq", "list", "--json", "--since", since)
	if r.code != 0 || strings.Count(r.stdout, `"seq"`) != 1 {
		t.Errorf("list --since %q (an hour before the letter, local time): %v, want the letter", since, r)
	}
	// The table shows the letter's time in the same zone.
	if r := h.runWith(t, runOpts{loc: east.loc, tty: true}, "dlq", "list"); !strings.Contains(r.stdout, time.Now().In(east.loc).Format("2006-01-02 15:")) {
		t.Errorf("the table does not show the letter's time in the command's zone:\n%s", r.stdout)
	}
}

// TestDLQListRefusesANegativeLimit: --limit -1 (a script's unset count
// minus one) listed every dead letter, as if no limit had been given,
// without a word; it is refused, naming the flag.
func TestDLQListRefusesANegativeLimit(t *testing.T) {
	h := newHarness(t)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "l1"})
	r := h.run(t, "dlq", "list", "--limit", "-1")
	if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--limit") || r.stdout != "" {
		t.Errorf("want exit %d naming --limit, nothing listed: %v", publishcli.ExitUsage, r)
	}
}

// TestDLQUntilNotAfterSinceIsRefused: --since 1h --until 2h (the two
// swapped: until two hours ago, from one hour ago) selects no dead letter
// whatever the queue holds; list printed nothing and exited 0, and
// replay and purge said nothing matched, as if the queue held none of
// them. It is refused, naming both flags, and nothing is touched.
func TestDLQUntilNotAfterSinceIsRefused(t *testing.T) {
	h := newHarness(t)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "w1"})
	for _, args := range [][]string{
		{"dlq", "list", "--since", "1h", "--until", "2h"},
		{"dlq", "list", "--since", "2026-05-02", "--until", "2026-05-01"},
		{"dlq", "list", "--since", "1h", "--until", "1h"},
		{"dlq", "replay", "--since", "1h", "--until", "2h", "--dry-run"},
		{"dlq", "purge", "--since", "1h", "--until", "2h", "--yes"},
	} {
		r := h.run(t, args...)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, "--until") || !strings.Contains(r.stderr, "--since") || r.stdout != "" {
			t.Errorf("%q: want exit %d naming --since and --until, nothing listed: %v", args, publishcli.ExitUsage, r)
		}
	}
	if n := h.dlqCount(t); n != 1 {
		t.Errorf("%d dead letters left, want 1", n)
	}
}
