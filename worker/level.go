package worker

import (
	"context"
	"sync"
)

// level is a condition that goroutines wait on in either direction: the
// circuit being open or closed, the record queue full or with room. Each
// side is a channel that is closed while the condition holds, so a waiter
// selects on it together with its context and everything else it waits
// for.
type level struct {
	mu  sync.Mutex
	on  chan struct{} // closed while the level is on
	off chan struct{} // closed while the level is off
}

func newLevel() *level {
	l := &level{on: make(chan struct{}), off: make(chan struct{})}
	close(l.off)
	return l
}

// set turns the level on or off and reports whether that changed it.
func (l *level) set(on bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if closed(l.on) == on {
		return false
	}
	if on {
		close(l.on)
		l.off = make(chan struct{})
	} else {
		close(l.off)
		l.on = make(chan struct{})
	}
	return true
}

// On returns a channel closed once the level is on (at once if it is).
func (l *level) On() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.on
}

// IsOn reports whether the level is on now.
func (l *level) IsOn() bool { return closed(l.On()) }

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitOff returns once the level is off, or ctx's error.
func (l *level) waitOff(ctx context.Context) error {
	l.mu.Lock()
	off := l.off
	l.mu.Unlock()
	select {
	case <-off:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
