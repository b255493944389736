package memory

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sessionkit/sessionkit"
)

// index maps session IDs to their current versions (see version.go). It
// is a hash table split into shards, each an open-addressing table with
// linear probing, built so that a lookup takes no lock and writes no
// memory: with requests on several cores, a lock taken even shared
// (sync.RWMutex.RLock) writes its reader count, and the cache line
// holding it then moves from core to core at every lookup. Here a lookup
// reads the shard's table pointer and the cells it probes with atomic
// loads, so the table stays in every core's cache until a session is
// created, written or removed.
//
// A cell points straight at the session's current version, which holds
// the session's ID: a lookup reads the cell, then the version, two
// dependent reads of memory, where a cell pointing at a per-session slot
// that pointed at the version took three. On a table of thousands of
// sessions each of them is a likely cache miss, and the misses, not the
// instructions, are most of a lookup's time.
//
// A write to an existing session replaces its version in the cell with
// one compare-and-swap, taking no lock. Writers that add or remove cells
// (creating, removing, sweeping) lock their shard, write cells with
// atomic stores in an order that lets a concurrent lookup see a cell
// either before or after the change but never a torn one, and never
// move a cell in place: when a table fills up, a new one is built beside
// it (see rebuild), each old cell's version is handed over to the new
// table by swapping in the moved marker, and the new table is published
// with one atomic store. A lookup or a write that meets a moved cell goes
// on in the new table, so a write racing with a rebuild lands in one
// table or the other, never in a table that has been left. A lookup
// therefore finds a session that was in the index for its whole duration,
// and may or may not find one created or removed meanwhile, as with a
// lock.
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
	mu   sync.Mutex // held by writers that add or remove cells
	tab  atomic.Pointer[table]
	live int // cells holding a version (under mu)
	used int // cells not empty: live ones and removed ones (under mu)
	// serial is the serial of the shard's newest session (under mu;
	// see version.go).
	serial uint16
	// Padding keeps neighbouring shards off one cache line, so one
	// shard's writers do not slow down another's lookups.
	_ [30]byte
}

// table is one generation of a shard's cells; len(cells) is a power of
// two.
type table struct {
	cells []cell
	// next is the table that replaced this one. It is set before the
	// first cell is marked moved, so whoever meets that marker finds it.
	next atomic.Pointer[table]
}

