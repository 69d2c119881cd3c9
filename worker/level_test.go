package worker

import (
	"context"
	"testing"
	"time"
)

func TestLevelWaitersSeeEachChange(t *testing.T) {
	l := newLevel()
	if l.IsOn() {
		t.Fatal("a new level is on")
	}
	on := l.On()
	if !l.set(true) || l.set(true) {
		t.Fatal("set(true) should change the level once")
	}
	select {
	case <-on:
	default:
		t.Fatal("a channel taken before the level went on was not closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.waitOff(ctx); err == nil {
		t.Fatal("waitOff returned while the level was on")
	}
	done := make(chan error, 1)
	go func() { done <- l.waitOff(context.Background()) }()
	if !l.set(false) || l.set(false) {
		t.Fatal("set(false) should change the level once")
	}
	if err := <-done; err != nil {
		t.Fatalf("waitOff: %v", err)
	}
	select {
	case <-l.On():
		t.Fatal("On is closed while the level is off")
	default:
	}
}
