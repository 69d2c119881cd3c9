// Command publish submits Clerk session jobs to the clerkjobs worker, waits
// for their results, works the dead-letter queue and shows the system's
// state. Run `publish --help`; the exit statuses are listed there.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/internal/tracing"
	"github.com/clerkjobs/clerkjobs/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first interrupt the command winds down (finishing the
	// dead letter it is replaying, reporting what was done); a second one
	// kills it the default way.
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, stop))
}

// run is main with its deferred calls: tracing's spans are flushed before
// the process exits.
func run(ctx context.Context, stop func()) int {
	defer stop()
	// The SDK's own reports (a malformed OTEL_* value, a failed export),
	// cleared of the credentials they may quote.
	tracing.RouteSDKReports(func(line string) { fmt.Fprintf(os.Stderr, "publish: tracing: %s\n", line) })
	tp, err := tracing.New(ctx, tracing.WithServiceName("clerkjobs-publish"), tracing.WithServiceVersion(worker.Version))
	if err != nil {
		fmt.Fprintf(os.Stderr, "publish: %s\n", text.Words(redact.URLCredentials(err.Error()), 256))
		return publishcli.ExitUsage
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}()
	return publishcli.RunEnv(ctx, os.Args[1:], publishcli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, TracerProvider: tp.TracerProvider()})
}
