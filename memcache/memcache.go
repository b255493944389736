// Package memcache is a sessionkit provider that keeps sessions in one or
// more memcached servers, through github.com/bradfitz/gomemcache.
//
// Import it for its side effect of registering the "memcache" provider:
//
//	import _ "github.com/sessionkit/sessionkit/memcache"
//
//	err := session.SetProvider("memcache", &memcache.Config{
//		Servers: []string{"cache-1.internal:11211", "cache-2.internal:11211"},
//	})
//
// # Configuration
//
//	Field         Default               Meaning
//	Servers       ["127.0.0.1:11211"]   memcached addresses (host:port or a unix socket path);
//	                                    sessions are spread over them by key
//	Prefix        "sessionkit:"         prepended to every key, to share servers with other data
//	Timeout       500ms                 socket read/write and connect timeout of each call
//	MaxIdleConns  16                    idle connections kept per server
//	MaxRetries    100                   compare-and-swap attempts per Update before giving up
//	Client        nil                   an existing gomemcache client: Servers, Timeout and
//	                                    MaxIdleConns are then ignored and Close leaves it open
//
// # Storage
//
// Each session is one memcached item under Prefix+ID. Its value is an
// 8-byte big-endian deadline in Unix nanoseconds followed by the values as
// packed by sessionkit.EncodeValues; the item's flags mark the format. The
// deadline is checked on every read, so a session is dead at its exact
// deadline; memcached's own expiry, which counts whole seconds, is set a
// little later and only frees the memory. Memcached reads an expiry of
// more than 30 days as a Unix timestamp, so for sessions that long the
// clocks of the application and memcached hosts must roughly agree.
//
// An ID so long that Prefix+ID would pass memcached's 250-byte key limit
// is stored under Prefix+"#"+base64url(SHA-256(ID)) instead; '#' never
// occurs in a valid ID, so the two forms cannot collide.
//
// An item is at most memcached's item size limit (1 MiB unless the server
// is started with -I): larger sessions fail to save with an error.
//
// # Guarantees and limits
//
// Update is an atomic read-modify-write: a compare-and-swap loop (gets,
// then cas) that retries when another writer got in between, up to
// MaxRetries times, then fails with an error wrapping ErrContention. Get
// returns the item's CAS ID as the Record's Rev, so the first write of a
// request, which the manager sends with the session as read
// (Update.Base), is usually a single cas; a new session is a single add.
//
// Rename is not atomic, because memcached has no operation on two keys. It
// adds the new item, then turns the old one into a tombstone with a
// compare-and-swap and deletes it. An Update of the old ID that lands
// between the two steps makes the swap fail; Rename then removes the new
// item and starts again, so no Update of the old ID is ever lost: it is
// either copied to the new ID or refused with ErrNotFound. During the
// short window between the two steps, a reader may see the session under
// both IDs (never under neither). If the process dies or the server
// becomes unreachable inside that window, both IDs can stay live until
// they expire.
//
// The provider cannot count or list sessions (memcached cannot enumerate
// keys), so it is not a sessionkit.Counter or sessionkit.Ranger: the
// manager's Count returns sessionkit.ErrNotSupported. Memcached expires
// items itself, so it needs no GC either. Memcached is a cache: it may
// evict a session early when it runs out of memory, which logs that user
// out.
//
// gomemcache has no context support: every method checks its context
// before each network call, and Timeout bounds each call.
package memcache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/sessionkit/sessionkit"
)

// Name is the name the provider registers under.
const Name = "memcache"

// Defaults for the zero Config.
const (
	DefaultServer       = "127.0.0.1:11211"
	DefaultPrefix       = "sessionkit:"
	DefaultTimeout      = 500 * time.Millisecond
	DefaultMaxIdleConns = 16
	DefaultMaxRetries   = 100
)

// maxKeyLength is memcached's limit on a key.
const maxKeyLength = 250

