package console

import (
	"container/list"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Failed sign-ins are bounded so that a guesser cannot try credentials as
// fast as the console answers. Each client address may fail freeFailures
// times; each further failure locks it out for a delay that doubles, from
// firstLock up to maxLock. A locked address is answered 429 before its
// credentials are looked at, so that a right guess during the lock tells
// nothing. Other addresses are not locked: the operator signs in from
// another machine while someone guesses. Many addresses guessing together
// (more than overallFailures failures in a minute, all addresses together)
// leave each address one failure before its lock, so that a guesser with
// many addresses gets one try per address, while an address that has not
// failed is still checked. An address is forgotten forgetAfter after its
// last failure, and at most maxTracked are kept: a flood of addresses
// evicts the oldest, it does not grow memory.
const (
	freeFailures    = 5
	firstLock       = time.Second
	maxLock         = 15 * time.Minute
	forgetAfter     = time.Hour
	overallFailures = 100
	overallWindow   = time.Minute
	maxTracked      = 10000
)

// failedSignIns counts failed sign-ins by client address. The zero value
// is ready.
type failedSignIns struct {
	mu     sync.Mutex
	addrs  map[string]*list.Element // of *strikes, in byLast
	byLast list.List                // *strikes, oldest last failure first
	window time.Time                // start of the current overallWindow
	recent int                      // failures of every address since window
}

// strikes are one address's failures since it was last forgotten.
type strikes struct {
	addr  string
	n     int
	last  time.Time // last failure
	until time.Time // locked until then
}

// forgotten reports whether s no longer counts at now.
func (s *strikes) forgotten(now time.Time) bool {
	return now.Sub(s.last) >= forgetAfter && !now.Before(s.until)
}

// lockedUntil returns when addr may try again, or the zero time when it
// may now.
func (f *failedSignIns) lockedUntil(addr string, now time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.addrs[addr]
	if !ok || !now.Before(e.Value.(*strikes).until) {
		return time.Time{}
	}
	return e.Value.(*strikes).until
}

// failed records a failure of addr and returns when it may try again (the
// zero time when it may now).
func (f *failedSignIns) failed(addr string, now time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.window) >= overallWindow {
		f.window, f.recent = now, 0
	}
	f.recent++
	e, ok := f.addrs[addr]
	if !ok {
		if f.addrs == nil {
			f.addrs = map[string]*list.Element{}
		}
		f.makeRoom(now)
		e = f.byLast.PushBack(&strikes{addr: addr})
		f.addrs[addr] = e
	}
	f.byLast.MoveToBack(e)
	s := e.Value.(*strikes)
	if s.forgotten(now) {
		s.n = 0
	}
	s.n++
	s.last = now
	allowed := freeFailures
	if f.recent > overallFailures {
		allowed = 1
	}
	if s.n >= allowed {
		s.until = now.Add(lockFor(s.n - allowed))
	}
	if now.Before(s.until) {
		return s.until
	}
	return time.Time{}
}

// lockFor is the lock after the given number of failures beyond the free
// ones: firstLock, doubling, at most maxLock.
func lockFor(beyond int) time.Duration {
	d := firstLock
	for i := 0; i < beyond && d < maxLock; i++ {
		d *= 2
	}
	return min(d, maxLock)
}

// makeRoom keeps the table under maxTracked: forgotten addresses go, then
// those whose last failure is oldest, each in constant time, so that a
// flood of addresses costs no more per failure than one.
func (f *failedSignIns) makeRoom(now time.Time) {
	for e := f.byLast.Front(); e != nil && (len(f.addrs) >= maxTracked || e.Value.(*strikes).forgotten(now)); e = f.byLast.Front() {
		f.forget(e)
	}
}

func (f *failedSignIns) forget(e *list.Element) {
	delete(f.addrs, e.Value.(*strikes).addr)
	f.byLast.Remove(e)
}

// succeeded forgets addr's failures: the operator who mistyped, then
// signed in.
func (f *failedSignIns) succeeded(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.addrs[addr]; ok {
		f.forget(e)
	}
}

// tracked is how many addresses are kept.
func (f *failedSignIns) tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.addrs)
}

// clientAddr is the address failures are counted by: the connection's IP
// (a proxy's header is not trusted, as anyone could send one), an IPv6
// one by its /64, which one machine commonly holds whole.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

// refuseLocked answers 429 when the request's address is locked out, and
// reports whether it did.
func (c *Console) refuseLocked(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	until := c.failures.lockedUntil(clientAddr(r), now)
	if until.IsZero() {
		return false
	}
	c.tooManyFailures(w, r, now, until)
	return true
}

// signInFailed records a failed sign-in of the request's address and, when
// that locks it out, logs so and answers 429 (reporting true).
func (c *Console) signInFailed(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	until := c.failures.failed(clientAddr(r), now)
	if until.IsZero() {
		return false
	}
	c.log.Warn().Str("from", r.RemoteAddr).Time("until", until).Msg("console: too many failed sign-ins from this address: refused until the lock ends")
	c.tooManyFailures(w, r, now, until)
	return true
}

// tooManyFailures answers 429 saying when the client may try again.
func (c *Console) tooManyFailures(w http.ResponseWriter, r *http.Request, now, until time.Time) {
	wait := int(math.Ceil(until.Sub(now).Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(wait))
	c.fail(w, r, http.StatusTooManyRequests, fmt.Errorf("too many failed sign-ins from your address: try again after %s UTC (in %d s). Each further failure doubles the wait",
		until.UTC().Format(time.TimeOnly), wait))
}
