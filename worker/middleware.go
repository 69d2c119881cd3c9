package worker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// job is one delivery of a job as it moves through the middleware.
type job struct {
	Args jobs.Args
	Op   jobs.Op
	// Tenant is the tenant the subject names ("" outside tenants), as it
	// came: Key.Tenant is the checked one.
	Tenant   string
	ID       string
	ReplyTo  string    // checked: where the answer may go ("" for nowhere)
	Seq      uint64    // stream sequence
	Stored   time.Time // when JetStream stored it: with Seq, the stored message
	Delivery int       // 1 for the first delivery
	Started  time.Time
	// Key names the job's one terminal record.
	Key jobs.RecordKey
	// secrets are the job's secret values (a refresh job's tokens), to be
	// cleared from any text about it.
	secrets []string
	// ctx carries the delivery's span, whose trace records and replies
	// carry on.
	ctx context.Context
	// rateWait sums, in nanoseconds, what the job's calls waited for the
	// rate limiter; calls counts the Clerk calls it made.
	rateWait atomic.Int64
	calls    atomic.Int64
	// Attempts counts handler calls in this delivery; Failures the failed
	// ones. The retry middleware updates both.
	Attempts int
	Failures []jobs.Failure
}

func (j *job) stored() msgIdentity { return msgIdentity{j.Seq, j.Stored.UnixNano()} }

// handlerFunc runs a job; middleware wraps one around another.
type handlerFunc func(ctx context.Context, j *job) (handlers.Answer, error)

// middleware adds one behaviour (retry, circuit breaking) around a handler.
type middleware func(handlerFunc) handlerFunc

// chain wraps h in mws, the first outermost.
func chain(h handlerFunc, mws ...middleware) handlerFunc {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

type jobKey struct{}

// withJob gives the handler's context the job, for the worker's own
// handler plumbing (revoke_all's progress and per-session dead letters).
func withJob(ctx context.Context, j *job) context.Context { return context.WithValue(ctx, jobKey{}, j) }

// jobOf is the job withJob stored, or nil.
func jobOf(ctx context.Context) *job {
	j, _ := ctx.Value(jobKey{}).(*job)
	return j
}

// adapt turns a handlers.Handler into the innermost handlerFunc.
func adapt(h handlers.Handler) handlerFunc {
	return func(ctx context.Context, j *job) (handlers.Answer, error) {
		return h.Handle(ctx, j.Args)
	}
}