// hashedKeyLength is the length, after the prefix, of the key of an ID too
// long to be used as it is: '#' and an unpadded base64 SHA-256.
const hashedKeyLength = 1 + 43

// MaxPrefixLength is the longest Prefix accepted: with it, the key of any
// valid session ID (up to sessionkit.MaxIDLength bytes, hashed when too
// long) still fits memcached's 250-byte limit.
const MaxPrefixLength = maxKeyLength - min(sessionkit.MaxIDLength, hashedKeyLength)

var (
	// ErrContention is wrapped by the error of an Update or Rename that
	// lost the compare-and-swap race MaxRetries times in a row.
	ErrContention = errors.New("memcache: too many concurrent updates of one session")
)

// Config configures the memcache provider. The zero value talks to
// memcached on 127.0.0.1:11211.
type Config struct {
	// Servers lists the memcached servers, as host:port or the path of a
	// unix socket. Keys are spread over them by a hash, so every process
	// sharing sessions must list the same servers in the same order.
	// Default [DefaultServer].
	Servers []string
	// Prefix is prepended to every key, so the servers can hold other
	// data, or several applications' sessions. Up to MaxPrefixLength
	// bytes, without spaces or control characters. Default DefaultPrefix.
	Prefix string
	// Timeout bounds connecting and each read or write on a connection.
	// Default DefaultTimeout.
	Timeout time.Duration
	// MaxIdleConns is the number of idle connections kept per server.
	// Set it at least to the number of requests served at once, or
	// connections will be opened and closed under load. Default
	// DefaultMaxIdleConns.
	MaxIdleConns int
	// MaxRetries bounds the compare-and-swap attempts of one Update,
	// Touch or Rename. Default DefaultMaxRetries.
	MaxRetries int
	// Client, if set, is used instead of a client built from Servers,
	// Timeout and MaxIdleConns. The provider does not own it: Close
	// leaves it usable.
	Client *memcache.Client
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

// driver opens providers for SetProvider; unlike New, it checks that
// every server answers.
var driver = sessionkit.DriverFor(func(ctx context.Context, c Config) (*Provider, error) {
	p, err := New(c)
	if err != nil {
		return nil, err
	}
	if err := p.Ping(ctx); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
})

func init() { sessionkit.Register(Name, driver) }

// itemFlags marks an item written by this provider in this format; any
// other item under a session key reads as corrupt.
const itemFlags uint32 = 0x534b0001 // "SK", format 1

// headerLen is the size of the deadline before the encoded values.
const headerLen = 8

// Provider is the memcache provider. Create it with New or through
// sessionkit's SetProvider.
type Provider struct {
	c          *memcache.Client
	ownClient  bool
	prefix     string
	maxRetries int
	closed     atomic.Bool
}

// New returns a provider for cfg. It validates cfg but does not connect:
// the first call does (Open, used by SetProvider, also pings).
func New(cfg Config) (*Provider, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: memcache: %s", sessionkit.ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(prefix) > MaxPrefixLength {
		return nil, bad("Prefix is %d bytes; at most %d fit, because memcached keys are limited to %d bytes and a session key adds up to %d",
			len(prefix), MaxPrefixLength, maxKeyLength, maxKeyLength-MaxPrefixLength)
	}
	if i := strings.IndexFunc(prefix, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return nil, bad("Prefix %q contains a space or control character (byte %d), which memcached keys cannot", prefix, i)
	}
	switch {
	case cfg.Timeout < 0:
		return nil, bad("Timeout %v is negative: use 0 for the default", cfg.Timeout)
	case cfg.MaxIdleConns < 0:
		return nil, bad("MaxIdleConns %d is negative: use 0 for the default", cfg.MaxIdleConns)
	case cfg.MaxRetries < 0:
		return nil, bad("MaxRetries %d is negative: use 0 for the default", cfg.MaxRetries)
	}
	p := &Provider{prefix: prefix, maxRetries: cfg.MaxRetries, c: cfg.Client}
	if p.maxRetries == 0 {
		p.maxRetries = DefaultMaxRetries
	}
	if p.c == nil {
		servers := cfg.Servers
		if len(servers) == 0 {
			servers = []string{DefaultServer}
		}
		for i, s := range servers {
			if strings.TrimSpace(s) == "" {
				return nil, bad("Servers[%d] is empty", i)
			}
		}
		// memcache.New drops address errors; SetServers reports them.
		ss := new(memcache.ServerList)
		if err := ss.SetServers(servers...); err != nil {
			return nil, bad("Servers %q: %v", servers, err)
		}
		p.c = memcache.NewFromSelector(ss)
		p.c.Timeout = cfg.Timeout
		if p.c.Timeout == 0 {
			p.c.Timeout = DefaultTimeout
		}
		p.c.MaxIdleConns = cfg.MaxIdleConns
		if p.c.MaxIdleConns == 0 {
			p.c.MaxIdleConns = DefaultMaxIdleConns
		}
		p.ownClient = true
	}
	return p, nil
}

