// Package memory is a sessionkit provider that keeps sessions in the
// process's memory, in a sharded hash table whose lookups take no lock.
//
// Sessions are lost when the process exits and are not shared between
// processes: use it for development, tests, and single-instance servers.
// Import it for its side effect of registering the "memory" provider:
//
//	import _ "github.com/sessionkit/sessionkit/memory"
//	err := session.SetProvider("memory", &memory.Config{})
//
// A session is a slot in a sharded hash table that points to the
// session's current version: one immutable allocation holding its
// deadline and its values packed into a string (sessionkit.Packed). Get
// hands out the stored string itself, so reads cost no allocation and
// concurrent readers each see a consistent snapshot. A write builds the
// next version and swaps it in with one compare-and-swap on the slot,
// merging onto the newest version if another write got in first, so no
// write is lost; the table itself is only written when a session is
// created or removed, under its shard's lock. Finding a session takes no
// lock at all and writes no shared memory (not even a read lock's
// counter), so with requests on several cores the table stays in every
// core's cache rather than moving between them at each request, and a
// garbage collection sweeping a shard holds up only that shard's
// creations and removals, never a request's lookup.
package memory

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sessionkit/sessionkit"
)

// Name is the name the provider registers under.
const Name = "memory"

// Config configures the memory provider. The zero value is ready to use.
type Config struct {
	// Shards is the number of shards of the session table, rounded up to
	// a power of two. Default sessionkit.DefaultShards (256). Each shard
	// has its own lock, which only creating and removing sessions (and
	// GC, one shard at a time) take; lookups and writes to existing
	// sessions take none. More shards mean less waiting between
	// concurrent creations and smaller tables to rebuild as they grow.
	Shards int
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

// driver opens providers for SetProvider.
var driver = sessionkit.DriverFor(func(_ context.Context, c Config) (*Provider, error) {
	if c.Shards < 0 {
		return nil, fmt.Errorf("memory: Shards %d is negative: use 0 for the default", c.Shards)
	}
	return New(c), nil
})

func init() { sessionkit.Register(Name, driver) }

// slot is one session's place in the map. p points to the session's
// current version (see newBlob), or to dead once the session was deleted,
// expired and collected, or renamed: a version is only ever replaced by
// compare-and-swap, and nothing replaces dead, so a write that races with
// the session's end fails (ErrNotFound) instead of landing in a slot that
// has left the map. The map key is the ID copied into the slot.
type slot struct {
	p   atomic.Pointer[byte] // the current blob; dead once retired
	key string               // the map key, in idb when it fits
	idb [sessionkit.DefaultIDLength]byte
}

// A version is one allocation: its deadline (unix nanoseconds) and its
// total length, 8 bytes each, little endian, then the packed values. The
// slot points to its first byte, so one atomic pointer publishes the
// deadline and the values together.
const blobHeader = 16

// dead is the version of a retired slot: never live, never replaced.
var dead = func() *byte {
	b := make([]byte, blobHeader)
	binary.LittleEndian.PutUint64(b, 1<<63) // math.MinInt64
	binary.LittleEndian.PutUint64(b[8:], blobHeader)
	return &b[0]
}()

// expiresOf returns a version's deadline.
func expiresOf(b *byte) int64 {
	return int64(binary.LittleEndian.Uint64(unsafe.Slice(b, 8)))
}

// packedOf returns a version's values.
func packedOf(b *byte) sessionkit.Packed {
	n := binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(b), 8)), 8))
	return sessionkit.Packed(unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(b), blobHeader)), int(n)-blobHeader))
}

// zeroHeader is the start of every new version; it is only read.
var zeroHeader [blobHeader]byte

// newBlob builds a version holding u applied to old, until expires.
func newBlob(old sessionkit.Packed, u *sessionkit.Update, expires int64) *byte {
	// AppendPacked grows dst once, to the exact size: given a header with
	// no spare capacity, it makes the one allocation.
	b := u.AppendPacked(zeroHeader[:blobHeader:blobHeader], old)
	binary.LittleEndian.PutUint64(b, uint64(expires))
	binary.LittleEndian.PutUint64(b[8:], uint64(len(b)))
	return &b[0]
}

// newSlot returns a slot for id holding blob, with its own copy of id:
// the caller's string may lie in a buffer that is reused.
func newSlot(id string, blob *byte) *slot {
	s := &slot{}
	if len(id) <= len(s.idb) {
		n := copy(s.idb[:], id)
		s.key = unsafe.String(&s.idb[0], n)
	} else {
		s.key = strings.Clone(id)
	}
	s.p.Store(blob)
	return s
}

// Provider is the memory provider. Create it with New or through
// sessionkit's SetProvider.
type Provider struct {
	m      *index
	closed atomic.Bool
}

// New returns an empty memory provider.
func New(cfg Config) *Provider {
	return &Provider{m: newIndex(cfg.Shards)}
}

func (p *Provider) check(ctx context.Context) error {
	if p.closed.Load() {
		return sessionkit.ErrClosed
	}
	return ctx.Err()
}

// load returns id's slot, or nil.
func (p *Provider) load(id string) *slot { return p.m.get(id) }

