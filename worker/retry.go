package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// RetryPolicy is the backoff for retryable errors. Within one delivery the
// worker retries with exponential backoff and jitter until DeliveryBudget is
// spent, keeping the delivery alive; then it naks the job with NakDelay,
// which grows with each delivery, so other jobs run meanwhile and a crash
// loses no more than one delivery's work.
type RetryPolicy struct {
	// Initial is the first backoff within a delivery.
	Initial time.Duration
	// Max caps one backoff within a delivery.
	Max time.Duration
	// Multiplier grows the backoff after each retry.
	Multiplier float64
	// Jitter randomizes each backoff by ±Jitter (0 to 1).
	Jitter float64
	// DeliveryBudget is how long one delivery keeps retrying before it
	// naks the job (0: one attempt per delivery).
	DeliveryBudget time.Duration
	// NakDelay is the redelivery delay after the first delivery; it doubles
	// with each further delivery, up to NakDelayMax.
	NakDelay    time.Duration
	NakDelayMax time.Duration
}

// DefaultRetryPolicy: 200 ms doubling to 5 s within a delivery for up to
// 15 s, then redeliveries after 5 s, 10 s, 20 s, ... up to 2 min.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Initial:        200 * time.Millisecond,
		Max:            5 * time.Second,
		Multiplier:     2,
		Jitter:         0.5,
		DeliveryBudget: 15 * time.Second,
		NakDelay:       5 * time.Second,
		NakDelayMax:    2 * time.Minute,
	}
}

// Validate names the first setting that cannot work.
func (p RetryPolicy) Validate() error {
	switch {
	case p.Initial <= 0:
		return fmt.Errorf("backoff initial %s: must be positive", p.Initial)
	case p.Max < p.Initial:
		return fmt.Errorf("backoff max %s: must be at least backoff initial %s", p.Max, p.Initial)
	// Negated, so that NaN (false in every comparison) is refused too: it
	// made every backoff 0.
	case !(p.Multiplier >= 1):
		return fmt.Errorf("backoff multiplier %g: must be at least 1", p.Multiplier)
	case !(p.Jitter >= 0 && p.Jitter <= 1):
		return fmt.Errorf("backoff jitter %g: must be 0 to 1", p.Jitter)
	case p.Max > jitterCeiling(math.MaxInt64, p.Jitter):
		// The backoff library randomizes the wait in float64 and converts
		// it back (cenkalti/backoff's getRandomValueFromInterval): past a
		// time.Duration it comes out negative, and Clerk is retried without
		// pause.
		return fmt.Errorf("backoff max %s: must be at most %s: a wait is randomized up to %g times it (jitter %g), and a longer one overflows a time.Duration, leaving no pause between retries",
			p.Max, jitterCeiling(math.MaxInt64, p.Jitter), 1+p.Jitter, p.Jitter)
	case p.DeliveryBudget < 0:
		return fmt.Errorf("retry budget per delivery %s: must not be negative", p.DeliveryBudget)
	case p.NakDelay <= 0:
		return fmt.Errorf("nak delay %s: must be positive", p.NakDelay)
	case p.NakDelayMax < p.NakDelay:
		return fmt.Errorf("nak delay max %s: must be at least nak delay %s", p.NakDelayMax, p.NakDelay)
	case p.NakDelayMax > jitterCeiling(time.Until(lastUnixNano()), p.Jitter):
		// JetStream notes when to redeliver a naked job as Unix nanoseconds,
		// now plus the delay (processNak in nats-server's consumer.go), an
		// int64: past 2262 it wraps, and the job comes back at once.
		return fmt.Errorf("nak delay max %s: must be at most %s: a delay is randomized up to %g times it (jitter %g), and JetStream cannot redeliver later than %s (it keeps the time as int64 Unix nanoseconds)",
			p.NakDelayMax, jitterCeiling(time.Until(lastUnixNano()), p.Jitter), 1+p.Jitter, p.Jitter, lastUnixNano().UTC().Format(time.DateOnly))
	}
	return nil
}

// lastUnixNano is the last time int64 Unix nanoseconds hold.
func lastUnixNano() time.Time { return time.Unix(0, math.MaxInt64) }

// jitterCeiling is the largest base, to the hour, that a randomization by
// ±jitter keeps within limit.
func jitterCeiling(limit time.Duration, jitter float64) time.Duration {
	f := float64(limit) / (1 + jitter)
	if f >= float64(limit) {
		return limit.Truncate(time.Hour)
	}
	return time.Duration(f).Truncate(time.Hour)
}

