package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestFailedSignInsLockOut: an address gets freeFailures failures, then a
// lock that doubles with each further failure up to maxLock; another
// address is not locked; a success forgets the address's failures.
func TestFailedSignInsLockOut(t *testing.T) {
	var f failedSignIns
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i < freeFailures; i++ {
		if until := f.failed("a", now); !until.IsZero() {
			t.Fatalf("failure %d locked the address until %s, want %d free failures", i, until, freeFailures)
		}
	}
	want := firstLock
	for i := 0; i < 16; i++ {
		until := f.failed("a", now)
		if got := until.Sub(now); got != want {
			t.Fatalf("failure %d: locked for %s, want %s", freeFailures+i, got, want)
		}
		if got := f.lockedUntil("a", now); !got.Equal(until) {
			t.Fatalf("lockedUntil = %s, want %s", got, until)
		}
		if !f.lockedUntil("b", now).IsZero() {
			t.Fatal("another address is locked")
		}
		now = until // the lock ends: the next failure locks for twice as long
		if !f.lockedUntil("a", now).IsZero() {
			t.Fatal("still locked when the lock ends")
		}
		want = min(2*want, maxLock)
	}
	f.succeeded("a")
	if until := f.failed("a", now); !until.IsZero() {
		t.Errorf("after a success, a failure locks until %s", until)
	}
}

// TestFailedSignInsForget: an address that has not failed for forgetAfter
// starts again with its free failures.
func TestFailedSignInsForget(t *testing.T) {
	var f failedSignIns
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range freeFailures {
		f.failed("a", now)
	}
	if until := f.failed("a", now.Add(forgetAfter+maxLock)); !until.IsZero() {
		t.Errorf("a failure an hour later locks until %s, want the address forgotten", until)
	}
}

// TestFailedSignInsManyAddresses: many addresses failing together leave
// each one failure; an address that has not failed is still let try; and
// a flood of addresses does not grow the table past maxTracked.
func TestFailedSignInsManyAddresses(t *testing.T) {
	var f failedSignIns
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range overallFailures {
		if until := f.failed(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now); !until.IsZero() {
			t.Fatalf("address %d locked after its first failure below the overall limit", i)
		}
	}
	if until := f.failed("192.0.2.1", now); until.IsZero() {
		t.Error("past the overall limit, a first failure does not lock its address")
	}
	if !f.lockedUntil("192.0.2.2", now).IsZero() {
		t.Error("past the overall limit, an address that has not failed may not try")
	}
	later := now.Add(overallWindow)
	if until := f.failed("192.0.2.3", later); !until.IsZero() {
		t.Error("a minute later, a first failure still locks its address")
	}
	for i := range 3 * maxTracked {
		f.failed(fmt.Sprintf("addr-%d", i), later.Add(time.Duration(i)*time.Millisecond))
	}
	if n := f.tracked(); n > maxTracked {
		t.Errorf("%d addresses kept, want at most %d", n, maxTracked)
	}
}

// TestClientAddr: failures count by the connection's IP, not its port, and
// an IPv6 address by its /64, which one machine commonly holds whole.
func TestClientAddr(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:5123", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:5123", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:80", "2001:db8:1:2::/64"},
		{"@", "@"}, // a Unix socket's peer: one address
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if got := clientAddr(r); got != tc.want {
			t.Errorf("clientAddr(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}
