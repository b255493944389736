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
// A session is a cell of a sharded hash table pointing to the session's
// current version: one immutable allocation holding its ID, its deadline
// and its values packed into a string (sessionkit.Packed). Get hands out
// the stored string itself, so reads cost no allocation and concurrent
// readers each see a consistent snapshot. A write builds the next version
// and swaps it in with one compare-and-swap on the cell, merging onto the
// newest version if another write got in first, so no write is lost;
// cells are only added or removed when a session is created or removed,
// under its shard's lock. Finding a session takes no lock at all and
// writes no shared memory (not even a read lock's counter), so with
// requests on several cores the table stays in every core's cache rather
// than moving between them at each request, and a garbage collection
// sweeping a shard holds up only that shard's creations and removals,
// never a request's lookup or write.
package memory

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

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

// Get implements sessionkit.Provider.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	if err := p.check(ctx); err != nil {
		return sessionkit.Record{}, err
	}
	_, v := p.m.get(id)
	if v == nil {
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	exp := expiresOf(v)
	if sessionkit.Now(ctx).UnixNano() >= exp {
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	return sessionkit.Record{Packed: packedOf(v), Expires: time.Unix(0, exp)}, nil
}

// again looks id up after a compare-and-swap on its cell failed, and
// returns its cell and version if they are still those of the session
// whose version had the given serial, or nils.
func (p *Provider) again(id string, serial uint16) (*cell, *byte) {
	c, v := p.m.get(id)
	if v == nil || serialOf(v) != serial {
		return nil, nil
	}
	return c, v
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
		v, err := newVersion(id, 0, "", &u, exp)
		if err != nil {
			return err
		}
		return p.m.insert(v, now)
	}
	c, cur := p.m.get(id)
	for cur != nil {
		old := expiresOf(cur)
		if now >= old {
			break
		}
		e := exp
		if e == 0 {
			e = old
		}
		if !u.Clear && len(u.Delete) == 0 && u.SetLen() == 0 && e == old {
			return nil
		}
		serial := serialOf(cur)
		v, err := newVersion(keyOf(cur), serial, packedOf(cur), &u, e)
		if err != nil {
			return err
		}
		if c.v.CompareAndSwap(cur, v) {
			return nil
		}
		c, cur = p.again(id, serial)
	}
	return sessionkit.ErrNotFound
}

// CopiesUpdates implements sessionkit.Copier: a version is built from
// copies of u's values and of its ID, and no call keeps its context, so
// the manager may reuse all three for its next save.
func (*Provider) CopiesUpdates() {}

// ReadsUpdatesByMethod implements sessionkit.MethodReader: Update reads
// the values it stores through the Update's methods only.
func (*Provider) ReadsUpdatesByMethod() {}

// Touch implements sessionkit.Toucher.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	return p.Update(ctx, id, sessionkit.Update{Expires: expires})
}

// Delete implements sessionkit.Provider.
func (p *Provider) Delete(ctx context.Context, id string) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	p.delete(id)
	return nil
}

// delete retires whatever session id has.
func (p *Provider) delete(id string) {
	for c, cur := p.m.get(id); cur != nil && !p.m.retire(c, cur); {
		c, cur = p.m.get(id)
	}
}

// Rename implements sessionkit.Provider. The session is copied to newID
// first, then the old one retired; if a write to oldID got in between,
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
	c, cur := p.m.get(oldID)
	if cur == nil {
		return sessionkit.ErrNotFound
	}
	serial := serialOf(cur)
	var copied *byte // the version last stored under newID
	for {
		if now >= expiresOf(cur) {
			if copied != nil {
				p.delete(newID)
			}
			return sessionkit.ErrNotFound
		}
		var ns uint16
		if copied != nil {
			ns = serialOf(copied)
		}
		next, err := newVersion(newID, ns, packedOf(cur), &sessionkit.Update{}, exp)
		if err != nil {
			return err
		}
		if copied == nil {
			if err := p.m.insert(next, now); err != nil {
				return err
			}
		} else if !p.replace(newID, copied, next) {
			// Only a Delete of newID, which no one should know yet,
			// takes the copy away.
			return sessionkit.ErrNotFound
		}
		copied = next
		if p.m.retire(c, cur) {
			return nil
		}
		if c, cur = p.again(oldID, serial); cur == nil {
			p.delete(newID)
			return sessionkit.ErrNotFound
		}
	}
}

// replace swaps id's version cur for next, finding its cell again after
// a rebuild moved it. It reports false if cur is no longer id's version.
func (p *Provider) replace(id string, cur, next *byte) bool {
	for {
		c, v := p.m.get(id)
		if v != cur {
			return false
		}
		if c.v.CompareAndSwap(cur, next) {
			return true
		}
	}
}

// Count implements sessionkit.Counter. It walks every session, so it costs
// time in proportion to their number.
func (p *Provider) Count(ctx context.Context) (int, error) {
	if err := p.check(ctx); err != nil {
		return 0, err
	}
	n, now := 0, time.Now().UnixNano()
	p.m.each(func(v *byte) bool {
		if now < expiresOf(v) {
			n++
		}
		return true
	})
	return n, nil
}

// Stored returns the number of sessions held in memory, including expired
// ones that garbage collection has not removed yet.
func (p *Provider) Stored() int { return p.m.size() }

// Range implements sessionkit.Ranger. It holds no lock while fn runs: fn
// may call the provider, and sessions created or removed during the walk
// may or may not be seen.
func (p *Provider) Range(ctx context.Context, fn func(id string, r sessionkit.Record) bool) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.m.each(func(v *byte) bool {
		exp := expiresOf(v)
		if now >= exp {
			return true
		}
		return fn(keyOf(v), sessionkit.Record{Packed: packedOf(v), Expires: time.Unix(0, exp)})
	})
	return nil
}

// GC implements sessionkit.GarbageCollector. It locks one shard at a time
// against creations and removals only, so requests never wait for it; a
// session written while GC looks at it (by a request whose clock still
// found it live) is judged on its new deadline.
func (p *Provider) GC(ctx context.Context) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.m.sweep(func(v *byte) bool { return now >= expiresOf(v) })
	return nil
}

// Close implements sessionkit.Provider. It drops every session.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.m.sweep(func(*byte) bool { return true })
	return nil
}
