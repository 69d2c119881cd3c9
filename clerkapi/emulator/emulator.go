package emulator

import (
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultSecretKey is the secret key an Emulator accepts when
// WithSecretKeys is not given. It is not a secret: it only works here.
const DefaultSecretKey = "sk_test_emulator"

// DefaultIssuer is the iss claim of the tokens the emulator signs. It
// starts with "https://clerk." so that the official SDKs' issuer check
// accepts it.
const DefaultIssuer = "https://clerk.emulator.local"

// Token lifetimes and session timings.
const (
	// DefaultTokenLifetime is the lifetime of a session token (Clerk's
	// default) and of a template token whose template gives none.
	DefaultTokenLifetime = 60 * time.Second
	// SessionLifetime is the time from creation to a session's expire_at.
	SessionLifetime = 7 * 24 * time.Hour
	// SessionAbandonAfter is the time from creation to abandon_at.
	SessionAbandonAfter = 30 * 24 * time.Hour
	// DefaultCallLogLimit is how many calls the log keeps (the newest).
	DefaultCallLogLimit = 100_000
	// DefaultRateWindow is the window used when a rate limit is given
	// without one: Clerk's 10 s.
	DefaultRateWindow = 10 * time.Second
)

// Emulator is an in-memory Clerk Backend API for the Sessions endpoints,
// plus GET /v1/jwks and the control API under /_emulator/. It is an
// http.Handler; NewServer serves it on a local port. All methods are safe
// for concurrent use. Create it with New.
type Emulator struct {
	keys         map[keyHash]keyInfo // accepted secret keys, by SHA-256; read-only after New
	templates    map[string]template // read-only after New
	strictRevoke bool
	issuer       string        // the iss claim of signed tokens
	lockout      time.Duration // how long a lock holds; < 0: until unlocked
	now          func() time.Time
	log          zerolog.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	sign signer

	mu sync.RWMutex
	st store

	cfgMu  sync.RWMutex
	faults Faults

	limiter rateLimiter
	calls   callLog
}

// azp is the azp claim of the tokens the emulator issues itself (a
// RefreshSession token carries its request_origin instead).
const azp = "http://localhost:3000"

// keyHash identifies a secret key without keeping it: the emulator stores
// only SHA-256 digests of the keys it accepts, so no secret can leak from
// its memory into logs or formatted values.
type keyHash [sha256.Size]byte

type keyInfo struct {
	production bool // an sk_live_ key: a production instance
}

type template struct {
	claims   map[string]any
	lifetime time.Duration
}

// Option configures an Emulator. Options are applied in order, before New
// fills in defaults for what they left unset.
type Option func(*Emulator)

// WithSecretKeys sets the secret keys the emulator accepts as bearer
// tokens, replacing DefaultSecretKey. A key starting with sk_live_ stands
// for a production instance, where createSession is refused (400
// request_invalid_for_environment) as on Clerk. Empty keys are ignored.
func WithSecretKeys(keys ...string) Option {
	return func(e *Emulator) {
		for _, k := range keys {
			if k = strings.TrimSpace(k); k != "" {
				e.keys[sha256.Sum256([]byte(k))] = keyInfo{production: strings.HasPrefix(k, "sk_live_")}
			}
		}
	}
}

// WithLatency delays every API call by fixed plus a uniformly random
// duration in [0, jitter). It sets Faults.Latency and Faults.Jitter.
func WithLatency(fixed, jitter time.Duration) Option {
	return func(e *Emulator) { e.faults.Latency, e.faults.Jitter = fixed, jitter }
}

// WithRateLimit allows n API calls per window and per secret key, counted
// as WithRateLimitMode says (by default in fixed windows that start with
// the first call after the previous window ended). Beyond that the
// emulator answers 429 too_many_requests with Retry-After set to the
// seconds until a call would be accepted again (rounded up, at least 1).
// Calls that fail authentication are not counted. n <= 0 disables the
// limit; window <= 0 means DefaultRateWindow. Clerk's own limits are 1000
// per 10 s for production instances and 100 per 10 s for development ones.
func WithRateLimit(n int, window time.Duration) Option {
	return func(e *Emulator) { e.limiter.set(n, window) }
}

// RateLimitMode is how the rate limit counts calls. Clerk does not
// document whether its window is fixed or sliding, so a client that must
// never draw a 429 is tested against both.
type RateLimitMode string

const (
	// FixedWindow counts calls in consecutive windows, each starting with
	// the first call after the previous one ended: n calls at the end of
	// one window and n at the start of the next are all accepted. The
	// default.
	FixedWindow RateLimitMode = "fixed"
	// SlidingWindow accepts a call only while fewer than n calls were
	// accepted in the window that ends with it, so that no interval of
	// the window's length ever holds more than n accepted calls.
	SlidingWindow RateLimitMode = "sliding"
)

// ParseRateLimitMode reads "fixed" or "sliding".
func ParseRateLimitMode(s string) (RateLimitMode, error) {
	switch m := RateLimitMode(strings.TrimSpace(s)); m {
	case FixedWindow, SlidingWindow:
		return m, nil
	}
	return "", fmt.Errorf("rate limit mode %q is not fixed or sliding", s)
}

// WithRateLimitMode sets how the rate limit counts calls (FixedWindow when
// not given; an unknown mode also means FixedWindow).
func WithRateLimitMode(m RateLimitMode) Option {
	return func(e *Emulator) { e.limiter.setMode(m) }
}

// WithFaults sets the initial faults. Out-of-range values are clamped (see
// SetFaults). It replaces what WithLatency set if given after it.
func WithFaults(f Faults) Option {
	return func(e *Emulator) { e.faults = f }
}

// WithSeed makes the emulator's randomness deterministic: ids, refresh
// tokens, trace ids and fault decisions. Given the same seed and the same
// sequence of calls, an emulator produces the same ids and injects the same
// faults (concurrent calls are served in an order the emulator does not
// control).
func WithSeed(seed int64) Option {
	return func(e *Emulator) { e.rng = newRand(uint64(seed)) }
}

// WithTemplate defines a JWT template for POST
// /v1/sessions/{id}/tokens/{name}. Its tokens carry Clerk's default
// template claims (azp, exp, iat, iss, jti, nbf, sub) plus claims; claims
// cannot override those. A top-level string claim equal to "{{user.id}}",
// "{{session.id}}" or "{{org.id}}" is replaced by the corresponding id, as
// Clerk's shortcodes are. lifetime <= 0 means DefaultTokenLifetime.
func WithTemplate(name string, claims map[string]any, lifetime time.Duration) Option {
	if lifetime <= 0 {
		lifetime = DefaultTokenLifetime
	}
	return func(e *Emulator) { e.templates[name] = template{claims: maps.Clone(claims), lifetime: lifetime} }
}

// WithLogger logs every API call at debug level (method, path, operation,
// status, session id, fault, duration) and control changes at info level.
// Keys, tokens and bodies are never logged. The default discards logs.
func WithLogger(l zerolog.Logger) Option {
	return func(e *Emulator) { e.log = l }
}

// WithClock replaces time.Now for timestamps, token times and rate-limit
// windows (not for injected latency).
func WithClock(now func() time.Time) Option {
	return func(e *Emulator) {
		if now != nil {
			e.now = now
		}
	}
}

// WithSigningKey sets the RSA key tokens are signed with. Without it the
// emulator generates a 2048-bit key the first time it signs a token or
// serves the JWKS. Sharing one key between emulators saves that cost in
// test suites that create many.
func WithSigningKey(key *rsa.PrivateKey) Option {
	return func(e *Emulator) { e.sign.key = key }
}

// WithIssuer sets the iss claim of signed tokens (default DefaultIssuer).
func WithIssuer(iss string) Option {
	return func(e *Emulator) { e.issuer = iss }
}

// WithStrictRevoke makes revoking a session that is not active or pending
// fail with 400 session_not_active instead of answering 200 with the
// session unchanged (the default; see the package documentation).
func WithStrictRevoke() Option {
	return func(e *Emulator) { e.strictRevoke = true }
}

// WithCallLogLimit sets how many calls Calls keeps (the newest); n <= 0
// means DefaultCallLogLimit. It bounds memory under long load tests.
func WithCallLogLimit(n int) Option {
	return func(e *Emulator) { e.calls.limit = n }
}

// New returns an Emulator with no users or sessions.
func New(opts ...Option) *Emulator {
	e := &Emulator{
		keys:      map[keyHash]keyInfo{},
		templates: map[string]template{},
		issuer:    DefaultIssuer,
		now:       time.Now,
		log:       zerolog.Nop(),
		rng:       newRand(rand.Uint64()),
		st:        newStore(),
	}
	e.limiter.set(0, 0)
	e.limiter.setMode(FixedWindow)
	for _, opt := range opts {
		opt(e)
	}
	if len(e.keys) == 0 {
		e.keys[sha256.Sum256([]byte(DefaultSecretKey))] = keyInfo{}
	}
	e.faults = e.faults.clamped()
	if e.calls.limit <= 0 {
		e.calls.limit = DefaultCallLogLimit
	}
	return e
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// String describes the emulator without any key material, so that it can
// be printed safely.
func (e *Emulator) String() string {
	e.mu.RLock()
	users, sessions := len(e.st.users), len(e.st.sessions)
	e.mu.RUnlock()
	return fmt.Sprintf("emulator.Emulator{keys: %d, users: %d, sessions: %d}", len(e.keys), users, sessions)
}

// GoString is String, for %#v.
func (e *Emulator) GoString() string { return e.String() }

// Faults returns the faults in effect.
func (e *Emulator) Faults() Faults {
	e.cfgMu.RLock()
	defer e.cfgMu.RUnlock()
	return e.faults
}

// SetFaults replaces the faults in effect, from the next call on. Rates
// are clamped to 0..1 and negative durations to 0; use Faults.Validate to
// reject such values instead.
func (e *Emulator) SetFaults(f Faults) {
	f = f.clamped()
	e.cfgMu.Lock()
	e.faults = f
	e.cfgMu.Unlock()
	e.log.Info().Float64("error_rate", f.ErrorRate).Float64("gateway_error_rate", f.GatewayErrorRate).Float64("drop_rate", f.DropRate).
		Float64("drop_after_rate", f.DropAfterRate).Dur("latency", f.Latency).Dur("jitter", f.Jitter).
		Bool("reject_key", f.RejectKey).Msg("clerk emulator: faults set")
}

// SetRateLimit changes the rate limit at run time (see WithRateLimit) and
// starts every key's window afresh. n <= 0 disables it.
func (e *Emulator) SetRateLimit(n int, window time.Duration) {
	e.limiter.set(n, window)
	e.log.Info().Int("requests", n).Dur("window", window).Msg("clerk emulator: rate limit set")
}

// RateLimit returns the rate limit in effect; n is 0 when there is none.
func (e *Emulator) RateLimit() (n int, window time.Duration) {
	e.limiter.mu.Lock()
	defer e.limiter.mu.Unlock()
	if e.limiter.n == 0 {
		return 0, 0
	}
	return e.limiter.n, e.limiter.window
}

// SetRateLimitMode changes how the rate limit counts calls (an unknown
// mode means FixedWindow) and starts every key's window afresh.
func (e *Emulator) SetRateLimitMode(m RateLimitMode) {
	m = e.limiter.setMode(m)
	e.log.Info().Str("mode", string(m)).Msg("clerk emulator: rate limit mode set")
}

// RateLimitMode returns how the rate limit counts calls.
func (e *Emulator) RateLimitMode() RateLimitMode {
	e.limiter.mu.Lock()
	defer e.limiter.mu.Unlock()
	return e.limiter.mode
}

// Calls returns the logged API calls, oldest first (at most the newest
// WithCallLogLimit calls). Control API requests are not logged.
func (e *Emulator) Calls() []Call {
	l := &e.calls
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Call, 0, len(l.buf)) // never nil: "calls":[] in JSON
	return append(append(out, l.buf[l.next:]...), l.buf[:l.next]...)
}

// ResetCalls empties the call log. It does not reset RevokeCount.
func (e *Emulator) ResetCalls() {
	e.calls.mu.Lock()
	defer e.calls.mu.Unlock()
	e.calls.buf, e.calls.next = nil, 0
}

// ---- randomness ----

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randString returns n base62 characters.
func (e *Emulator) randString(n int) string { return e.randFrom(base62, n) }

func (e *Emulator) randFrom(alphabet string, n int) string {
	b := make([]byte, n)
	e.rngMu.Lock()
	for i := range b {
		b[i] = alphabet[e.rng.IntN(len(alphabet))]
	}
	e.rngMu.Unlock()
	return string(b)
}

// newID returns prefix_ followed by 27 base62 characters, the shape of
// Clerk's ids.
func (e *Emulator) newID(prefix string) string { return prefix + "_" + e.randString(27) }

// chance reports true with probability p. It draws no random number when p
// is 0, so that disabled faults do not disturb a seeded sequence.
func (e *Emulator) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	e.rngMu.Lock()
	defer e.rngMu.Unlock()
	return e.rng.Float64() < p
}

