package sessionkit

import (
	"hash/maphash"
	"sync"
)

// DefaultShards is the number of shards NewCCMap uses when asked for zero.
const DefaultShards = 256

// CCMap is a concurrent map split into shards, each with its own lock, so
// that operations on different keys rarely wait for each other and a sweep
// over the whole map (Sweep) holds only one shard's lock at a time. It is
// a general-purpose building block for in-process providers: any key and
// value types, and atomic updates of one key or two.
//
// Reads take their shard's lock shared, which writes the lock's reader
// count: on several cores, the shards' cache lines then move between the
// cores at every read, and reads of a read-mostly map scale poorly. The
// memory provider, whose lookups are its hot path, therefore keeps its
// sessions in a table of its own whose lookups take no lock.
//
// The zero value is not usable; create one with NewCCMap.
type CCMap[K comparable, V any] struct {
	seed   maphash.Seed
	mask   uint64
	shards []ccShard[K, V]
}

type ccShard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
	// Padding keeps neighbouring shards' locks off one cache line.
	_ [40]byte
}

// NewCCMap returns an empty map with at least the given number of shards,
// rounded up to a power of two; zero or less means DefaultShards.
func NewCCMap[K comparable, V any](shards int) *CCMap[K, V] {
	if shards <= 0 {
		shards = DefaultShards
	}
	n := 1
	for n < shards {
		n <<= 1
	}
	c := &CCMap[K, V]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]ccShard[K, V], n)}
	for i := range c.shards {
		c.shards[i].m = make(map[K]V)
	}
	return c
}

func (c *CCMap[K, V]) shard(k K) *ccShard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, k)&c.mask]
}

// Get returns the value stored under k.
func (c *CCMap[K, V]) Get(k K) (V, bool) {
	s := c.shard(k)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

// Set stores v under k.
func (c *CCMap[K, V]) Set(k K, v V) {
	s := c.shard(k)
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
}

// Delete removes k.
func (c *CCMap[K, V]) Delete(k K) {
	s := c.shard(k)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// Update runs fn on the value under k (ok reports whether there was one)
// while holding k's shard lock, then stores what fn returns if keep is
// true and removes k otherwise. fn must not call back into the map.
func (c *CCMap[K, V]) Update(k K, fn func(v V, ok bool) (nv V, keep bool)) {
	c.UpdateKeyed(k, func(v V, ok bool) (K, V, bool) {
		nv, keep := fn(v, ok)
		return k, nv, keep
	})
}

// UpdateKeyed is Update for values that carry their own copy of the key:
// fn also returns the key to store nv under, which must equal k. Go maps
// keep the key given to every store, so this decides which memory the
// stored key holds on to: the memory provider stores a session's ID inside
// the session's own allocation rather than keep the caller's string alive.
func (c *CCMap[K, V]) UpdateKeyed(k K, fn func(v V, ok bool) (nk K, nv V, keep bool)) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[k]
	if nk, nv, keep := fn(old, ok); keep {
		if nk != k {
			nk = k // a wrong key would land in the wrong shard
		}
		s.m[nk] = nv
	} else if ok {
		delete(s.m, k)
	}
}

// Update2 runs fn on the values under k1 and k2 while holding both keys'
// shard locks (taken in a fixed order, so concurrent calls cannot
// deadlock), then stores or removes each as fn says. It makes moves
// between keys atomic.
func (c *CCMap[K, V]) Update2(k1, k2 K, fn func(v1 V, ok1 bool, v2 V, ok2 bool) (n1 V, keep1 bool, n2 V, keep2 bool)) {
	c.Update2Keyed(k1, k2, func(v1 V, ok1 bool, v2 V, ok2 bool) (K, V, bool, K, V, bool) {
		n1, keep1, n2, keep2 := fn(v1, ok1, v2, ok2)
		return k1, n1, keep1, k2, n2, keep2
	})
}

// Update2Keyed is Update2 for values that carry their own copy of the key
// (see UpdateKeyed): fn also returns the key to store each value under,
// which must equal k1 and k2 respectively.
func (c *CCMap[K, V]) Update2Keyed(k1, k2 K, fn func(v1 V, ok1 bool, v2 V, ok2 bool) (nk1 K, n1 V, keep1 bool, nk2 K, n2 V, keep2 bool)) {
	i1, i2 := maphash.Comparable(c.seed, k1)&c.mask, maphash.Comparable(c.seed, k2)&c.mask
	s1, s2 := &c.shards[i1], &c.shards[i2]
	switch {
	case i1 == i2:
		s1.mu.Lock()
		defer s1.mu.Unlock()
	case i1 < i2:
		s1.mu.Lock()
		s2.mu.Lock()
		defer s1.mu.Unlock()
		defer s2.mu.Unlock()
	default:
		s2.mu.Lock()
		s1.mu.Lock()
		defer s2.mu.Unlock()
		defer s1.mu.Unlock()
	}
	v1, ok1 := s1.m[k1]
	v2, ok2 := s2.m[k2]
	nk1, n1, keep1, nk2, n2, keep2 := fn(v1, ok1, v2, ok2)
	if nk1 != k1 {
		nk1 = k1 // a wrong key would land in the wrong shard
	}
	if nk2 != k2 {
		nk2 = k2
	}
	if keep1 {
		s1.m[nk1] = n1
	} else {
		delete(s1.m, k1)
	}
	if keep2 {
		s2.m[nk2] = n2
	} else {
		delete(s2.m, k2)
	}
}

// Len returns the number of entries. Shards are counted one after another,
// so under concurrent writes the result is approximate.
func (c *CCMap[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Range calls fn for each entry until fn returns false, holding one
// shard's read lock at a time. fn must not call back into the map.
func (c *CCMap[K, V]) Range(fn func(k K, v V) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		for k, v := range s.m {
			if !fn(k, v) {
				s.mu.RUnlock()
				return
			}
		}
		s.mu.RUnlock()
	}
}

// Sweep removes every entry for which remove returns true and returns how
// many it removed. It locks one shard at a time, so readers and writers of
// other shards never wait for it, and a shard is held only for as long as
// one pass over its own entries takes.
func (c *CCMap[K, V]) Sweep(remove func(k K, v V) bool) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if remove(k, v) {
				delete(s.m, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