// Get implements sessionkit.Provider.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	if err := p.check(ctx); err != nil {
		return sessionkit.Record{}, err
	}
	s := p.load(id)
	if s == nil {
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	b := s.p.Load()
	exp := expiresOf(b)
	if sessionkit.Now(ctx).UnixNano() >= exp {
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	return sessionkit.Record{Packed: packedOf(b), Expires: time.Unix(0, exp)}, nil
}

// retire marks s dead if its version is still cur, and removes it from
// the map. It reports false if another write replaced cur first.
func (p *Provider) retire(s *slot, cur *byte) bool {
	if cur == dead || !s.p.CompareAndSwap(cur, dead) {
		return cur == dead
	}
	p.m.update(s.key, func(v *slot) *slot {
		if v == s {
			return nil
		}
		return v
	})
	return true
}

// insert stores a new session under id, failing with ErrExists if a live
// one is there; an expired one is replaced.
func (p *Provider) insert(id string, blob *byte, now int64) (*slot, error) {
	ns := newSlot(id, blob)
	var err error
	p.m.update(ns.key, func(old *slot) *slot {
		for old != nil {
			cur := old.p.Load()
			if now < expiresOf(cur) {
				err = sessionkit.ErrExists
				return old
			}
			// An expired session is retired before it is replaced, so a
			// write that still finds it fails rather than vanishing
			// with it. The swap fails only if such a write, judging by
			// an earlier clock, got in first: look again.
			if cur == dead || old.p.CompareAndSwap(cur, dead) {
				break
			}
		}
		return ns
	})
	if err != nil {
		return nil, err
	}
	return ns, nil
}

// Update implements sessionkit.Provider. A write to an existing session
// takes no lock: the new version goes in by compare-and-swap, rebuilt on
// the newest version if another write got in first.
func (p *Provider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	now := sessionkit.Now(ctx).UnixNano()
	var exp int64
	if !u.Expires.IsZero() {
		exp = sessionkit.UnixNano(u.Expires)
	}
	if u.Create {
		// A new ID is almost never in the map: go straight to the
		// insertion, which refuses a live session and replaces an
		// expired one.
		_, err := p.insert(id, newBlob("", &u, exp), now)
		return err
	}
	s := p.load(id)
	for s != nil {
		cur := s.p.Load()
		old := expiresOf(cur)
		if now >= old {
			break
		}
		e := exp
		if e == 0 {
			e = old
		}
		if !u.Clear && len(u.Delete) == 0 && len(u.Set) == 0 && e == old {
			return nil
		}
		if s.p.CompareAndSwap(cur, newBlob(packedOf(cur), &u, e)) {
			return nil
		}
	}
	return sessionkit.ErrNotFound
}

// CopiesUpdates implements sessionkit.Copier: a version is built from
// copies of u's values, a slot holds a copy of its ID, and no call keeps
// its context, so the manager may reuse all three for its next save.
func (*Provider) CopiesUpdates() {}

// Touch implements sessionkit.Toucher.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	return p.Update(ctx, id, sessionkit.Update{Expires: expires})
}

// Delete implements sessionkit.Provider.
func (p *Provider) Delete(ctx context.Context, id string) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	if s := p.load(id); s != nil {
		for !p.retire(s, s.p.Load()) {
		}
	}
	return nil
}

// Rename implements sessionkit.Provider. The session is copied to newID
// first, then the old slot retired; if a write to oldID got in between,
// the copy is brought up to date and the retirement tried again, so no
// write is lost. Only the caller knows newID until Rename returns, so the
// moment both IDs exist is never seen.
func (p *Provider) Rename(ctx context.Context, oldID, newID string, expires time.Time) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	if oldID == newID {
		return fmt.Errorf("memory: rename to the same ID: %w", sessionkit.ErrExists)
	}
	now := sessionkit.Now(ctx).UnixNano()
	exp := sessionkit.UnixNano(expires)
	s := p.load(oldID)
	if s == nil {
		return sessionkit.ErrNotFound
	}
	var ns *slot
	for {
		cur := s.p.Load()
		if now >= expiresOf(cur) {
			if ns != nil {
				p.retire(ns, ns.p.Load())
			}
			return sessionkit.ErrNotFound
		}
		next := newBlob(packedOf(cur), &sessionkit.Update{}, exp)
		if ns == nil {
			var err error
			if ns, err = p.insert(newID, next, now); err != nil {
				return err
			}
		} else {
			ns.p.Store(next)
		}
		if p.retire(s, cur) {
			return nil
		}
	}
}

// each calls fn for every slot with its current version.
func (p *Provider) each(fn func(s *slot, cur *byte) bool) {
	p.m.each(func(s *slot) bool { return fn(s, s.p.Load()) })
}

// Count implements sessionkit.Counter. It walks every session, so it costs
// time in proportion to their number.
func (p *Provider) Count(ctx context.Context) (int, error) {
	if err := p.check(ctx); err != nil {
		return 0, err
	}
	n, now := 0, time.Now().UnixNano()
	p.each(func(_ *slot, cur *byte) bool {
		if now < expiresOf(cur) {
			n++
		}
		return true
	})
	return n, nil
}

// Stored returns the number of sessions held in memory, including expired
// ones that garbage collection has not removed yet.
func (p *Provider) Stored() int { return p.m.size() }

// Range implements sessionkit.Ranger. It takes no lock: fn may call the
// provider, and sessions created or removed during the walk may or may
// not be seen.
func (p *Provider) Range(ctx context.Context, fn func(id string, r sessionkit.Record) bool) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.each(func(s *slot, cur *byte) bool {
		exp := expiresOf(cur)
		if now >= exp {
			return true
		}
		return fn(s.key, sessionkit.Record{Packed: packedOf(cur), Expires: time.Unix(0, exp)})
	})
	return nil
}

// GC implements sessionkit.GarbageCollector. It locks one shard at a time
// against creations and removals only, so requests never wait for it; a
// session written while GC looks at it (by a request whose clock still
// found it live) is kept.
func (p *Provider) GC(ctx context.Context) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.m.sweep(func(s *slot) bool {
		cur := s.p.Load()
		return now >= expiresOf(cur) && (cur == dead || s.p.CompareAndSwap(cur, dead))
	})
	return nil
}

// Close implements sessionkit.Provider. It drops every session.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.m.sweep(func(*slot) bool { return true })
	return nil
}
