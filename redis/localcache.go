package redis

import (
	"context"
	"errors"
	"hash/maphash"
	"math/bits"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
)

// The local cache (Config.LocalCache) keeps sessions this process read or
// wrote, so that a request whose session is cached reads it with no round
// trip. What keeps it honest:
//
//   - Every script that writes or deletes a session publishes, in the
//     same atomic step, the session's key and its new write token on
//     Prefix+"invalidate" (see announce in scripts.go). Each process
//     subscribes and drops its copy of a session when a message names a
//     token other than its copy's, so its own writes, which it caches as
//     it makes them, do not evict themselves.
//   - A read or write that is on the wire while a message about its
//     session arrives (a "flight") caches nothing unless every such
//     message names the token it is about to cache: its reply could be
//     older than the change announced. A write that ends also spoils the
//     other flights of its session in this process, so that they cannot
//     put an older copy back over it.
//   - Messages are lost while the subscription is down, so the cache is
//     emptied and bypassed from the moment the subscriber sees an error
//     until it has subscribed again. A subscription that stays silent
//     for three health-check intervals despite a PING is treated as down.
//   - A copy is used only until its session's deadline and for at most
//     LocalCacheMaxAge after it was made, which bounds how long a change
//     made without an announcement (a key deleted by hand) stays unseen.

// localCacheShards splits the cache, so that requests of different
// sessions rarely wait on one lock. A cache smaller than that uses fewer
// (see newLocalCache).
const localCacheShards = 64

// healthInterval is how long the subscriber waits for a message before it
// checks its connection with a PING; three intervals without a word mark
// the subscription down.
const healthInterval = time.Second

// deletedToken is the token announced when a session is deleted: not hex,
// so it never equals a write token.
const deletedToken = "----------------"

