// Command publish submits Clerk session jobs to the clerkjobs worker, waits
// for their results, works the dead-letter queue and shows the system's
// state. Run `publish --help`; the exit statuses are listed there.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
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
	code := publishcli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