// key returns the memcached key of a session, or an error for an invalid
// ID.
func (p *Provider) key(id string) (string, error) {
	if !sessionkit.ValidID(id) {
		return "", fmt.Errorf("%w (%d bytes)", sessionkit.ErrInvalidID, len(id))
	}
	if len(p.prefix)+len(id) <= maxKeyLength {
		return p.prefix + id, nil
	}
	sum := sha256.Sum256([]byte(id))
	return p.prefix + "#" + base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// check reports why no call may be made now: the provider is closed or
// ctx is done. op names the operation for the error message.
func (p *Provider) check(ctx context.Context, op string) error {
	if p.closed.Load() {
		return fmt.Errorf("memcache: %s: %w", op, sessionkit.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcache: %s: %w", op, err)
	}
	return nil
}

// netErr wraps an error from the client. An error that is not one of
// memcached's answers means a connection failed: the idle connections are
// then dropped too, because after a server restart they are all dead, and
// reusing them would fail the next calls one by one.
func (p *Provider) netErr(op string, err error) error {
	switch {
	case errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrCASConflict),
		errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrMalformedKey):
	default:
		_ = p.c.Close() // closes idle connections only; the client stays usable
	}
	return fmt.Errorf("memcache: %s: %w", op, err)
}

// Ping checks that every server answers.
func (p *Provider) Ping(ctx context.Context) error {
	if err := p.check(ctx, "ping"); err != nil {
		return err
	}
	if err := p.c.Ping(); err != nil {
		return p.netErr("ping", err)
	}
	return nil
}

// thirtyDays is memcached's bound between relative and absolute expiration
// times: a larger number is read as a Unix timestamp.
const thirtyDays = 30 * 24 * 60 * 60

// expiration returns the memcached expiration for an item whose session
// dies at deadline (Unix nanoseconds), seen at now (Unix nanoseconds).
//
// It errs late, never early: the item must outlive the deadline that
// reads check. Memcached counts whole seconds from a clock that may lag a
// second behind, and drops an item once that clock reaches the item's
// expiry: so a relative expiry counts from the current whole second to the
// first whole second at or after the deadline, plus one. Deadlines past
// 2038 are clamped to the largest timestamp the protocol carries.
func expiration(deadline, now int64) int32 {
	if deadline <= now {
		return 1 // dead already: let memcached drop it soon
	}
	const sec = int64(time.Second)
	end := deadline / sec // the deadline, rounded up to a whole second
	if deadline%sec != 0 {
		end++
	}
	if rel := end - now/sec + 1; rel <= thirtyDays {
		return int32(rel)
	}
	// Absolute times are compared with memcached's real clock, not its
	// lagging one; the extra second covers a small clock difference
	// between the hosts.
	if abs := end + 1; abs < math.MaxInt32 {
		return int32(abs)
	}
	return math.MaxInt32
}

