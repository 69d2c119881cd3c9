// Package clock is the time source of code that waits: the real one in
// programs, a fake one in tests of backoff and scheduling.
package clock

import (
	"context"
	"iter"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error if it ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the system clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (Real) Sleep(ctx context.Context, d time.Duration) error { return Sleep(ctx, d) }

// Sleep waits d, or returns ctx's error if ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ticks yields the time every d until ctx ends or the loop breaks:
//
//	for range clock.Ticks(ctx, time.Second) {
//		poll()
//	}
//
// A tick that comes while the loop body runs is dropped, as with
// time.Ticker.
func Ticks(ctx context.Context, d time.Duration) iter.Seq[time.Time] {
	return func(yield func(time.Time) bool) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				// Both may be ready at once; an ended context wins.
				if ctx.Err() != nil || !yield(now) {
					return
				}
			}
		}
	}
}