// localCache is the process's copy of recently used sessions.
type localCache struct {
	seed   maphash.Seed
	maxAge time.Duration
	// mask picks a session's shard among the ones in use: a power of two
	// of them, so that picking one stays a mask and not a division.
	mask uint64
	// live is set while the subscription is up: only then is the cache
	// read or filled.
	live atomic.Bool
	// ups counts the subscriptions confirmed (for tests), downs the
	// times the subscription was lost.
	ups, downs atomic.Int64
	shards     [localCacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	// limit is the most entries the shard keeps, its share of
	// LocalCacheSize.
	limit   int
	flights map[string]*flight
	// seq numbers the changes made to entries, so that a flight can tell
	// an entry put there after it started from an older one.
	seq uint64
	// The shard's part of CacheStats, counted under mu, which the counted
	// operations hold anyway.
	hits, misses, evictions, invalidations uint64
	_                                      [64]byte // keeps neighbouring shards' locks off one cache line
}

type cacheEntry struct {
	rec  sessionkit.Record
	made time.Time
	seq  uint64
}

// flight is one read or write of a session that is on the wire.
type flight struct {
	next  *flight
	start uint64 // the shard's seq when the flight began
	// seen is the first token announced for the session while the flight
	// was out; spoiled is set when another one was, or the flight must
	// not cache for another reason.
	seen    uint64
	heard   bool
	spoiled bool
}

// newLocalCache returns a cache that holds at most size sessions. The
// shards' limits add up to size, so that the cap holds however the
// sessions spread; a cache of fewer than localCacheShards sessions uses no
// more shards than it has sessions, since a shard that may hold none would
// cache nothing of the sessions it serves.
func newLocalCache(size int, maxAge time.Duration) *localCache {
	size = max(size, 1)
	n := min(localCacheShards, 1<<(bits.Len(uint(size))-1))
	c := &localCache{seed: maphash.MakeSeed(), maxAge: maxAge, mask: uint64(n - 1)}
	for i := range c.shards {
		s := &c.shards[i]
		s.entries = make(map[string]cacheEntry)
		s.flights = make(map[string]*flight)
		if i < n {
			s.limit = size / n
			if i < size%n {
				s.limit++
			}
		}
	}
	return c
}

func (c *localCache) shard(id string) *cacheShard {
	// The modulo, a no-op after the mask, lets the compiler drop the
	// bounds check.
	return &c.shards[(maphash.String(c.seed, id)&c.mask)%localCacheShards]
}

// get returns the cached session id, if it is cached, live and young
// enough at the request's time (sessionkit.Now: no clock read of its own).
func (c *localCache) get(ctx context.Context, id string) (sessionkit.Record, bool) {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if ok && c.live.Load() {
		// A copy past its deadline may have been pushed back by a Touch
		// this process has not heard of yet: ask Redis.
		if now := sessionkit.Now(ctx); now.Before(e.rec.Expires) && now.Sub(e.made) < c.maxAge {
			s.hits++
			return e.rec, true
		}
	}
	s.misses++
	return sessionkit.Record{}, false
}

// begin registers a flight for id; end must follow. It returns nil (and
// end then only forgets the entry) while the subscription is down, or
// when there is no cache.
func (c *localCache) begin(id string) *flight {
	if c == nil || !c.live.Load() {
		return nil
	}
	s := c.shard(id)
	s.mu.Lock()
	f := &flight{next: s.flights[id], start: s.seq}
	s.flights[id] = f
	s.mu.Unlock()
	return f
}

// end closes f, at the time of ctx's request. With keep, rec is what
// Redis now holds for id, as far as this flight knows, and is cached if
// no announcement or newer entry contradicts it; without keep, the entry
// is dropped. A write (wrote) also spoils the session's other flights.
func (c *localCache) end(ctx context.Context, id string, f *flight, rec sessionkit.Record, keep, wrote bool) {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f != nil {
		// Unlink f.
		var prev *flight
		for o := s.flights[id]; o != nil; prev, o = o, o.next {
			if o != f {
				continue
			}
			switch {
			case prev != nil:
				prev.next = f.next
			case f.next != nil:
				s.flights[id] = f.next
			default:
				delete(s.flights, id)
			}
			break
		}
	}
	if wrote {
		for o := s.flights[id]; o != nil; o = o.next {
			o.spoiled = true
		}
	}
	old, cached := s.entries[id]
	// newer: another flight cached a copy since this one began.
	newer := cached && f != nil && old.seq > f.start
	switch {
	case newer && !wrote:
		// Either copy was current after this read began; a write since
		// would have spoiled this read, or will drop that copy when
		// announced. Keep that one.
		return
	case keep && f != nil && !newer && !f.spoiled && (!f.heard || f.seen == rec.Rev) && rec.Rev != 0 && c.live.Load():
		if !cached && len(s.entries) >= s.limit {
			for k := range s.entries { // any one: Go's map order is random
				delete(s.entries, k)
				s.evictions++
				break
			}
		}
		s.seq++
		s.entries[id] = cacheEntry{rec: rec, made: sessionkit.Now(ctx), seq: s.seq}
		return
	}
	// Not cacheable, or a write that finds a newer copy: it cannot tell
	// which is newer, so it keeps neither.
	if cached {
		s.seq++
		delete(s.entries, id)
	}
}

// forget drops id's entry and spoils its flights: for writes whose result
// is not known, such as a Touch or a Delete. It does nothing without a
// cache.
func (c *localCache) forget(id string) {
	if c == nil {
		return
	}
	c.end(context.Background(), id, nil, sessionkit.Record{}, false, true)
}

// announced handles a message: the session id was written with token rev
// (0 for a deletion).
func (c *localCache) announced(id string, rev uint64) {
	s := c.shard(id)
	s.mu.Lock()
	if e, ok := s.entries[id]; ok && (rev == 0 || e.rec.Rev != rev) {
		s.seq++
		s.invalidations++
		delete(s.entries, id)
	}
	for f := s.flights[id]; f != nil; f = f.next {
		switch {
		case rev == 0 || (f.heard && f.seen != rev):
			f.spoiled = true
		default:
			f.heard, f.seen = true, rev
		}
	}
	s.mu.Unlock()
}

// reset empties the cache and spoils every flight, then marks it live or
// not: the subscription just came up, or went down.
func (c *localCache) reset(live bool) {
	if !live && c.live.Swap(false) {
		c.downs.Add(1)
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.entries)
		s.seq++
		for _, f := range s.flights {
			for ; f != nil; f = f.next {
				f.spoiled = true
			}
		}
		s.mu.Unlock()
	}
	if live {
		c.ups.Add(1)
		c.live.Store(true)
	}
}

// CacheStats counts what Config.LocalCache did since New.
type CacheStats struct {
	// Hits counts Gets answered from the cache, Misses those that went to
	// Redis.
	Hits, Misses uint64
	// Evictions counts copies dropped to make room for others.
	Evictions uint64
	// Invalidations counts copies dropped on hearing of a write or
	// delete that this process did not make or has not cached.
	Invalidations uint64
	// Outages counts the times the subscription went down, each of which
	// emptied the cache and turned it off until a new subscription was
	// confirmed.
	Outages uint64
	// Entries is the number of sessions cached now.
	Entries int
}

