package publishcli_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
)

// TestJobStoredInARecordStreamIsNotQueued: with a --prefix under the
// worker's record subjects (sessions.results), JetStream stores a job in
// the results or dead-letter stream, where no worker takes jobs from, and
// acknowledges it. publish said it was queued (exit 0), for a single job
// and for every line of a batch; sent again, the record stream refused it
// as one more on its subject, which publish called the jobs stream full. The acknowledgement names the stream: a
// record stream's is a job NOT queued, said as such (exit 4: nothing was
// queued), with what to do: --prefix set to the worker's subject prefix,
// not the same --prefix again in the command that continues a batch.
func TestJobStoredInARecordStreamIsNotQueued(t *testing.T) {
	file := writeFile(t, "batch.ndjson", "{\"session_id\":\"sess_1\"}\n{\"session_id\":\"sess_2\"}\n{\"session_id\":\"sess_3\"}\n")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"single", []string{"--prefix", "sessions.results", "revoke", "sess_1"}},
		{"single dlq", []string{"--prefix", "sessions.dlq", "revoke", "sess_1"}},
		{"batch", []string{"--prefix", "sessions.results", "revoke", "--file", file}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A server of its own. The second run is refused by the record
			// stream, which keeps one message a subject: that was said to
			// be the jobs stream full.
			h := newHarness(t)
			for range 2 {
				r := h.run(t, tc.args...)
				if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "NOT queued") || strings.Contains(r.stderr, "is full") ||
					strings.Contains(r.stdout, "queued on") || strings.Contains(r.stderr, "1 of 3") {
					t.Fatalf("publish %s: want exit 4 saying the job was NOT queued, not accepted: %v", strings.Join(tc.args, " "), r)
				}
				// What to do, in publish's words: the Go client's option
				// names no flag, and continuing under the same prefix
				// queues nothing.
				if !strings.Contains(r.stderr, "--prefix ") || strings.Contains(r.stderr, "WithSubjectPrefix") || strings.Contains(r.stderr, "--prefix "+tc.args[1]) {
					t.Fatalf("publish %s: want the --prefix to set, not this one again: %v", strings.Join(tc.args, " "), r)
				}
			}
		})
	}
}
