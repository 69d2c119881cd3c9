package clock

import (
	"context"
	"testing"
	"time"
)

func TestTicksEndsWithTheContextOrTheLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	for range Ticks(ctx, time.Millisecond) {
		if n++; n == 3 {
			cancel()
		}
	}
	if n != 3 {
		t.Fatalf("the loop ran %d times after the context ended at 3", n)
	}

	n = 0
	for range Ticks(context.Background(), time.Millisecond) {
		if n++; n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("break after 2 ticks ran %d", n)
	}
}