func (e *Emulator) intN(n int) int {
	e.rngMu.Lock()
	defer e.rngMu.Unlock()
	return e.rng.IntN(n)
}

func (e *Emulator) delay(f Faults) time.Duration {
	d := f.Latency
	if f.Jitter > 0 {
		e.rngMu.Lock()
		d += time.Duration(e.rng.Int64N(int64(f.Jitter)))
		e.rngMu.Unlock()
	}
	return d
}

// ---- rate limiting ----

// rateLimiter counts calls per secret key, in fixed or sliding windows.
type rateLimiter struct {
	mu      sync.Mutex
	n       int
	window  time.Duration
	mode    RateLimitMode
	buckets map[keyHash]*bucket
}

type bucket struct {
	// Fixed windows: when the current one started and its count.
	start time.Time
	count int
	// Sliding windows: the times of the calls accepted in the last window,
	// oldest first.
	times []time.Time
}

func (l *rateLimiter) set(n int, window time.Duration) {
	if window <= 0 {
		window = DefaultRateWindow
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n, l.window = max(n, 0), window
	l.buckets = map[keyHash]*bucket{}
}

// setMode sets the mode and returns it, FixedWindow for an unknown one.
func (l *rateLimiter) setMode(m RateLimitMode) RateLimitMode {
	if m != SlidingWindow {
		m = FixedWindow
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mode = m
	l.buckets = map[keyHash]*bucket{}
	return m
}

// take counts one call for key. When the key is over its limit it returns
// false and the whole seconds until a call would be accepted (at least 1).
func (l *rateLimiter) take(key keyHash, now time.Time) (ok bool, retryAfter int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n <= 0 {
		return true, 0
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{start: now}
		l.buckets[key] = b
	}
	var free time.Time // when a call would be accepted again
	if l.mode == SlidingWindow {
		// The window ending now is (now-window, now]: a call leaves it
		// exactly one window after it was accepted.
		for len(b.times) > 0 && !now.Before(b.times[0].Add(l.window)) {
			b.times = b.times[1:]
		}
		if len(b.times) < l.n {
			b.times = append(b.times, now)
			return true, 0
		}
		free = b.times[0].Add(l.window)
	} else {
		end := b.start.Add(l.window)
		if !now.Before(end) {
			b.start, b.count, end = now, 0, now.Add(l.window)
		}
		if b.count < l.n {
			b.count++
			return true, 0
		}
		free = end
	}
	return false, max(int(ceilSeconds(free.Sub(now))), 1)
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	secs := int64(d / time.Second)
	if d%time.Second > 0 {
		secs++
	}
	return secs
}

// ---- call log ----

// WorstWindow is the largest number of calls that arrived within any
// window of length w — sliding, not aligned to the clock — whatever they
// were answered: what a client sent into the busiest stretch of a limit.
func WorstWindow(calls []Call, w time.Duration) int {
	times := make([]time.Time, len(calls))
	for i, c := range calls {
		times[i] = c.Time
	}
	slices.SortFunc(times, time.Time.Compare)
	worst, end := 0, 0
	for i := range times {
		for end < len(times) && times[end].Sub(times[i]) < w {
			end++
		}
		worst = max(worst, end-i)
	}
	return worst
}

// Call is one logged API call.
type Call struct {
	// Time is when the call arrived (by the emulator's clock).
	Time time.Time `json:"time"`
	// Method and Path are the request's (Path without the query).
	Method string `json:"method"`
	Path   string `json:"path"`
	// Status is the HTTP status answered; 0 when the connection was
	// dropped before an answer (Fault "drop") and 499 when the client went
	// away during injected latency (Fault "canceled").
	Status int `json:"status"`
	// Op is Clerk's operation id ("RevokeSession"), or "" for a path that
	// is not a Clerk operation.
	Op string `json:"op,omitempty"`
	// SessionID is the session the path names, if any.
	SessionID string `json:"session_id,omitempty"`
	// UserID is the user the path names (LockUser, UnlockUser), if any.
	UserID string `json:"user_id,omitempty"`
	// Duration is how long the call took, injected latency included.
	Duration time.Duration `json:"duration"`
	// Fault names the injected failure that decided the answer, if any:
	// "drop", "drop_after", "error", "gateway", "rate_limit", "reject_key",
	// "fail_session", "fail_user" or "canceled".
	Fault string `json:"fault,omitempty"`
}

type callLog struct {
	mu    sync.Mutex
	limit int
	buf   []Call
	next  int // where the next call goes once buf is full
}

func (l *callLog) add(c Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) < l.limit {
		l.buf = append(l.buf, c)
		return
	}
	l.buf[l.next] = c
	l.next = (l.next + 1) % l.limit
}
