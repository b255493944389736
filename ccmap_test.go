package sessionkit

import (
	"fmt"
	"sync"
	"testing"
)

func TestCCMap(t *testing.T) {
	m := NewCCMap[string, int](3) // rounds up to 4 shards
	if len(m.shards) != 4 {
		t.Fatalf("%d shards", len(m.shards))
	}
	for i := range 1000 {
		m.Set(fmt.Sprint(i), i)
	}
	if m.Len() != 1000 {
		t.Fatalf("Len = %d", m.Len())
	}
	if v, ok := m.Get("500"); !ok || v != 500 {
		t.Fatalf("Get = %d, %v", v, ok)
	}
	m.Delete("500")
	if _, ok := m.Get("500"); ok {
		t.Fatal("Delete kept the key")
	}
	m.Update("1", func(v int, ok bool) (int, bool) { return v + 1, ok })
	m.Update("new", func(v int, ok bool) (int, bool) { return 7, !ok })
	m.Update("2", func(int, bool) (int, bool) { return 0, false })
	if v, _ := m.Get("1"); v != 2 {
		t.Fatalf("Update = %d", v)
	}
	if _, ok := m.Get("2"); ok {
		t.Fatal("Update with keep=false kept the key")
	}
	m.Update2("3", "moved", func(v1 int, ok1 bool, _ int, _ bool) (int, bool, int, bool) { return 0, false, v1, ok1 })
	if _, ok := m.Get("3"); ok {
		t.Fatal("Update2 kept the source")
	}
	if v, _ := m.Get("moved"); v != 3 {
		t.Fatalf("Update2 moved %d", v)
	}
	if n := m.Sweep(func(_ string, v int) bool { return v%2 == 0 }); n == 0 {
		t.Fatal("Sweep removed nothing")
	}
	m.Range(func(k string, v int) bool {
		if v%2 == 0 {
			t.Fatalf("Sweep left %s=%d", k, v)
		}
		return true
	})
}

func TestCCMapConcurrent(t *testing.T) {
	m := NewCCMap[string, int](0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := fmt.Sprint(i % 100)
				m.Update(k, func(v int, _ bool) (int, bool) { return v + 1, true })
				// Cross-shard moves in both directions must not deadlock.
				if g%2 == 0 {
					m.Update2(k, "x"+k, func(a int, ok1 bool, b int, ok2 bool) (int, bool, int, bool) { return a, ok1, b, ok2 })
				} else {
					m.Update2("x"+k, k, func(a int, ok1 bool, b int, ok2 bool) (int, bool, int, bool) { return a, ok1, b, ok2 })
				}
				if i%500 == 0 {
					m.Sweep(func(string, int) bool { return false })
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	m.Range(func(_ string, v int) bool { total += v; return true })
	if total != 8*2000 {
		t.Fatalf("lost increments: %d, want %d", total, 8*2000)
	}
}
