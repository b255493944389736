package memory_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/sessionkit/sessionkit/providertest"
)

// TestWritesRacingExpiry extends sessions at the moment they expire while
// GC runs in a loop: a write that succeeded is never lost to a GC that
// judged the session expired a moment before, and a write that failed
// leaves nothing behind.
func TestWritesRacingExpiry(t *testing.T) {
	ctx := context.Background()
	p := memory.New(memory.Config{Shards: 4})
	t.Cleanup(func() { _ = p.Close() })
	const n = 2000
	ids := make([]string, n)
	expiry := time.Now().Add(30 * time.Millisecond)
	for i := range ids {
		ids[i] = providertest.ID()
		providertest.Create(t, p, ids[i], providertest.Values("v", "0"), expiry)
	}
	stop := make(chan struct{})
	var gc sync.WaitGroup
	gc.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := p.GC(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	time.Sleep(time.Until(expiry) - 2*time.Millisecond)
	kept := make([]bool, n)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				err := p.Update(ctx, ids[i], sessionkit.Update{Set: providertest.Values("v", "1"), Expires: time.Now().Add(time.Hour)})
				switch {
				case err == nil:
					kept[i] = true
				case !errors.Is(err, sessionkit.ErrNotFound):
					t.Errorf("Update: %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	gc.Wait()
	if err := p.GC(ctx); err != nil {
		t.Fatal(err)
	}
	extended := 0
	for i, id := range ids {
		r, err := p.Get(ctx, id)
		switch {
		case kept[i] && err != nil:
			t.Fatalf("session %d: its Update succeeded, then it was collected: %v", i, err)
		case kept[i]:
			extended++
			if v, _ := r.Lookup("v"); string(v) != "1" {
				t.Fatalf("session %d: v = %q after a successful Update", i, v)
			}
		case err == nil:
			t.Fatalf("session %d: its Update failed, yet it is live", i)
		}
	}
	if got := p.Stored(); got != extended {
		t.Fatalf("%d sessions stored after GC, want the %d extended ones", got, extended)
	}
	t.Logf("%d of %d sessions extended before they expired", extended, n)
}