// cell is one place in a table. h is 0 while the cell is empty, removed
// once its session was taken out, and otherwise the hash of the
// session's ID (with its top bit set, so it is neither of the others). v
// is the session's current version; dead once the session was retired
// (until its cell is removed), moved once a rebuild handed the session
// over to the next table, and nil in an empty or removed cell.
type cell struct {
	h atomic.Uint64
	v atomic.Pointer[byte]
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

// get returns the cell holding id's session and the session's current
// version, or nils. Its probe ends at an empty cell, and a table always
// has one (see insert).
func (x *index) get(id string) (*cell, *byte) {
	h := x.hash(id)
	t := x.shards[h&x.mask].tab.Load()
probe:
	for {
		mask := uint64(len(t.cells) - 1)
		sawMoved := false
		for i := h >> 32; ; i++ {
			c := &t.cells[i&mask]
			switch ch := c.h.Load(); ch {
			case 0:
				if !sawMoved {
					return nil, nil
				}
				// A moved cell with id's hash was passed: it was id's,
				// or another ID's with the same hash, whose session
				// went ahead to the next table while id's may not have
				// yet. id is not in this table, so it is in the next.
				t = t.next.Load()
				continue probe
			case h:
				// A writer stores the version before the hash, so the
				// version read here is at least as new as the hash; it
				// may be newer (the cell removed or reused meanwhile),
				// which the ID the version holds settles.
				v := c.v.Load()
				if v == moved {
					sawMoved = true
				} else if v != nil && v != dead && keyOf(v) == id {
					return c, v
				}
			}
		}
	}
}

// find returns the cell of t holding id's session (the session may be
// expired) and its version, or nils, and the cell where id would be
// inserted: the first removed cell on its probe path, or else the empty
// cell that ends the path. The caller holds the shard's lock, so t is
// the shard's current table and has no moved cells.
func (t *table) find(h uint64, id string) (at *cell, cur *byte, free *cell) {
	mask := uint64(len(t.cells) - 1)
	for i := h >> 32; ; i++ {
		c := &t.cells[i&mask]
		switch ch := c.h.Load(); ch {
		case 0:
			if free == nil {
				free = c
			}
			return nil, nil, free
		case removed:
			if free == nil {
				free = c
			}
		case h:
			if v := c.v.Load(); v != dead && keyOf(v) == id {
				return c, v, free
			}
		}
	}
}

// insert stores v, the first version of a new session, under the ID it
// holds, and gives it the shard's next serial. A session already there
// that is live at now makes it fail with sessionkit.ErrExists; an expired
// one is replaced in its cell, and a write still holding its version then
// fails, since the serial tells the two sessions apart.
func (x *index) insert(v *byte, now int64) error {
	id := keyOf(v)
	h := x.hash(id)
	sh := &x.shards[h&x.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.serial++
	setSerial(v, sh.serial)
	t := sh.tab.Load()
	at, cur, free := t.find(h, id)
	for at != nil {
		if now < expiresOf(cur) {
			return sessionkit.ErrExists
		}
		// The swap fails only if a write (judging by an earlier clock)
		// or a retirement got in first: look again.
		if at.v.CompareAndSwap(cur, v) {
			return nil
		}
		cur = at.v.Load()
	}
	if free.h.Load() == 0 && (sh.used+1)*2 > len(t.cells) {
		// Filling an empty cell would leave less than half of the
		// table empty: rebuild it first, twice as large unless most of
		// the used cells are removed ones, so that a table is a quarter
		// to half full.
		n := len(t.cells)
		if (sh.live+1)*4 > n {
			n *= 2
		}
		t = sh.rebuild(t, n)
		_, _, free = t.find(h, id)
	}
	if free.h.Load() == 0 {
		sh.used++
	}
	sh.live++
	free.v.Store(v)
	free.h.Store(h)
	return nil
}

// retire ends the session whose version cur lies in c, by swapping in
// dead, and removes its cell. It reports false if another write replaced
// cur first (or a rebuild moved the cell): the caller looks again.
func (x *index) retire(c *cell, cur *byte) bool {
	if !c.v.CompareAndSwap(cur, dead) {
		return false
	}
	sh := &x.shards[x.hash(keyOf(cur))&x.mask]
	sh.mu.Lock()
	// A rebuild since the swap has dropped the cell already: it is
	// then not in the current table.
	if t := sh.tab.Load(); t.holds(c) && c.v.Load() == dead {
		sh.remove(c)
	}
	sh.mu.Unlock()
	return true
}

// holds reports whether c is one of t's cells.
func (t *table) holds(c *cell) bool {
	off := uintptr(unsafe.Pointer(c)) - uintptr(unsafe.Pointer(&t.cells[0]))
	return off < uintptr(len(t.cells))*unsafe.Sizeof(cell{})
}

// remove empties c of its session. The caller holds the shard's lock.
func (sh *indexShard) remove(c *cell) {
	// The hash goes last: a lookup that still matches it then finds no
	// version, or a version whose ID it compares.
	c.v.Store(nil)
	c.h.Store(removed)
	sh.live--
}

// rebuild publishes a table of n cells holding the sessions of t and
// returns it. The caller holds the shard's lock, which keeps cells from
// being added or removed, but not versions from being replaced: each
// session is copied into the new table, then its old cell swapped from
// the version copied to moved, copying again if a write got in between,
// so the new table has the newest version by the time writers are sent
// to it.
func (sh *indexShard) rebuild(t *table, n int) *table {
	nt := &table{cells: make([]cell, n)}
	t.next.Store(nt)
	mask := uint64(n - 1)
	live, used := 0, 0
	for i := range t.cells {
		c := &t.cells[i]
		h := c.h.Load()
		if h&hashFlag == 0 {
			continue
		}
		var nc *cell
		for {
			v := c.v.Load()
			if v == dead {
				// Retired: its retirer finds the cell gone from the
				// current table and leaves it. A copy already made
				// is removed.
				if nc != nil {
					nc.v.Store(nil)
					nc.h.Store(removed)
					live--
				}
				break
			}
			if nc == nil {
				j := h >> 32
				for nt.cells[j&mask].h.Load() != 0 {
					j++
				}
				nc = &nt.cells[j&mask]
				nc.v.Store(v)
				nc.h.Store(h)
				live++
				used++
			} else {
				nc.v.Store(v)
			}
			if c.v.CompareAndSwap(v, moved) {
				break
			}
		}
	}
	sh.live, sh.used = live, used
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

// each calls fn for every session's current version until fn returns
// false. Each shard's versions are gathered under its lock, then handed
// to fn without it, so fn may call back into the index; sessions written,
// created or removed after their shard was gathered are seen as they
// were.
func (x *index) each(fn func(v *byte) bool) {
	var vs []*byte
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		t := sh.tab.Load()
		vs = vs[:0]
		for j := range t.cells {
			if v := t.cells[j].v.Load(); v != nil && v != dead {
				vs = append(vs, v)
			}
		}
		sh.mu.Unlock()
		for _, v := range vs {
			if !fn(v) {
				return
			}
		}
	}
}

// sweep retires and removes every session whose current version expired
// says is over, and returns how many it removed. It locks one shard at a
// time, which holds up only that shard's creations and removals: lookups
// and writes never wait for it. A session written while sweep looks at it
// is judged again on its new version. A shard left mostly empty gets a
// smaller table.
func (x *index) sweep(expired func(v *byte) bool) int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		t := sh.tab.Load()
		for j := range t.cells {
			c := &t.cells[j]
			if c.h.Load()&hashFlag == 0 {
				continue
			}
			for {
				v := c.v.Load()
				if v == dead {
					// Retired by a writer that has not removed it
					// yet; it will find the cell removed.
					sh.remove(c)
					break
				}
				if !expired(v) {
					break
				}
				if c.v.CompareAndSwap(v, dead) {
					sh.remove(c)
					n++
					break
				}
			}
		}
		if len(t.cells) > minCells && sh.live*8 < len(t.cells) {
			sh.rebuild(t, max(minCells, pow2(4*sh.live)))
		}
		sh.mu.Unlock()
	}
	return n
}

// size returns the number of sessions stored. Shards are counted one
// after another, so under concurrent writes the result is approximate.
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
