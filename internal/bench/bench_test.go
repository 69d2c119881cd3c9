package bench_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/bench"
)

// TestQuickOverheadRun keeps the harness from rotting: a --quick run of the
// overhead scenario at concurrency 1, in-process, and every output. It
// checks shapes, never timings.
func TestQuickOverheadRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log bytes.Buffer
	rep, err := bench.Run(ctx, bench.Options{Scenarios: []string{"overhead"}, Quick: true, Worker: "inprocess",
		Concurrency: []int{1}, Command: "go test", Log: &log})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if len(rep.Rows) != 3 || len(rep.Targets) != 1 {
		t.Fatalf("%d rows and %d targets, want 3 and 1: %+v", len(rep.Rows), len(rep.Targets), rep.Rows)
	}
	for _, r := range rep.Rows {
		if r.JobsPerS <= 0 || r.Jobs == 0 || r.P50MS <= 0 || r.P99MS < r.P50MS {
			t.Errorf("implausible row: %+v", r)
		}
	}
	if w := rep.Rows[2]; w.Name != "worker" || w.Ratio <= 0 {
		t.Errorf("third row is not the worker with its ratio: %+v", w)
	}

	dir := t.TempDir()
	plot := filepath.Join(dir, "plot.png")
	if err := rep.WritePlot(plot); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("plot is not a PNG: %v", err)
	}
	if err := rep.WriteJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}

	// The generated block replaces its previous version and keeps the
	// hand-written text around it.
	md := filepath.Join(dir, "BENCHMARKS.md")
	old := "# Benchmarks\n\nintro\n\n" + bench.BeginMarker + "\nold tables\n" + bench.EndMarker + "\n\n## Analysis\n\nkept\n"
	if err := os.WriteFile(md, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(md, "plot.png"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	got := string(b)
	for _, want := range []string{"intro", "## Analysis\n\nkept", "| 1 | raw JetStream |", "| 1 | raw HTTP |", "| 1 | worker |", "![throughput against concurrency](plot.png)"} {
		if !strings.Contains(got, want) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old tables") || strings.Count(got, bench.BeginMarker) != 1 {
		t.Errorf("the old generated block was not replaced:\n%s", got)
	}
}

// TestSetUpFailureIsAnError: a worker that cannot be built (here, the
// build's context is over) is said, with what failed, and the set-up made
// so far is taken down; it used to panic on a nil environment.
func TestSetUpFailureIsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var log bytes.Buffer
	_, err := bench.Run(ctx, bench.Options{Scenarios: []string{"overhead"}, Quick: true, Worker: "process",
		Concurrency: []int{1}, Command: "go test", Log: &log})
	if err == nil || !strings.Contains(err.Error(), "go build") {
		t.Fatalf("run with the build's context over: %v, want the go build error", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []bench.Options{{Scenarios: []string{"nope"}}, {Worker: "threads"}, {Concurrency: []int{0}}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestRateTable checks that a rate row shows what issue 13 asks of it
// (rate against the limit, 429s, worst window) and that a row the
// emulator cannot run says so instead of showing numbers.
func TestRateTable(t *testing.T) {
	rep := &bench.Report{Rows: []bench.Row{
		{Scenario: "ratelimit", Name: "3 replicas, uneven load, 1 killed", Replicas: 3, Load: "uneven", Killed: 1, RateLimit: "1000/10s",
			ClerkLimit: "1000 per 10 s, fixed windows", DurationS: 40, JobsPerS: 98.5, Ratio: 0.985, Status429: 2, WorstWindow: 1003, WorkerCPUUS: 412},
		{Scenario: "ratelimit", Name: "1 replica, even load", Replicas: 1, Load: "even", RateLimit: "1000/10s",
			ClerkLimit: "1000 per 10 s, sliding window", Note: "not run: no sliding mode"},
	}}
	md := rep.Markdown("")
	for _, want := range []string{
		"| 3 | uneven | 1 of 3 | 1000 per 10 s, fixed windows | 1000/10s | 40 | 98.50 | 98.5% | 2 | 1003 | 412 | |",
		"| 1 | even | – | 1000 per 10 s, sliding window | 1000/10s | – | – | – | – | – | – | not run: no sliding mode |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("rate table lacks\n%s\nin\n%s", want, md)
		}
	}
}
