// Package netproxy forwards TCP connections to a server, for tests that
// need the network between a client and a NATS server to misbehave the way
// real ones do: hang with the connection open, stall for a while, or bring
// the server's bytes late.
//
//	px := netproxy.Start(t, srv.URL)
//	nc, err := nats.Connect(px.URL)
//	...
//	px.Delay(2 * time.Second) // what the server sends arrives 2 s late
package netproxy

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards each connection made to URL to the target server, until
// the test ends.
type Proxy struct {
	// URL is the proxy's address, nats://127.0.0.1:port.
	URL string

	hold    sync.RWMutex // held for writing while nothing is to pass
	delay   atomic.Int64 // how late the server's bytes arrive
	swallow atomic.Bool  // the server's bytes never arrive
	done    chan struct{}
	close   func()
	conns   sync.WaitGroup // every goroutine of the proxy

	trigger struct {
		sync.Mutex
		pattern []byte
		d       time.Duration
	}
	watch struct {
		sync.Mutex
		pattern []byte
		seen    chan struct{}
	}
}

// Start starts a proxy to target (host:port, or a nats:// URL) that lasts
// until t ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	target = strings.TrimPrefix(target, "nats://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{URL: "nats://" + ln.Addr().String(), done: make(chan struct{})}
	p.close = sync.OnceFunc(func() {
		close(p.done)
		_ = ln.Close()
		p.conns.Wait()
	})
	t.Cleanup(p.close)
	p.conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.conns.Go(func() { p.fromClient(s, c) })
			p.conns.Go(func() { p.fromServer(c, s) })
			p.conns.Go(func() { // a test's end closes what it left open
				<-p.done
				_ = c.Close()
				_ = s.Close()
			})
		}
	})
	return p
}

// Close ends every connection through the proxy and takes no more: the
// network to the server lost. A test's end closes it too. Not to be called
// from a Hold's f, which it would wait for.
func (p *Proxy) Close() { p.close() }

// Delay makes what the server sends from now on arrive d late, in its
// order, as on a loaded machine or a long link; what the client sends
// still goes at once.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// Swallow makes what the server sends from now on never arrive, the
// connection still open: a server or network that hangs.
func (p *Proxy) Swallow() { p.swallow.Store(true) }

// Hold lets nothing through, either way, while f runs: a network stall.
func (p *Proxy) Hold(f func()) {
	p.hold.Lock()
	defer p.hold.Unlock()
	f()
}

// HoldAfter holds everything for d (see Hold) the first time a client
// sends bytes that contain pattern, once they have gone through.
func (p *Proxy) HoldAfter(pattern []byte, d time.Duration) {
	p.trigger.Lock()
	defer p.trigger.Unlock()
	p.trigger.pattern, p.trigger.d = pattern, d
}

// ServerSends returns a channel closed once the server sends bytes that
// contain pattern, from now on (one pattern at a time): what the server has
// put on the wire, which a server's own counters (a consumer's deliveries)
// may say before it does.
func (p *Proxy) ServerSends(pattern []byte) <-chan struct{} {
	p.watch.Lock()
	defer p.watch.Unlock()
	p.watch.pattern, p.watch.seen = pattern, make(chan struct{})
	return p.watch.seen
}

// watched looks for the watched pattern in b, the server's bytes that
// follow tail.
func (p *Proxy) watched(tail, b []byte) {
	p.watch.Lock()
	defer p.watch.Unlock()
	if p.watch.pattern != nil && bytes.Contains(append(tail, b...), p.watch.pattern) {
		close(p.watch.seen)
		p.watch.pattern = nil
	}
}

// tripped reports a hold's length the first time b holds the pattern.
func (p *Proxy) tripped(b []byte) time.Duration {
	p.trigger.Lock()
	defer p.trigger.Unlock()
	if p.trigger.pattern == nil || !bytes.Contains(b, p.trigger.pattern) {
		return 0
	}
	p.trigger.pattern = nil
	return p.trigger.d
}

// fromClient copies the client's bytes to the server, holding each write
// while a hold lasts.
func (p *Proxy) fromClient(server, client net.Conn) {
	defer server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			p.hold.RLock()
			_, werr := server.Write(buf[:n])
			p.hold.RUnlock()
			if werr != nil {
				return
			}
			if d := p.tripped(buf[:n]); d > 0 {
				p.conns.Go(func() { p.Hold(func() { p.sleep(d) }) })
			}
		}
		if err != nil {
			return
		}
	}
}

// fromServer copies the server's bytes to the client as fromClient does, each
// chunk sent the delay after it was read, or never once swallowed.
func (p *Proxy) fromServer(client, server net.Conn) {
	type chunk struct {
		due  time.Time
		data []byte
	}
	chunks := make(chan chunk, 1024)
	p.conns.Go(func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		var tail []byte // the last bytes read, for a pattern cut between two reads
		for {
			n, err := server.Read(buf)
			if n > 0 {
				p.watched(tail, buf[:n])
				tail = bytes.Clone(buf[max(0, n-256):n])
			}
			if n > 0 && !p.swallow.Load() {
				select {
				case chunks <- chunk{time.Now().Add(time.Duration(p.delay.Load())), bytes.Clone(buf[:n])}:
				case <-p.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	defer client.Close()
	for c := range chunks {
		if !p.sleep(time.Until(c.due)) {
			return
		}
		p.hold.RLock()
		_, err := client.Write(c.data)
		p.hold.RUnlock()
		if err != nil {
			return
		}
	}
}

// sleep waits d, or until the test ends (false).
func (p *Proxy) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}
