package memory_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/sessionkit/sessionkit/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return memory.New(memory.Config{})
	})
}

func BenchmarkManager(b *testing.B)  { providertest.BenchManager(b, memory.New(memory.Config{})) }
func BenchmarkProvider(b *testing.B) { providertest.BenchProvider(b, memory.New(memory.Config{})) }

// TestIDLengths stores sessions under IDs of every length class a slot
// treats apart (the shortest, the default, longer up to the longest) and
// checks that each is found, listed under its own ID, renamed and
// deleted.
func TestIDLengths(t *testing.T) {
	ctx := context.Background()
	p := memory.New(memory.Config{})
	defer p.Close()
	base := strings.Repeat(sessionkit.NewID(), sessionkit.MaxIDLength/sessionkit.DefaultIDLength)
	lengths := []int{sessionkit.MinIDLength, sessionkit.DefaultIDLength, sessionkit.DefaultIDLength + 1, sessionkit.MaxIDLength}
	exp := time.Now().Add(time.Hour)
	for _, n := range lengths {
		id := base[:n]
		u := sessionkit.Update{Create: true, Set: map[string][]byte{"n": []byte(strconv.Itoa(n))}, Expires: exp}
		if err := p.Update(ctx, id, u); err != nil {
			t.Fatalf("create under a %d-byte ID: %v", n, err)
		}
	}
	seen := map[string]bool{}
	if err := p.Range(ctx, func(id string, r sessionkit.Record) bool {
		v, ok := r.Lookup("n")
		if !ok || string(v) != strconv.Itoa(len(id)) || id != base[:len(id)] {
			t.Errorf("Range gave ID %q with value %v", id, v)
		}
		seen[id] = true
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(lengths) {
		t.Fatalf("Range listed %d sessions, want %d", len(seen), len(lengths))
	}
	for _, n := range lengths {
		id := base[:n]
		newID := strings.ToUpper(id)
		if err := p.Rename(ctx, id, newID, exp); err != nil {
			t.Fatalf("rename a %d-byte ID: %v", n, err)
		}
		if _, err := p.Get(ctx, id); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("old %d-byte ID still found: %v", n, err)
		}
		r, err := p.Get(ctx, newID)
		if v, ok := r.Lookup("n"); err != nil || !ok || string(v) != strconv.Itoa(n) {
			t.Fatalf("renamed %d-byte ID: %v, %v", n, v, err)
		}
		if err := p.Delete(ctx, newID); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Get(ctx, newID); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("deleted %d-byte ID still found: %v", n, err)
		}
	}
}
