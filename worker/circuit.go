package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// circuit stops all work while Clerk rejects the secret key: no job is to
// blame for that, so none may be retried into the dead-letter queue. While
// open, the worker fetches nothing and jobs it holds wait (kept alive); a
// prober asks Clerk every interval and closes the circuit once the key is
// accepted.
type circuit struct {
	// probe reports whether an answer proved the key accepted, and the
	// error whenever it did not (Worker.probe).
	probe    func(ctx context.Context) (accepted bool, err error)
	interval time.Duration
	log      zerolog.Logger
	gauge    prometheus.Gauge // 1 while open

	open  *level
	mu    sync.Mutex
	cause string
}

func newCircuit(probe func(context.Context) (bool, error), interval time.Duration, log zerolog.Logger, gauge prometheus.Gauge) *circuit {
	return &circuit{probe: probe, interval: interval, log: log, gauge: gauge, open: newLevel()}
}

// Wait returns once the circuit is closed, or ctx's error.
func (c *circuit) Wait(ctx context.Context) error { return c.open.waitOff(ctx) }

// Open reports whether the circuit is open, and why.
func (c *circuit) Open() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open.IsOn() {
		return false, ""
	}
	return true, c.cause
}

// trip opens the circuit (once) and starts probing until ctx ends.
func (c *circuit) trip(ctx context.Context, err error) {
	c.mu.Lock()
	if !c.open.set(true) {
		c.mu.Unlock()
		return // already open
	}
	cause := causeOf(err)
	c.cause = cause
	c.mu.Unlock()
	c.log.Error().Str("circuit", "open").Str("error", err.Error()).
		Msg(cause + ": stopped taking jobs; holding the ones in flight; probing until Clerk answers again")
	c.gauge.Set(1)
	go c.probeUntilClosed(ctx)
}

func (c *circuit) probeUntilClosed(ctx context.Context) {
	for range clock.Ticks(ctx, c.interval) {
		accepted, err := c.probe(ctx)
		if !accepted {
			// Only an answer proves the key accepted: a dropped connection
			// or a 5xx says nothing, and closing on it would send held jobs
			// back to a Clerk that still refuses them.
			msg := "probe: still " + causeOf(err)
			if clerkapi.ClassOf(err) != clerkapi.Systemic {
				msg = "probe: no answer that proves the key accepted; staying open"
			}
			c.log.Warn().Str("circuit", "open").Str("error", err.Error()).Msg(msg)
			continue
		}
		c.mu.Lock()
		c.open.set(false)
		c.cause = ""
		c.mu.Unlock()
		c.log.Info().Str("circuit", "closed").Msg("probe: Clerk answers and accepts the secret key again; resuming")
		c.gauge.Set(0)
		return
	}
}

// causeOf says why the circuit opened in the worker's own words, with the
// HTTP status and Clerk's error code (a bounded token), never the answer's
// text, which /readyz would show to anyone who asks. A redirect (Clerk's
// API never sends one) points at the base URL, anything else at the key.
func causeOf(err error) string {
	e, ok := asAPIError(err)
	if !ok {
		return "Clerk refused the request"
	}
	status := fmt.Sprintf("HTTP %d", e.StatusCode)
	if code := e.Code(); code != "" && isToken(code) {
		status += " " + code
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		return "the Clerk base URL answers with a redirect, which Clerk's API never sends (" + status + "; check CLERK_API_URL)"
	}
	if e.HasCode("api_version_invalid") {
		return "Clerk refuses the API version the worker sends (" + status + "; Clerk may have retired it: upgrade the worker)"
	}
	return "Clerk rejects the secret key (" + status + "; check CLERK_SECRET_KEY)"
}

// isToken reports whether s is a short code of lower-case letters, digits
// and underscores, such as Clerk's error codes.
func isToken(s string) bool {
	return len(s) <= 64 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

// maxHolds is how often one job may trip the circuit. A job still refused
// with 401/403 after the prober saw the key accepted that often is refused
// for its own sake (an operation the instance does not allow), not the
// key's: it is dead-lettered instead of stalling the worker forever.
const maxHolds = 3

// keyAccepted asks Clerk, before a refresh's 401 opens the circuit,
// whether it accepts the key: a refresh's 401 is, as Clerk documents it,
// about the tokens the job carries (under the same AuthenticationInvalid
// answer as a refused key's, and with codes beyond those Class knows), and
// taken for the key's it stopped every tenant's jobs three times over for
// one publisher's bad tokens. A redirect or a refused API version is not
// a 401, and no answer to the probe proves nothing: the circuit opens.
func (c *circuit) keyAccepted(ctx context.Context, err error) bool {
	if e, ok := asAPIError(err); !ok || e.StatusCode != http.StatusUnauthorized {
		return false
	}
	accepted, _ := c.probe(ctx)
	return accepted
}

// errRejectedJob marks such a job (wrapped with Clerk's error); the
// settlement treats it as permanent.
var errRejectedJob = errors.New("refused with an authorization error although Clerk accepts the key")

// middleware holds a job whose call failed systemically until the circuit
// closes, then runs it again. The job is not redelivered meanwhile, so its
// delivery budget is untouched.
func (c *circuit) middleware(ctx context.Context) middleware {
	return func(next handlerFunc) handlerFunc {
		return func(jctx context.Context, j *job) (handlers.Answer, error) {
			for holds := 0; ; holds++ {
				if err := c.Wait(jctx); err != nil {
					return handlers.Answer{}, err
				}
				out, err := next(jctx, j)
				if clerkapi.ClassOf(err) != clerkapi.Systemic || jctx.Err() != nil {
					return out, err
				}
				if holds >= maxHolds || j.Op == jobs.OpRefresh && c.keyAccepted(jctx, err) {
					return out, withReason(errRejectedJob, err)
				}
				// The job is held: its trace says why it waits.
				trace.SpanFromContext(jctx).AddEvent("circuit_open")
				c.trip(ctx, err)
			}
		}
	}
}
