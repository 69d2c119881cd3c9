package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

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

// errHandlerPanic marks the error of a handler that panicked.
var errHandlerPanic = errors.New("the handler panicked")

// recoverPanic turns a panic of the handler (a custom one's, say) into the
// job's error, outermost so that no retry repeats a call the handler may
// have made. Unrecovered, the runtime printed the panic's value, which may
// quote the job's secrets, to standard error, and the process died with
// every job in flight; now the value is the job's error, redacted as any
// other, and the job is dead-lettered as permanent.
func recoverPanic(log zerolog.Logger) middleware {
	return func(next handlerFunc) handlerFunc {
		return func(ctx context.Context, j *job) (a handlers.Answer, err error) {
			defer func() {
				if r := recover(); r != nil {
					a, err = handlers.Answer{}, fmt.Errorf("%w: %v", errHandlerPanic, r)
					// The stack names functions and lines, never the
					// values of strings. A panic raised again from another
					// goroutine (a revoke_all's revoke) brings that one's,
					// cleared as text (a custom handler may make one).
					stack := string(debug.Stack())
					if p, ok := r.(*handlers.Panic); ok && p != nil {
						stack = j.redact(string(p.Stack)) + "\nraised again in:\n" + stack
					}
					log.Error().Str("job_id", j.ID).Str("op", string(j.Op)).Str("error", j.redact(err.Error())).
						Str("stack", stack).Msg("the handler panicked; the job is dead-lettered")
				}
			}()
			return next(ctx, j)
		}
	}
}

// adapt turns a handlers.Handler into the innermost handlerFunc.
func adapt(h handlers.Handler) handlerFunc {
	return func(ctx context.Context, j *job) (handlers.Answer, error) {
		return h.Handle(ctx, j.Args)
	}
}
