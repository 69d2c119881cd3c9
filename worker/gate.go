package worker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/clock"
)

// maxPause bounds the pause one 429 imposes on every call.
const maxPause = 5 * time.Minute

// gate stands between the worker and Clerk: every call from every job
// waits for the client-side rate limiter and for any Retry-After Clerk has
// sent (to any job: Clerk's limit is per key, so one 429 pauses the whole
// worker), and is timed for the metrics.
type gate struct {
	next    clerkapi.Sessions
	limiter *rate.Limiter // nil: no limit
	metrics *metrics
	// hold, when set, blocks a call while the circuit is open: a job that
	// passed the circuit just before it opened does not call Clerk while
	// it is open. The circuit's probe passes (withProbe).
	hold func(ctx context.Context) error

	mu         sync.Mutex
	pauseUntil time.Time
}

var _ clerkapi.Sessions = (*gate)(nil)

func newGate(next clerkapi.Sessions, perSecond float64, burst int, m *metrics) *gate {
	g := &gate{next: next, metrics: m}
	if perSecond > 0 {
		g.limiter = rate.NewLimiter(rate.Limit(perSecond), burst)
	}
	return g
}

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
	start := time.Now()
	for {
		g.mu.Lock()
		until := g.pauseUntil
		g.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			break
		}
		_, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(ctx, "retry_after",
			trace.WithAttributes(attribute.Int64("clerkjobs.retry_after_ms", d.Milliseconds())))
		err := clock.Sleep(ctx, d)
		span.End()
		if err != nil {
			return err
		}
	}
	if g.limiter != nil {
		if err := g.limiter.Wait(ctx); err != nil {
			return err
		}
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
			// A Retry-After pauses every call: bound what one answer can
			// do to the whole worker.
			ra := min(apiErr.RetryAfter, maxPause)
			if ra <= 0 {
				ra = time.Second
			}
			g.mu.Lock()
			if until := time.Now().Add(ra); until.After(g.pauseUntil) {
				g.pauseUntil = until
			}
			g.mu.Unlock()
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
	v, err := f()
	g.observe(op, start, err)
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
