package publishcli_test

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// answerAfter is a terminal's input: before the operator's answer is
// read, meanwhile runs (the operator took a while to type it).
type answerAfter struct {
	once      sync.Once
	meanwhile func()
	answer    io.Reader
}

func (r *answerAfter) Read(p []byte) (int, error) {
	r.once.Do(r.meanwhile)
	return r.answer.Read(p)
}

// TestPurgeDeletesOnlyTheLettersConfirmed: purge shows what it selected
// and waits for "yes", as long as the operator takes. Sequences name
// letters only within one stream: if the dead-letter stream is deleted
// and created again meanwhile (the worker creates it at start), its new
// letters take the same sequences, and purging by sequence alone would
// delete jobs nobody selected or confirmed.
func TestPurgeDeletesOnlyTheLettersConfirmed(t *testing.T) {
	h := newHarness(t)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "junk-1", body: `{"session":1}`},
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "junk-2", body: `{"session":2}`})
	stdin := &answerAfter{answer: strings.NewReader("yes\n"), meanwhile: func() {
		testenv.RecreateStream(t, h.js, h.topo.DeadLetterStream) // in the test's goroutine: RunEnv reads stdin
		h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "keep-1"},
			letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "keep-2"})
	}}
	var out, errOut syncBuffer
	code := publishcli.RunEnv(t.Context(), []string{"dlq", "purge", "--class", "invalid"}, publishcli.Env{
		Stdin: stdin, Stdout: &out, Stderr: &errOut,
		Getenv:     func(k string) string { return map[string]string{"NATS_URL": h.url}[k] },
		IsTerminal: func(any) bool { return true },
	})
	if n := h.dlqCount(t); n != 2 {
		t.Fatalf("%d dead letters left, want the 2 that arrived after the confirmation (exit %d)\n--- stdout:\n%s--- stderr:\n%s", n, code, out.String(), errOut.String())
	}
	if code != publishcli.ExitPartial || !strings.Contains(out.String(), "kept 2") {
		t.Errorf("exit %d, stdout %q; want exit %d saying 2 were kept", code, out.String(), publishcli.ExitPartial)
	}
}

// TestReplayRunsOnlyTheLettersSelected: a replay by filter selects its
// letters, then replays them one by one, paced by --rate. If the
// dead-letter stream is deleted and created again meanwhile, its new
// letters take the selected sequences: replaying by sequence alone would
// run jobs nobody selected.
func TestReplayRunsOnlyTheLettersSelected(t *testing.T) {
	h := newHarness(t)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "chosen-1"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "chosen-2"})
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- publishcli.RunEnv(t.Context(), []string{"dlq", "replay", "--class", "exhausted", "--rate", "0.5"}, publishcli.Env{
			Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
			Getenv: func(k string) string { return map[string]string{"NATS_URL": h.url}[k] },
		})
	}()
	for deadline := time.Now().Add(10 * time.Second); len(h.jobsMsgs(t)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first letter was never replayed")
		}
	}
	// The first is replayed; the second waits for its turn (2 s).
	testenv.RecreateStream(t, h.js, h.topo.DeadLetterStream)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "other-1"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "other-2"})
	code := <-done
	for _, m := range h.jobsMsgs(t) {
		if strings.Contains(string(m.Data), "other-") {
			t.Errorf("replayed a letter nobody selected: %s", m.Data)
		}
	}
	if n := h.dlqCount(t); n != 2 || code != publishcli.ExitPartial {
		t.Errorf("%d dead letters left (want the 2 new ones), exit %d (want %d)\n--- stdout:\n%s--- stderr:\n%s", n, code, publishcli.ExitPartial, out.String(), errOut.String())
	}
}

// TestFilterListsKeepEveryValue: a filter flag given several values in one
// argument (one a line, as "$(cat ids.txt)" gives them, or with commas and
// spaces) selects every one; pflag's StringSlice kept the first line and
// dropped the rest unsaid. A filter given with no value at all (an empty
// variable) is refused: it would have selected nothing, or everything.
func TestFilterListsKeepEveryValue(t *testing.T) {
	h := newHarness(t)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "a"},
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "b"},
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "c"},
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "keep"})
	for _, empty := range [][]string{{"--job-id", ""}, {"--job-id", " \n"}, {"--class", ","}, {"--op", ""}, {"--code", ""}} {
		r := h.run(t, append([]string{"dlq", "purge", "--yes"}, empty...)...)
		if r.code != publishcli.ExitUsage || !strings.Contains(r.stderr, empty[0]+" is given with no value") {
			t.Errorf("purge %q: %v; want exit %d naming %s", empty, r, publishcli.ExitUsage, empty[0])
		}
	}
	if n := h.dlqCount(t); n != 4 {
		t.Fatalf("%d dead letters after refused purges, want 4", n)
	}
	r := h.run(t, "dlq", "purge", "--yes", "--job-id", "a\nb\r\n", "--job-id", "c, nothing")
	if r.code != 0 {
		t.Fatalf("purge: %v", r)
	}
	if n := h.dlqCount(t); n != 1 {
		t.Errorf("%d dead letters left, want only keep: %v", n, r)
	}
}

// TestPurgeOfAGoneLetterSaysSo: purging a letter that is gone already
// leaves the queue as asked, so it exits 0 (an interrupted purge run again
// must), where a replay of it exits 5 (its job was not sent). It said only
// "no dead letters match" and "1 of the given sequences are not in the
// dead-letter queue": now it says the letter is gone already, and a number
// past the stream's last sequence (mistyped?) apart.
func TestPurgeOfAGoneLetterSaysSo(t *testing.T) {
	h := newHarness(t)
	seqs := h.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "g1"},
		letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "g2"},
	)
	gone, kept := strconv.FormatUint(seqs[0], 10), strconv.FormatUint(seqs[1], 10)
	if r := h.run(t, "dlq", "purge", gone, "--yes"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	for _, tc := range []struct {
		name         string
		args         []string
		stdout       string
		stderr       []string
		left         int
		stderrAbsent string
	}{
		{"gone", []string{gone}, "nothing to purge", []string{"dead letter " + gone + " is gone already"}, 1, "past the last"},
		{"gone, json", []string{gone, "--json"}, `"not_found":1`, []string{"dead letter " + gone + " is gone already"}, 1, "past the last"},
		{"past the last", []string{"9999"}, "nothing to purge", []string{"sequence 9999 is past the last of the dead-letter stream (" + kept + ")"}, 1, "gone already"},
		{"one gone, one there", []string{kept, gone}, "purged 1 (1 was gone already)", []string{"dead letter " + gone + " is gone already"}, 0, "past the last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run(t, append([]string{"dlq", "purge", "--yes"}, tc.args...)...)
			if r.code != 0 || !strings.Contains(r.stdout, tc.stdout) || strings.Contains(r.stderr, tc.stderrAbsent) {
				t.Fatalf("want exit 0 and %q: %v", tc.stdout, r)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
			if n := h.dlqCount(t); n != tc.left {
				t.Errorf("%d dead letters left, want %d", n, tc.left)
			}
		})
	}
}