// encode builds a session item's value: the deadline, then u applied to
// the values in old.
func encode(deadline int64, old sessionkit.Packed, u sessionkit.Update) []byte {
	b := make([]byte, headerLen, headerLen+u.PackedSize(old))
	binary.BigEndian.PutUint64(b, uint64(deadline))
	return u.AppendPacked(b, old)
}

// header checks an item's format and returns its deadline.
func header(it *memcache.Item) (int64, error) {
	if it.Flags != itemFlags || len(it.Value) < headerLen+1 {
		// The key holds the session ID, a credential: errors get logged,
		// so they never include it.
		return 0, fmt.Errorf("memcache: %w: not a session item (flags %#x, %d bytes)",
			sessionkit.ErrCorruptValue, it.Flags, len(it.Value))
	}
	return int64(binary.BigEndian.Uint64(it.Value)), nil
}

// decode returns an item's deadline and values.
func decode(it *memcache.Item) (int64, sessionkit.Packed, error) {
	deadline, err := header(it)
	if err != nil {
		return 0, "", err
	}
	values, err := sessionkit.ParsePacked(it.Value[headerLen:])
	if err != nil {
		return 0, "", fmt.Errorf("memcache: %w", err)
	}
	return deadline, values, nil
}

// get fetches the item under key; a miss is (nil, nil).
func (p *Provider) get(ctx context.Context, op, key string) (*memcache.Item, error) {
	if err := p.check(ctx, op); err != nil {
		return nil, err
	}
	it, err := p.c.Get(key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, nil
	}
	if err != nil {
		return nil, p.netErr(op, err)
	}
	return it, nil
}

// Get implements sessionkit.Provider.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	key, err := p.key(id)
	if err != nil {
		return sessionkit.Record{}, err
	}
	it, err := p.get(ctx, "get", key)
	if err != nil {
		return sessionkit.Record{}, err
	}
	if it == nil {
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	deadline, values, err := decode(it)
	if err != nil {
		return sessionkit.Record{}, err
	}
	if time.Now().UnixNano() >= deadline {
		return sessionkit.Record{}, sessionkit.ErrNotFound
	}
	return sessionkit.Record{Packed: values, Expires: time.Unix(0, deadline), Rev: it.CasID}, nil
}

// backoff waits a little, more after each lost race, so that writers of
// one session take turns instead of colliding again.
func backoff(ctx context.Context, attempt int) error {
	limit := time.Duration(min(attempt+1, 20)) * 100 * time.Microsecond
	t := time.NewTimer(rand.N(limit) + 10*time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lostRace reports whether a write failed only because another writer
// changed or removed the item since it was read: the caller reads again.
func lostRace(err error) bool {
	return errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrNotStored) ||
		errors.Is(err, memcache.ErrCacheMiss)
}

// Update implements sessionkit.Provider: a compare-and-swap loop that
// reads the item (gets), merges, and writes it back only if nobody wrote
// it since (cas). Two cases skip the read: a Create first tries add, and
// an Update made against the session as the request read it
// (Update.Base, with the item's CAS ID as its Rev) first tries cas with
// that ID. Either falls back to the loop when memcached refuses it.
func (p *Provider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	key, err := p.key(id)
	if err != nil {
		return err
	}
	if done, err := p.writeBlind(ctx, key, u); done || err != nil {
		return err
	}
	changes := u.Clear || len(u.Delete) > 0 || u.SetLen() > 0
	for attempt := range p.maxRetries {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("memcache: update: %w", err)
			}
		}
		it, err := p.get(ctx, "update", key)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		if it == nil {
			if !u.Create {
				return sessionkit.ErrNotFound
			}
			deadline := sessionkit.UnixNano(u.Expires)
			if err := p.check(ctx, "update"); err != nil {
				return err
			}
			err := p.c.Add(&memcache.Item{Key: key, Value: encode(deadline, "", u),
				Flags: itemFlags, Expiration: expiration(deadline, now)})
			if errors.Is(err, memcache.ErrNotStored) {
				continue // created meanwhile: read it and decide again
			}
			if err != nil {
				return p.netErr("update", err)
			}
			return nil
		}
		old, err := header(it)
		if err != nil {
			return err
		}
		live := now < old
		switch {
		case !live && !u.Create:
			return sessionkit.ErrNotFound
		case live && u.Create:
			return sessionkit.ErrExists
		}
		deadline := old
		if !u.Expires.IsZero() || !live {
			deadline = sessionkit.UnixNano(u.Expires)
		}
		switch {
		case !live:
			// Creating over a dead item that memcached has not dropped yet.
			it.Value = encode(deadline, "", u)
		case changes:
			_, values, err := decode(it)
			if err != nil {
				return err
			}
			it.Value = encode(deadline, values, u)
		default:
			// Only the deadline changes: the encoded values are kept as
			// they are, without decoding them.
			binary.BigEndian.PutUint64(it.Value, uint64(deadline))
		}
		it.Flags, it.Expiration = itemFlags, expiration(deadline, now)
		if err := p.check(ctx, "update"); err != nil {
			return err
		}
		err = p.c.CompareAndSwap(it)
		if lostRace(err) {
			continue
		}
		if err != nil {
			return p.netErr("update", err)
		}
		return nil
	}
	return fmt.Errorf("memcache: update: gave up after %d attempts: %w", p.maxRetries, ErrContention)
}