// newBackOff is the within-delivery backoff.
func (p RetryPolicy) newBackOff(c clock.Clock) backoff.BackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.Max,
		MaxElapsedTime:      p.DeliveryBudget,
		Stop:                backoff.Stop,
		Clock:               c, // elapsed time on our clock
	}
	if p.DeliveryBudget == 0 {
		return &backoff.StopBackOff{}
	}
	b.Reset()
	return b
}

// nakDelay is the redelivery delay after delivery number delivery (1-based).
func (p RetryPolicy) nakDelay(delivery int) time.Duration {
	d := float64(p.NakDelay) * math.Pow(2, float64(max(delivery-1, 0)))
	d = min(d, float64(p.NakDelayMax))
	if p.Jitter > 0 {
		d *= 1 + p.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// maxThrottled bounds the 429 answers one call waits out in a delivery.
// Waiting for a 429's Retry-After is throttling, not failure, so it does
// not spend the delivery's retry budget; this bound keeps a storm that
// never ends from holding the delivery forever.
const maxThrottled = 50

// do calls fn until it succeeds, fails with an error that is not
// Retryable, or the delivery's budget is spent, sleeping the backoff in
// between: a 429's Retry-After instead, outside the budget (see
// maxThrottled); for any other answer with a Retry-After (a 503), the
// longer of the two, within the budget, so that a failing Clerk cannot
// hold a delivery for hours. onFail sees every failure and the wait before
// the next try (0 when there is none).
func (p RetryPolicy) do(ctx context.Context, c clock.Clock, fn func() error, onFail func(err error, wait time.Duration)) error {
	b := p.newBackOff(c)
	throttled := 0
	for {
		err := fn()
		if err == nil {
			return nil
		}
		// ErrUnsupported is a handler's, not Clerk's nor the transport's
		// (which ClassOf takes any other error for): no try runs the job.
		if clerkapi.ClassOf(err) != clerkapi.Retryable || errors.Is(err, handlers.ErrUnsupported) || ctx.Err() != nil {
			onFail(err, 0)
			return err
		}
		// At most the budget's max pause, as every other call waits: a
		// day's Retry-After would hold the delivery for a day.
		ra := min(clerkapi.RetryAfterOf(err), ratebudget.DefaultMaxPause)
		var wait time.Duration
		if ra > 0 && throttledBy(err) && throttled < maxThrottled {
			throttled++
			wait = ra
		} else if wait = b.NextBackOff(); wait == backoff.Stop {
			onFail(err, 0)
			return err
		} else {
			wait = max(wait, ra)
		}
		onFail(err, wait)
		_, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(ctx, "backoff",
			trace.WithAttributes(attribute.String("error.type", clerkapi.ClassOf(err).String()), attribute.Int64("clerkjobs.backoff_ms", wait.Milliseconds())))
		serr := c.Sleep(ctx, wait)
		span.End()
		if serr != nil {
			// Stopped while waiting (shutdown): say so, so that the job is
			// handed back rather than judged on this delivery's failure.
			return fmt.Errorf("%w (retry interrupted after: %v)", serr, err)
		}
	}
}

// throttledBy reports whether err is Clerk's rate limit (429), whose
// Retry-After is a wait, not a failure.
func throttledBy(err error) bool {
	e, ok := asAPIError(err)
	return ok && e.StatusCode == http.StatusTooManyRequests
}

// retry runs the handler again after retryable errors (RetryPolicy.do),
// recording every attempt and failure on the job. Errors of other classes
// pass straight through.
func retry(p RetryPolicy, c clock.Clock, onRetry func(j *job, err error, wait time.Duration)) middleware {
	return func(next handlerFunc) handlerFunc {
		return func(ctx context.Context, j *job) (handlers.Answer, error) {
			var out handlers.Answer
			err := p.do(ctx, c, func() error {
				j.Attempts++
				var err error
				out, err = next(clerkapi.ContextWithAttempt(ctx, j.Attempts), j)
				return err
			}, func(err error, wait time.Duration) {
				j.Failures = append(j.Failures, failureOf(c.Now(), err))
				if wait > 0 && onRetry != nil {
					onRetry(j, err, wait)
				}
			})
			return out, err
		}
	}
}

// failureOf records an error for a dead letter's history.
func failureOf(at time.Time, err error) jobs.Failure {
	f := jobs.Failure{At: at.UTC(), Error: err.Error()}
	// The job's secrets are redacted when the failure is recorded (job.redact).
	if e, ok := asAPIError(err); ok {
		f.Status, f.Code, f.TraceID = e.StatusCode, e.Code(), e.TraceID
	}
	return f
}
