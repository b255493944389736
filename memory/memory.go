// Package memory is a sessionkit provider that keeps sessions in the
// process's memory, in a sharded concurrent map (sessionkit.CCMap).
//
// Sessions are lost when the process exits and are not shared between
// processes: use it for development, tests, and single-instance servers.
// Import it for its side effect of registering the "memory" provider:
//
//	import _ "github.com/sessionkit/sessionkit/memory"
//	err := session.SetProvider("memory", &memory.Config{})
//
// Each session is one allocation: its ID followed by its values packed
// into one immutable string (sessionkit.Packed), which is also the map's
// key. Records are never modified in place (every Update builds a new
// one), so Get hands out the stored string itself: reads cost no
// allocation, and concurrent readers each see a consistent snapshot.
package memory

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sessionkit/sessionkit"
)

// Name is the name the provider registers under.
const Name = "memory"

// Config configures the memory provider. The zero value is ready to use.
type Config struct {
	// Shards is the number of independently locked shards, rounded up to a
	// power of two. Default sessionkit.DefaultShards (256). More shards
	// mean less lock contention and shorter pauses per shard during GC.
	Shards int
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

type driver struct{}

func init() { sessionkit.Register(Name, driver{}) }

// Open implements sessionkit.Driver.
func (driver) Open(_ context.Context, cfg sessionkit.ProviderConfig) (sessionkit.Provider, error) {
	c, err := sessionkit.ConfigAs[Config](cfg)
	if err != nil {
		return nil, err
	}
	if c.Shards < 0 {
		return nil, fmt.Errorf("memory: Shards %d is negative: use 0 for the default", c.Shards)
	}
	return New(c), nil
}

// record is one stored session. blob is the session's ID followed by its
// packed values; the map's key is the ID part of it, so a session costs one
// allocation. blob is never modified.
type record struct {
	blob    string
	expires int64 // unix nanoseconds
}

// values returns the packed values of the session stored under id.
func (r record) values(id string) sessionkit.Packed {
	if len(r.blob) < len(id) {
		return ""
	}
	return sessionkit.Packed(r.blob[len(id):])
}

// newRecord builds the record for id holding u applied to old.
func newRecord(id string, old sessionkit.Packed, u sessionkit.Update, expires int64) record {
	// AppendPacked grows dst once, to the exact size, and AppendPacked
	// always appends: given id's bytes with no spare capacity, it makes the
	// one allocation, copies id into it, and never writes to id's memory.
	idb := unsafe.Slice(unsafe.StringData(id), len(id))
	b := u.AppendPacked(idb[:len(id):len(id)], old)
	return record{blob: unsafe.String(&b[0], len(b)), expires: expires}
}

// key returns the map key of a record stored under id: the ID inside blob.
func (r record) key(id string) string {
	if len(r.blob) < len(id) {
		return id
	}
	return r.blob[:len(id)]
}

// Provider is the memory provider. Create it with New or through
// sessionkit's SetProvider.
type Provider struct {
	m      *sessionkit.CCMap[string, record]
	closed atomic.Bool
}

// New returns an empty memory provider.
func New(cfg Config) *Provider {
	return &Provider{m: sessionkit.NewCCMap[string, record](cfg.Shards)}
}

func (p *Provider) check(ctx context.Context) error {
	if p.closed.Load() {
		return sessionkit.ErrClosed
	}
	return ctx.Err()
}

func live(r record, now int64) bool { return now < r.expires }

// Get implements sessionkit.Provider.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	if err := p.check(ctx); err != nil {
		return sessionkit.Record{}, err
	}
	r, ok := p.m.Get(id)
	if !ok || !live(r, sessionkit.Now(ctx).UnixNano()) {
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	return sessionkit.Record{Packed: r.values(id), Expires: time.Unix(0, r.expires)}, nil
}

// Update implements sessionkit.Provider.
func (p *Provider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	var err error
	now := sessionkit.Now(ctx).UnixNano()
	p.m.UpdateKeyed(id, func(r record, ok bool) (string, record, bool) {
		ok = ok && live(r, now)
		switch {
		case !ok && !u.Create:
			err = sessionkit.ErrNotFound
			return id, r, false
		case ok && u.Create:
			err = sessionkit.ErrExists
			return r.key(id), r, true
		}
		expires := r.expires
		if !u.Expires.IsZero() {
			expires = sessionkit.UnixNano(u.Expires)
		}
		if ok && !u.Clear && len(u.Delete) == 0 && len(u.Set) == 0 {
			return r.key(id), record{blob: r.blob, expires: expires}, true
		}
		var old sessionkit.Packed
		if ok {
			old = r.values(id)
		}
		next := newRecord(id, old, u, expires)
		return next.key(id), next, true
	})
	return err
}

// Touch implements sessionkit.Toucher.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	return p.Update(ctx, id, sessionkit.Update{Expires: expires})
}

// Delete implements sessionkit.Provider.
func (p *Provider) Delete(ctx context.Context, id string) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	p.m.Delete(id)
	return nil
}

// Rename implements sessionkit.Provider.
func (p *Provider) Rename(ctx context.Context, oldID, newID string, expires time.Time) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	if oldID == newID {
		return fmt.Errorf("memory: rename to the same ID: %w", sessionkit.ErrExists)
	}
	var err error
	now := sessionkit.Now(ctx).UnixNano()
	p.m.Update2Keyed(oldID, newID, func(o record, okO bool, n record, okN bool) (string, record, bool, string, record, bool) {
		okO = okO && live(o, now)
		okN = okN && live(n, now)
		switch {
		case !okO:
			err = sessionkit.ErrNotFound
			return o.key(oldID), o, false, n.key(newID), n, okN
		case okN:
			err = sessionkit.ErrExists
			return o.key(oldID), o, true, n.key(newID), n, true
		}
		next := newRecord(newID, o.values(oldID), sessionkit.Update{}, sessionkit.UnixNano(expires))
		return oldID, o, false, next.key(newID), next, true
	})
	return err
}

// Count implements sessionkit.Counter. It walks every shard, so it costs
// time in proportion to the number of sessions.
func (p *Provider) Count(ctx context.Context) (int, error) {
	if err := p.check(ctx); err != nil {
		return 0, err
	}
	n, now := 0, time.Now().UnixNano()
	p.m.Range(func(_ string, r record) bool {
		if live(r, now) {
			n++
		}
		return true
	})
	return n, nil
}

// Stored returns the number of sessions held in memory, including expired
// ones that garbage collection has not removed yet.
func (p *Provider) Stored() int { return p.m.Len() }

// Range implements sessionkit.Ranger.
func (p *Provider) Range(ctx context.Context, fn func(id string, r sessionkit.Record) bool) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.m.Range(func(id string, r record) bool {
		if !live(r, now) {
			return true
		}
		return fn(id, sessionkit.Record{Packed: r.values(id), Expires: time.Unix(0, r.expires)})
	})
	return nil
}

// GC implements sessionkit.GarbageCollector. It locks one shard at a time,
// so requests on the other shards never wait for it.
func (p *Provider) GC(ctx context.Context) error {
	if err := p.check(ctx); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.m.Sweep(func(_ string, r record) bool { return !live(r, now) })
	return nil
}

// Close implements sessionkit.Provider. It drops every session.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.m.Sweep(func(string, record) bool { return true })
	return nil
}