// writeBlind makes the writes of Update that need no read first, and
// reports whether one applied: add for a Create, cas from u.Base when it
// carries a CAS ID and the session it holds is still live. A refusal
// (the ID is taken, the item changed or is gone) is not an error: the
// read-merge-write loop then decides.
func (p *Provider) writeBlind(ctx context.Context, key string, u sessionkit.Update) (bool, error) {
	now := time.Now().UnixNano()
	var it *memcache.Item
	switch {
	case u.Create:
		if u.Expires.IsZero() {
			return false, nil // the loop reports it
		}
		deadline := sessionkit.UnixNano(u.Expires)
		it = &memcache.Item{Key: key, Value: encode(deadline, "", u), Flags: itemFlags, Expiration: expiration(deadline, now)}
	case u.Base.Rev != 0 && now < sessionkit.UnixNano(u.Base.Expires):
		deadline := sessionkit.UnixNano(u.Base.Expires)
		if !u.Expires.IsZero() {
			deadline = sessionkit.UnixNano(u.Expires)
		}
		it = &memcache.Item{Key: key, Value: encode(deadline, u.Base.Pack(), u), Flags: itemFlags,
			Expiration: expiration(deadline, now), CasID: u.Base.Rev}
	default:
		return false, nil
	}
	if err := p.check(ctx, "update"); err != nil {
		return false, err
	}
	var err error
	if u.Create {
		err = p.c.Add(it)
	} else {
		err = p.c.CompareAndSwap(it)
	}
	switch {
	case err == nil:
		return true, nil
	case lostRace(err):
		return false, nil
	}
	return false, p.netErr("update", err)
}

// ReadsUpdatesByMethod implements sessionkit.MethodReader: Update reads
// the values it stores through the Update's methods only.
func (*Provider) ReadsUpdatesByMethod() {}

// Touch implements sessionkit.Toucher: it rewrites only the deadline,
// without decoding or re-encoding the values.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	return p.Update(ctx, id, sessionkit.Update{Expires: expires})
}

// Delete implements sessionkit.Provider. Deleting a missing session is not
// an error.
func (p *Provider) Delete(ctx context.Context, id string) error {
	key, err := p.key(id)
	if err != nil {
		return err
	}
	if err := p.check(ctx, "delete"); err != nil {
		return err
	}
	if err := p.c.Delete(key); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		return p.netErr("delete", err)
	}
	return nil
}

// tombstone is the value an old ID gets during Rename: a deadline of 0,
// which every read sees as dead, and no values.
var tombstone = encode(0, "", sessionkit.Update{})

