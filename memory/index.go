package memory

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/sessionkit/sessionkit"
)

// index maps session IDs to slots. It is a hash table split into shards,
// each an open-addressing table with linear probing, built so that a
// lookup takes no lock and writes no memory: with requests on several
// cores, a lock taken even shared (sync.RWMutex.RLock) writes its reader
// count, and the cache line holding it then moves from core to core at
// every lookup. Here a lookup reads the shard's table pointer and the
// cells it probes with atomic loads, so the table stays in every core's
// cache until a session is created or removed.
//
// Writers (creating, removing, sweeping) lock their shard, write cells
// with atomic stores in an order that lets a concurrent lookup see a cell
// either before or after the change but never a torn one, and never
// move a cell: when a table fills up, a new one is built beside it and
// published with one atomic store, so a lookup still on the old table
// sees that table as it was when it was replaced. A lookup therefore
// finds a session that was in the index for its whole duration, and may
// or may not find one created or removed meanwhile, as with a lock.
//
// A shard's table is kept at most half full (removed cells included),
// which keeps probes short: a lookup's cost is mostly the branches of
// its probe, so fewer probes matter more than the 16 bytes a cell takes.
// Removed cells are marked rather than emptied, so probes for other keys
// go past them, and are reused by later insertions or dropped when the
// table is rebuilt.
type index struct {
	seed   maphash.Seed
	mask   uint64 // len(shards)-1
	shards []indexShard
}

type indexShard struct {
	mu   sync.Mutex // held by writers only
	tab  atomic.Pointer[table]
	live int // cells holding a slot (under mu)
	used int // cells not empty: live ones and removed ones (under mu)
	// Padding keeps neighbouring shards off one cache line, so one
	// shard's writers do not slow down another's lookups.
	_ [32]byte
}

// table is one generation of a shard's cells; len(cells) is a power of
// two.
type table struct {
	cells []cell
}

// cell is one place in a table. h is 0 while the cell is empty, removed
// once its slot was taken out, and otherwise the hash of the slot's key
// (with its top bit set, so it is neither of the others).
type cell struct {
	h atomic.Uint64
	s atomic.Pointer[slot]
}

const (
	removed  = 1
	hashFlag = 1 << 63
	// minCells is the size of a shard's first table.
	minCells = 8
)

// newIndex returns an empty index of at least the given number of shards,
// rounded up to a power of two; zero or less means
// sessionkit.DefaultShards.
func newIndex(shards int) *index {
	if shards <= 0 {
		shards = sessionkit.DefaultShards
	}
	n := pow2(shards)
	x := &index{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]indexShard, n)}
	for i := range x.shards {
		// Every shard starts with a table, so lookups need not check
		// for none, and the first sessions stored cost no allocation
		// beyond their own.
		x.shards[i].tab.Store(&table{cells: make([]cell, minCells)})
	}
	return x
}

// hash returns the hash of id as cells hold it. Its low bits choose the
// shard and its high half the first cell probed, so the two are
// independent.
func (x *index) hash(id string) uint64 { return maphash.String(x.seed, id) | hashFlag }

// get returns the slot stored under id, or nil. Its probe ends at an
// empty cell, and a table always has one (see update).
func (x *index) get(id string) *slot {
	h := x.hash(id)
	t := x.shards[h&x.mask].tab.Load()
	mask := uint64(len(t.cells) - 1)
	for i := h >> 32; ; i++ {
		c := &t.cells[i&mask]
		switch ch := c.h.Load(); ch {
		case 0:
			return nil
		case h:
			// A writer stores the slot before the hash, so the slot
			// read here is at least as new as the hash; it may be
			// newer (the cell removed or reused meanwhile), which the
			// key comparison settles.
			if s := c.s.Load(); s != nil && s.key == id {
				return s
			}
		}
	}
}

