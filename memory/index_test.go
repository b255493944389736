package memory

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessionkit/sessionkit"
)

func testSlot(id string) *slot { return newSlot(id, dead) }

// checkIndex compares x with the model: every key of the model is found
// with its slot, keys outside it are not, each visits exactly the model,
// and the shards' counts add up.
func checkIndex(t *testing.T, x *index, model map[string]*slot, absent []string) {
	t.Helper()
	for id, s := range model {
		if got := x.get(id); got != s {
			t.Fatalf("get(%q) = %p, want %p", id, got, s)
		}
	}
	for _, id := range absent {
		if _, ok := model[id]; !ok && x.get(id) != nil {
			t.Fatalf("get(%q) found a removed key", id)
		}
	}
	seen := map[string]bool{}
	x.each(func(s *slot) bool {
		if model[s.key] != s || seen[s.key] {
			t.Fatalf("each visited %q: in model %v, seen before %v", s.key, model[s.key] == s, seen[s.key])
		}
		seen[s.key] = true
		return true
	})
	if len(seen) != len(model) || x.size() != len(model) {
		t.Fatalf("each saw %d, size %d, want %d", len(seen), x.size(), len(model))
	}
	for i := range x.shards {
		sh := &x.shards[i]
		if tb := sh.tab.Load(); sh.used*2 > len(tb.cells) {
			t.Fatalf("shard %d: %d of %d cells used, more than half", i, sh.used, len(tb.cells))
		}
	}
}

// TestIndexMatchesAMap runs random insertions, replacements, removals and
// sweeps against a Go map. One shard and few keys make long probe paths
// through removed cells, their reuse, and rebuilds both ways.
func TestIndexMatchesAMap(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(shards)))
			x := newIndex(shards)
			model := map[string]*slot{}
			// Keys of every kind of length: the shortest IDs, the
			// default's, and longer ones, which a slot keeps apart.
			keys := make([]string, 300)
			for i := range keys {
				switch id := sessionkit.NewID(); i % 3 {
				case 0:
					keys[i] = id
				case 1:
					keys[i] = id[:sessionkit.MinIDLength]
				default:
					keys[i] = id + id[:i%32+1]
				}
			}
			for step := 0; step < 20000; step++ {
				id := keys[r.IntN(len(keys))]
				switch op := r.IntN(10); {
				case op < 5: // insert or replace
					s := testSlot(id)
					x.update(id, func(old *slot) *slot {
						if old != model[id] {
							t.Fatalf("update(%q) saw %p, want %p", id, old, model[id])
						}
						return s
					})
					model[id] = s
				case op < 8: // remove
					x.update(id, func(*slot) *slot { return nil })
					delete(model, id)
				case op < 9: // leave as is
					x.update(id, func(old *slot) *slot { return old })
				default: // sweep a random part
					n := x.sweep(func(s *slot) bool { return s.key[0]%4 == byte(step%4) })
					for k := range model {
						if k[0]%4 == byte(step%4) {
							delete(model, k)
							n--
						}
					}
					if n != 0 {
						t.Fatalf("sweep removed %d more than the model", n)
					}
				}
				if step%500 == 0 {
					checkIndex(t, x, model, keys)
				}
			}
			checkIndex(t, x, model, keys)
			x.sweep(func(*slot) bool { return true })
			checkIndex(t, x, map[string]*slot{}, keys)
		})
	}
}

// TestIndexLookupsDuringWrites looks up keys that stay in the index while
// other goroutines insert and remove others in the same shards, which
// rebuilds tables under the lookups: a lookup must never miss a key that
// was there all along, nor find one that never was. Run with -race, it
// also checks that the lock-free reads race with nothing.
func TestIndexLookupsDuringWrites(t *testing.T) {
	x := newIndex(2)
	stable := make([]string, 64)
	for i := range stable {
		stable[i] = sessionkit.NewID()
		s := testSlot(stable[i])
		x.update(stable[i], func(*slot) *slot { return s })
	}
	never := sessionkit.NewID()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			churn := make([]string, 200)
			for i := range churn {
				churn[i] = sessionkit.NewID()
			}
			for round := 0; !stop.Load() && round < 200; round++ {
				for _, id := range churn {
					s := testSlot(id)
					x.update(id, func(*slot) *slot { return s })
				}
				for _, id := range churn {
					x.update(id, func(*slot) *slot { return nil })
				}
				x.sweep(func(*slot) bool { return false })
			}
		}()
	}
	var misses atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200000; i++ {
				id := stable[i%len(stable)]
				if s := x.get(id); s == nil || s.key != id {
					misses.Add(1)
				}
				if x.get(never) != nil {
					misses.Add(1)
				}
			}
			stop.Store(true)
		}()
	}
	wg.Wait()
	if n := misses.Load(); n > 0 {
		t.Fatalf("%d lookups answered wrongly while other keys were written", n)
	}
	if n := x.size(); n != len(stable) {
		t.Fatalf("size = %d after the churn, want %d", n, len(stable))
	}
}

// The cost of a lookup among 10,000 sessions, against the same lookups in
// a sessionkit.CCMap (a Go map per shard behind a sync.RWMutex), measured
// in the same run; on two cores or more the parallel pair shows what a
// lookup's shared lock costs when another core takes it too.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = sessionkit.NewID()
	}
	return ids
}

func BenchmarkIndexGet(b *testing.B) {
	ids := benchIDs(10000)
	x := newIndex(sessionkit.DefaultShards)
	for _, id := range ids {
		s := testSlot(id)
		x.update(id, func(*slot) *slot { return s })
	}
	lookups := func(b *testing.B, get func(string) *slot) {
		b.Run("serial", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if get(ids[(i*7919)%len(ids)]) == nil {
					b.Fatal("missing")
				}
			}
		})
		b.Run("parallel", func(b *testing.B) {
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 1000
				for pb.Next() {
					i++
					if get(ids[(i*7919)%len(ids)]) == nil {
						b.Error("missing")
						return
					}
				}
			})
		})
	}
	b.Run("index", func(b *testing.B) { lookups(b, x.get) })
	m := sessionkit.NewCCMap[string, *slot](sessionkit.DefaultShards)
	for _, id := range ids {
		m.Set(id, x.get(id))
	}
	b.Run("ccmap", func(b *testing.B) {
		lookups(b, func(id string) *slot { s, _ := m.Get(id); return s })
	})
}