// Rename implements sessionkit.Provider; see the package documentation for
// what it guarantees.
func (p *Provider) Rename(ctx context.Context, oldID, newID string, expires time.Time) error {
	oldKey, err := p.key(oldID)
	if err != nil {
		return err
	}
	newKey, err := p.key(newID)
	if err != nil {
		return err
	}
	if oldID == newID {
		return fmt.Errorf("memcache: rename to the same ID: %w", sessionkit.ErrExists)
	}
	deadline := sessionkit.UnixNano(expires)
	for attempt := range p.maxRetries {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("memcache: rename: %w", err)
			}
		}
		old, err := p.get(ctx, "rename", oldKey)
		if err != nil {
			return err
		}
		if old == nil {
			return sessionkit.ErrNotFound
		}
		oldDeadline, err := header(old)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		if now >= oldDeadline {
			return sessionkit.ErrNotFound
		}
		// The encoded values are copied as they are.
		value := make([]byte, len(old.Value))
		binary.BigEndian.PutUint64(value, uint64(deadline))
		copy(value[headerLen:], old.Value[headerLen:])
		switch done, err := p.putNew(ctx, newKey, value, deadline, now); {
		case err != nil:
			return err
		case !done:
			continue
		}
		// Kill the old ID only if nobody updated it since it was read.
		old.Value, old.Expiration = tombstone, expiration(0, now)
		if err := p.check(ctx, "rename"); err != nil {
			return p.undoNew(newKey, err)
		}
		err = p.c.CompareAndSwap(old)
		if lostRace(err) {
			// The old session changed (or vanished): drop the copy and
			// start again from a fresh read.
			if err := p.undoNew(newKey, nil); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return p.undoNew(newKey, p.netErr("rename", err))
		}
		// The tombstone already reads as missing; deleting it only frees
		// the memory early, so a failure here is not the caller's problem.
		_ = p.c.Delete(oldKey)
		return nil
	}
	return fmt.Errorf("memcache: rename: gave up after %d attempts: %w", p.maxRetries, ErrContention)
}

// putNew stores the renamed session under newKey if no live session is
// there. done is false when another writer interfered and Rename should
// start again.
func (p *Provider) putNew(ctx context.Context, newKey string, value []byte, deadline, now int64) (done bool, err error) {
	if err := p.check(ctx, "rename"); err != nil {
		return false, err
	}
	item := &memcache.Item{Key: newKey, Value: value, Flags: itemFlags, Expiration: expiration(deadline, now)}
	err = p.c.Add(item)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, memcache.ErrNotStored) {
		return false, p.netErr("rename", err)
	}
	// Something is stored under the new ID: refuse if it is live, else
	// replace the dead item.
	cur, err := p.get(ctx, "rename", newKey)
	if err != nil || cur == nil {
		return false, err
	}
	if d, err := header(cur); err == nil && now < d {
		return false, fmt.Errorf("memcache: rename: %w", sessionkit.ErrExists)
	}
	item.CasID = cur.CasID
	if err := p.check(ctx, "rename"); err != nil {
		return false, err
	}
	err = p.c.CompareAndSwap(item)
	if lostRace(err) {
		return false, nil
	}
	if err != nil {
		return false, p.netErr("rename", err)
	}
	return true, nil
}

// undoNew removes the copy Rename made under newKey, and returns cause
// (or the failure to remove, if there was no cause). It ignores ctx: the
// copy must go even when the caller gave up.
func (p *Provider) undoNew(newKey string, cause error) error {
	if err := p.c.Delete(newKey); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		err = p.netErr("rename: removing the new copy", err)
		if cause != nil {
			return fmt.Errorf("%w (and the new ID may remain live: %v)", cause, err)
		}
		return err
	}
	return cause
}

// Close implements sessionkit.Provider. It closes the idle connections of
// a client the provider made itself; a Config.Client stays as it is.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.ownClient {
		return p.c.Close()
	}
	return nil
}
