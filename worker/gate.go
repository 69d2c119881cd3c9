package worker

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
)

// gate stands between the worker and Clerk: every call from every job
// waits for the key's rate budget — shared by the fleet, or this process's
// (see internal/ratebudget) — which a 429 anywhere pauses for its
// Retry-After, and is timed for the metrics.
type gate struct {
	next    clerkapi.Sessions
	budget  atomic.Pointer[ratebudget.Budget] // nil: no limit
	metrics *metrics
	// hold, when set, blocks a call while the circuit is open: a job that
	// passed the circuit just before it opened does not call Clerk while
	// it is open. The circuit's probe passes (withProbe).
	hold func(ctx context.Context) error
	// latency is an average of recent Clerk call durations, in
	// nanoseconds, for sizing revoke_all's concurrency.
	latency atomic.Int64
}

var _ clerkapi.Sessions = (*gate)(nil)

func newGate(next clerkapi.Sessions, m *metrics) *gate { return &gate{next: next, metrics: m} }

type probeKey struct{}

// withProbe marks the circuit's probe, the one call that goes while the
// circuit is open.
func withProbe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

// wait blocks until a call may go.
func (g *gate) wait(ctx context.Context) error {
	if g.hold != nil && ctx.Value(probeKey{}) == nil {
		if err := g.hold(ctx); err != nil {
			return err
		}
	}
	b := g.budget.Load()
	if b == nil {
		return nil
	}
	start := time.Now()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		if until := b.PausedUntil(); until.After(start) {
			_, span := span.TracerProvider().Tracer(tracerName).Start(ctx, "retry_after",
				trace.WithAttributes(attribute.Int64("clerkjobs.retry_after_ms", time.Until(until).Milliseconds())))
			defer span.End()
		}
	}
	if err := b.Wait(ctx); err != nil {
		return err
	}
	if waited := time.Since(start); waited > time.Millisecond {
		g.metrics.rateLimitWait.Add(waited.Seconds())
		g.metrics.rateLimitWaits.Inc()
		if j := jobOf(ctx); j != nil {
			j.rateWait.Add(int64(waited))
		}
	}
	return nil
}

// observe records a call and, on a 429, pauses every call for Retry-After
// (1 s when Clerk sends none).
func (g *gate) observe(op string, start time.Time, err error) {
	status := "200"
	var apiErr *clerkapi.Error
	switch {
	case errors.As(err, &apiErr):
		status = strconv.Itoa(apiErr.StatusCode)
		if apiErr.StatusCode == 429 {
			// Clerk's limit is the key's: a Retry-After pauses every call
			// of every worker sharing the budget (bounded by maxPause).
			ra := apiErr.RetryAfter
			if ra <= 0 {
				ra = time.Second
			}
			if b := g.budget.Load(); b != nil {
				b.Throttled(ra)
			}
			g.metrics.retryAfterPauses.Inc()
		}
	case errors.Is(err, clerkapi.ErrInvalidInput):
		status = "invalid"
	case err != nil:
		status = "error"
	}
	g.metrics.apiLatency.WithLabelValues(op, status).Observe(time.Since(start).Seconds())
}

// call runs one Clerk call through the gate.
func call[T any](ctx context.Context, g *gate, op string, f func() (T, error)) (T, error) {
	if err := g.wait(ctx); err != nil {
		var zero T
		return zero, err
	}
	start := time.Now()
	if j := jobOf(ctx); j != nil {
		j.calls.Add(1)
	}
	v, err := f()
	g.observe(op, start, err)
	if err == nil {
		// A moving average over the last calls or so: enough to size
		// concurrency, cheap to keep.
		d := int64(time.Since(start))
		old := cmp.Or(g.latency.Load(), d) // the first call's own
		g.latency.Store(old + (d-old)/16)
	}
	return v, err
}

func (g *gate) ListSessions(ctx context.Context, p clerkapi.ListParams) (*clerkapi.SessionList, error) {
	return call(ctx, g, "list", func() (*clerkapi.SessionList, error) { return g.next.ListSessions(ctx, p) })
}

func (g *gate) CreateSession(ctx context.Context, p clerkapi.CreateParams) (*clerkapi.Session, error) {
	return call(ctx, g, "create", func() (*clerkapi.Session, error) { return g.next.CreateSession(ctx, p) })
}

func (g *gate) GetSession(ctx context.Context, id string) (*clerkapi.Session, error) {
	return call(ctx, g, "get", func() (*clerkapi.Session, error) { return g.next.GetSession(ctx, id) })
}

func (g *gate) RefreshSession(ctx context.Context, id string, p clerkapi.RefreshParams) (*clerkapi.RefreshResult, error) {
	return call(ctx, g, "refresh", func() (*clerkapi.RefreshResult, error) { return g.next.RefreshSession(ctx, id, p) })
}

func (g *gate) RevokeSession(ctx context.Context, id string) (*clerkapi.Session, error) {
	return call(ctx, g, "revoke", func() (*clerkapi.Session, error) { return g.next.RevokeSession(ctx, id) })
}

func (g *gate) CreateSessionToken(ctx context.Context, id string, p clerkapi.TokenParams) (*clerkapi.Token, error) {
	return call(ctx, g, "token", func() (*clerkapi.Token, error) { return g.next.CreateSessionToken(ctx, id, p) })
}

func (g *gate) CreateSessionTokenFromTemplate(ctx context.Context, id, tmpl string, p clerkapi.TokenParams) (*clerkapi.Token, error) {
	return call(ctx, g, "token_template", func() (*clerkapi.Token, error) {
		return g.next.CreateSessionTokenFromTemplate(ctx, id, tmpl, p)
	})
}

// users is the gate as a clerkapi.Users, nil when the client behind it
// cannot lock users.
func (g *gate) users() clerkapi.Users {
	if _, ok := g.next.(clerkapi.Users); !ok {
		return nil
	}
	return g
}

func (g *gate) LockUser(ctx context.Context, userID string) (*clerkapi.User, error) {
	return call(ctx, g, "lock_user", func() (*clerkapi.User, error) { return g.next.(clerkapi.Users).LockUser(ctx, userID) })
}

func (g *gate) UnlockUser(ctx context.Context, userID string) (*clerkapi.User, error) {
	return call(ctx, g, "unlock_user", func() (*clerkapi.User, error) { return g.next.(clerkapi.Users).UnlockUser(ctx, userID) })
}

func asAPIError(err error) (*clerkapi.Error, bool) {
	var e *clerkapi.Error
	ok := errors.As(err, &e)
	return e, ok
}