// find returns the cell of t holding id, or nil, and the cell where id
// would be inserted: the first removed cell on its probe path, or else
// the empty cell that ends the path. The caller holds the shard's lock.
func (t *table) find(h uint64, id string) (at, free *cell) {
	mask := uint64(len(t.cells) - 1)
	for i := h >> 32; ; i++ {
		c := &t.cells[i&mask]
		switch ch := c.h.Load(); ch {
		case 0:
			if free == nil {
				free = c
			}
			return nil, free
		case removed:
			if free == nil {
				free = c
			}
		case h:
			if s := c.s.Load(); s.key == id {
				return c, free
			}
		}
	}
}

// update runs fn on the slot stored under id (nil if none) with id's
// shard locked, then stores the slot fn returns under id, or removes id
// if fn returns nil. The slot fn returns must have id as its key. fn must
// not call back into the index.
func (x *index) update(id string, fn func(old *slot) *slot) {
	h := x.hash(id)
	sh := &x.shards[h&x.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.tab.Load()
	var old *slot
	at, free := t.find(h, id)
	if at != nil {
		old = at.s.Load()
	}
	s := fn(old)
	switch {
	case s == old:
	case s == nil:
		sh.remove(at)
	case at != nil:
		at.s.Store(s)
	default:
		if free.h.Load() == 0 && (sh.used+1)*2 > len(t.cells) {
			// Filling an empty cell would leave less than half of the
			// table empty: rebuild it first, twice as large unless
			// most of the used cells are removed ones, so that a table
			// is a quarter to half full.
			n := len(t.cells)
			if (sh.live+1)*4 > n {
				n *= 2
			}
			t = sh.rebuild(t, n)
			_, free = t.find(h, id)
		}
		if free.h.Load() == 0 {
			sh.used++
		}
		sh.live++
		free.s.Store(s)
		free.h.Store(h)
	}
}

// remove takes the slot out of c. The caller holds the shard's lock.
func (sh *indexShard) remove(c *cell) {
	// The hash goes last: a lookup that still matches it then finds no
	// slot, or a slot whose key it compares.
	c.s.Store(nil)
	c.h.Store(removed)
	sh.live--
}

// rebuild publishes a table of n cells holding the live cells of t and
// returns it. The caller holds the shard's lock.
func (sh *indexShard) rebuild(t *table, n int) *table {
	nt := &table{cells: make([]cell, n)}
	mask := uint64(n - 1)
	for i := range t.cells {
		c := &t.cells[i]
		h := c.h.Load()
		if h&hashFlag == 0 {
			continue
		}
		j := h >> 32
		for nt.cells[j&mask].h.Load() != 0 {
			j++
		}
		nc := &nt.cells[j&mask]
		nc.s.Store(c.s.Load())
		nc.h.Store(h)
	}
	sh.used = sh.live
	sh.tab.Store(nt)
	return nt
}

// pow2 returns the smallest power of two not below n.
func pow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// each calls fn for every slot until fn returns false. It takes no lock:
// each shard is walked as its table was when the walk reached it, so
// slots stored or removed meanwhile may or may not be seen. fn may call
// back into the index.
func (x *index) each(fn func(s *slot) bool) {
	for i := range x.shards {
		t := x.shards[i].tab.Load()
		for j := range t.cells {
			if s := t.cells[j].s.Load(); s != nil && !fn(s) {
				return
			}
		}
	}
}

// sweep removes every slot for which remove returns true and returns how
// many it removed. It locks one shard at a time, which holds up only that
// shard's writers: lookups never wait for it. A shard left mostly empty
// gets a smaller table.
func (x *index) sweep(remove func(s *slot) bool) int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		t := sh.tab.Load()
		for j := range t.cells {
			c := &t.cells[j]
			if s := c.s.Load(); s != nil && remove(s) {
				sh.remove(c)
				n++
			}
		}
		if len(t.cells) > minCells && sh.live*8 < len(t.cells) {
			sh.rebuild(t, max(minCells, pow2(4*sh.live)))
		}
		sh.mu.Unlock()
	}
	return n
}

// size returns the number of slots stored. Shards are counted one after
// another, so under concurrent writes the result is approximate.
func (x *index) size() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		n += sh.live
		sh.mu.Unlock()
	}
	return n
}
