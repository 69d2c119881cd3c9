package worker

import (
	"context"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// job is one delivery of a job as it moves through the middleware.
type job struct {
	Args     jobs.Args
	Op       jobs.Op
	ID       string
	Seq      uint64 // stream sequence
	Delivery int    // 1 for the first delivery
	Started  time.Time
	// Attempts counts handler calls in this delivery; Failures the failed
	// ones. The retry middleware updates both.
	Attempts int
	Failures []jobs.Failure
}

// handlerFunc runs a job; middleware wraps one around another.
type handlerFunc func(ctx context.Context, j *job) (handlers.Outcome, error)

// middleware adds one behaviour (retry, circuit breaking) around a handler.
type middleware func(handlerFunc) handlerFunc

// chain wraps h in mws, the first outermost.
func chain(h handlerFunc, mws ...middleware) handlerFunc {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// adapt turns a handlers.Handler into the innermost handlerFunc.
func adapt(h handlers.Handler) handlerFunc {
	return func(ctx context.Context, j *job) (handlers.Outcome, error) {
		return h.Handle(ctx, j.Args)
	}
}