// CacheStats reports what the local cache did since New: all zero
// without Config.LocalCache.
func (p *Provider) CacheStats() CacheStats {
	if p.cache == nil {
		return CacheStats{}
	}
	return p.cache.stats()
}

func (c *localCache) stats() CacheStats {
	st := CacheStats{Outages: uint64(c.downs.Load())}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Hits += s.hits
		st.Misses += s.misses
		st.Evictions += s.evictions
		st.Invalidations += s.invalidations
		st.Entries += len(s.entries)
		s.mu.Unlock()
	}
	return st
}

// subscriber keeps the cache's subscription and applies its messages.
type subscriber struct {
	client  goredis.UniversalClient
	channel string
	prefix  string
	cache   *localCache
	stop    chan struct{}
	done    chan struct{}
	// mu guards ps, which close closes so that a waiting receive returns
	// at once.
	mu sync.Mutex
	ps *goredis.PubSub
	// observe, if set, sees every message after it was applied, so tests
	// can tell when an announcement has arrived.
	observe atomic.Pointer[func(payload string)]
}

// channelFor is the channel the scripts announce writes on.
func channelFor(prefix string) string { return prefix + "invalidate" }

// subscribe subscribes and waits, within ctx, for Redis to confirm, so
// that the cache is live when New returns; then it runs the subscriber.
func (sub *subscriber) subscribe(ctx context.Context) error {
	ps := sub.client.Subscribe(ctx)
	if err := ps.Subscribe(ctx, sub.channel); err != nil {
		_ = ps.Close()
		return err
	}
	if err := sub.confirm(ctx, ps); err != nil {
		_ = ps.Close()
		return err
	}
	sub.cache.reset(true)
	sub.ps = ps
	go sub.run()
	return nil
}

// confirm waits for ps's subscription to be confirmed.
func (sub *subscriber) confirm(ctx context.Context, ps *goredis.PubSub) error {
	for {
		m, err := ps.Receive(ctx)
		if err != nil {
			return err
		}
		if s, ok := m.(*goredis.Subscription); ok && s.Kind == "subscribe" {
			return nil
		}
	}
}

// run receives until stop is closed. Receive reconnects and resubscribes
// by itself after an error; the cache is off from the error until the
// new subscription is confirmed.
func (sub *subscriber) run() {
	defer close(sub.done)
	// close ends a receive by closing ps, so the calls need no context
	// of their own.
	ctx := context.Background()
	sub.mu.Lock()
	ps := sub.ps
	sub.mu.Unlock()
	heard := time.Now()
	backoff := 10 * time.Millisecond
	for {
		m, err := ps.ReceiveTimeout(ctx, healthInterval)
		select {
		case <-sub.stop:
			return
		default:
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(heard) < 3*healthInterval {
					_ = ps.Ping(ctx)
					continue
				}
				// Silent despite the PINGs: start over on a new connection.
				sub.cache.reset(false)
				sub.mu.Lock()
				_ = ps.Close()
				select {
				case <-sub.stop:
					sub.mu.Unlock()
					return
				default:
				}
				ps = sub.client.Subscribe(ctx, sub.channel)
				sub.ps = ps
				sub.mu.Unlock()
				heard = time.Now()
				continue
			}
			sub.cache.reset(false)
			select {
			case <-sub.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		heard = time.Now()
		switch m := m.(type) {
		case *goredis.Message:
			sub.handle(m.Payload)
			if fn := sub.observe.Load(); fn != nil {
				(*fn)(m.Payload)
			}
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				backoff = 10 * time.Millisecond
				sub.cache.reset(true)
			}
		}
	}
}

// handle applies one message: a token, then the session's key.
func (sub *subscriber) handle(payload string) {
	if len(payload) < tokenLen {
		return
	}
	id, ok := strings.CutPrefix(payload[tokenLen:], sub.prefix)
	if !ok {
		return
	}
	sub.cache.announced(id, tokenRev(payload[:tokenLen]))
}

// close stops the subscriber and waits for it.
func (sub *subscriber) close() {
	close(sub.stop)
	sub.mu.Lock()
	_ = sub.ps.Close()
	sub.mu.Unlock()
	<-sub.done
}
