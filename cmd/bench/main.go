// Command bench measures the worker on this machine and writes the results
// as markdown (into BENCHMARKS.md, between generated-section markers), JSON
// and a PNG plot of throughput against concurrency:
//
//	go run ./cmd/bench --out BENCHMARKS.md          # everything, ~10 minutes
//	go run ./cmd/bench --quick --scenario overhead  # smoke test, to stdout
//
// Scenarios: overhead, compare (with --baseline-bin), tracing, latency,
// ratelimit, bulk, backlog (see internal/bench). NATS is embedded and the Clerk emulator runs
// in-process; workers are separate processes of cmd/worker (--worker
// process, the default; --worker-bin measures another build) or
// in-process Workers (--worker inprocess, which --cpuprofile can profile).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/internal/bench"
	"github.com/clerkjobs/clerkjobs/internal/onceflag"
)

// Where a full run with --out writes its JSON and its plot.
const (
	jsonPath = "docs/bench-results.json"
	plotPath = "docs/bench-throughput.png"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	var out, cpuProfile, memProfile string
	fs.StringSliceVar(&o.Scenarios, "scenario", nil, "scenarios to run, comma-separated: "+strings.Join(bench.Scenarios, ", ")+" (default all; compare needs --baseline-bin)")
	fs.BoolVar(&o.Quick, "quick", false, "tiny sizes: a smoke test of the harness, not a measurement")
	fs.StringVar(&o.Worker, "worker", "process", "process: cmd/worker processes; inprocess: Workers inside the bench process (ratelimit always runs processes)")
	fs.StringVar(&o.WorkerBin, "worker-bin", "", "prebuilt cmd/worker binary, e.g. of an older commit (default: go build it)")
	fs.StringVar(&o.BaselineBin, "baseline-bin", "", "cmd/worker binary the compare scenario measures this one against, in turns (e.g. built from main before a change); adds compare to the default scenarios")
	fs.StringVar(&out, "out", "", "markdown file to write the results into (between bench markers), and without --quick "+jsonPath+" and "+plotPath+"; empty: markdown to stdout")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (use with --worker inprocess)")
	fs.StringVar(&memProfile, "memprofile", "", "write an allocation profile of the bench process (use with --worker inprocess)")
	fs.IntSliceVar(&o.Concurrency, "concurrency", nil, "concurrency sweep of the overhead and latency scenarios (default 1,16,256 and 1,8,32,64,128,256)")
	fs.DurationVar(&o.Duration, "duration", 0, "time per overhead and latency point (default 6s and 8s)")
	fs.IntVar(&o.Repeats, "repeat", 0, "runs of each overhead point; the median is reported (default 3)")
	onceflag.Watch(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := onceflag.Check(fs); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	o.Command = "go run ./cmd/bench " + strings.Join(args, " ")
	o.Log = stderr
	code := 0
	fail := func(err error) {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		code = 1
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err == nil {
			defer f.Close()
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fail(err)
			return code
		}
		defer pprof.StopCPUProfile()
	}
	if memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fail(err)
		if rep == nil || len(rep.Rows) == 0 {
			return code
		}
	}
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err == nil {
			err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
		}
		if err != nil {
			fail(err)
		}
	}
	if out == "" {
		fmt.Fprint(stdout, rep.Markdown(""))
		return code
	}
	// A quick run rewrites the markdown it is given, never the committed
	// data and plot.
	plotLink := ""
	if !o.Quick {
		if err := rep.WriteJSON(jsonPath); err != nil {
			fail(err)
		}
		switch err := rep.WritePlot(plotPath); {
		case err == nil:
			plotLink = plotPath
			if rel, err := filepath.Rel(filepath.Dir(out), plotPath); err == nil {
				plotLink = filepath.ToSlash(rel)
			}
		case !errors.Is(err, bench.ErrNoRows):
			fail(fmt.Errorf("plot: %w", err))
		}
	}
	if err := rep.WriteMarkdown(out, plotLink); err != nil {
		fail(err)
		return 1
	}
	fmt.Fprintf(stderr, "bench: results written to %s\n", out)
	return code
}
