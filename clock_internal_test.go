package sessionkit

import (
	"testing"
	"time"
)

// waitClock waits for the coarse clock to reach state, failing after a
// second.
func waitClock(t *testing.T, state uint32) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); coarse.state.Load() != state; {
		if time.Now().After(deadline) {
			t.Fatalf("coarse clock in state %d, want %d", coarse.state.Load(), state)
		}
		time.Sleep(time.Millisecond)
	}
}

// The coarse clock stops once nobody reads it, starts again at the next
// reading, and a reading after a stop is the current time, not the time
// the clock stopped at.
func TestCoarseClockStopsAndStarts(t *testing.T) {
	wallNow()
	if s := coarse.state.Load(); s < clockRunning {
		t.Fatalf("state %d after a reading, want running", s)
	}
	waitClock(t, clockStopped)
	stopped := coarse.nanos.Load()
	time.Sleep(20 * time.Millisecond)
	got := wallNow().UnixNano()
	if got-stopped < int64(20*time.Millisecond) {
		t.Fatalf("read %v after the clock stopped, want at least 20ms", time.Duration(got-stopped))
	}
	if s := coarse.state.Load(); s != clockUsed {
		t.Fatalf("state %d after restarting, want %d", s, clockUsed)
	}
	if n := coarse.nanos.Load(); n < got {
		t.Fatalf("the restarted clock holds %d, older than the reading %d that started it", n, got)
	}
	waitClock(t, clockStopped)
}

// Readers on several goroutines while the ticker starts and stops: the
// race detector checks the clock's accesses, and no reading goes back by
// more than the allowed lag or ahead of time.Now.
func TestCoarseClockConcurrent(t *testing.T) {
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 2000; i++ {
				got := wallNow()
				if now := time.Now().Round(0); got.After(now) || got.Before(now.Add(-100*time.Millisecond)) {
					t.Errorf("reading %v, time.Now %v", got, now)
					return
				}
				if i%100 == 0 {
					time.Sleep(3 * time.Millisecond) // let the ticker stop now and then
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}
