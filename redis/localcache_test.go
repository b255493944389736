package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/providertest"
)

func TestConformanceLocalCache(t *testing.T) {
	t.Parallel() // mostly waiting for expiry; runs after the tests that count goroutines
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, adm, Config{Addrs: []string{addr}, LocalCache: true})
	})
}

func TestConformanceLocalCacheCluster(t *testing.T) {
	t.Parallel() // mostly waiting for expiry; runs after the tests that count goroutines
	addrs := clusterAddrs()
	adm := admin(t, "Redis Cluster", addrs...)
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, adm, Config{Addrs: addrs, LocalCache: true})
	})
}

// TestLocalCacheRoundTrips counts what each call sends with the cache on:
// a session this process created or wrote is read with no command, and a
// write is still one.
func TestLocalCacheRoundTrips(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	h := &countingHook{}
	client := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 2})
	client.AddHook(h)
	t.Cleanup(func() { _ = client.Close() })
	p := open(t, adm, Config{Client: client, LocalCache: true})
	id, id2 := providertest.ID(), providertest.ID()
	exp := time.Now().Add(time.Hour)
	get := func() error { _, err := p.Get(bg, id); return err }
	roundTrips(t, h, "Update(Create)", 1, false, func() error {
		return p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: exp})
	})
	roundTrips(t, h, "Get after Create", 0, false, get)
	var base sessionkit.Record
	roundTrips(t, h, "Get again", 0, false, func() (err error) { base, err = p.Get(bg, id); return err })
	roundTrips(t, h, "Update with Base", 1, false, func() error {
		return p.Update(bg, id, sessionkit.Update{Set: vals("b", "2"), Base: base, Expires: exp})
	})
	roundTrips(t, h, "Get after Update", 0, false, func() error {
		r, err := p.Get(bg, id)
		if err == nil && (string(r.Map()["a"]) != "1" || string(r.Map()["b"]) != "2") {
			err = fmt.Errorf("cached %q after the update", r.Map())
		}
		return err
	})
	roundTrips(t, h, "Update without Base", 1, false, func() error {
		return p.Update(bg, id, sessionkit.Update{Set: vals("c", "3")})
	})
	roundTrips(t, h, "Get after a merged Update", 1, false, func() error {
		r, err := p.Get(bg, id)
		if err == nil && len(r.Map()) != 3 {
			err = fmt.Errorf("read %q, want a, b and c", r.Map())
		}
		return err
	})
	roundTrips(t, h, "Touch", 1, false, func() error { return p.Touch(bg, id, exp.Add(time.Minute)) })
	roundTrips(t, h, "Get after Touch", 1, false, get)
	roundTrips(t, h, "Rename", 1, false, func() error { return p.Rename(bg, id, id2, exp) })
	roundTrips(t, h, "Get of the old ID", 1, false, func() error {
		if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
	roundTrips(t, h, "Get of the new ID", 1, false, func() error { _, err := p.Get(bg, id2); return err })
	roundTrips(t, h, "Delete", 1, false, func() error { return p.Delete(bg, id2) })
	roundTrips(t, h, "Get after Delete", 1, false, func() error {
		if _, err := p.Get(bg, id2); !errors.Is(err, sessionkit.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
	// The Gets above that sent nothing were hits, the others misses.
	if st := p.CacheStats(); st.Hits != 3 || st.Misses != 5 || st.Outages != 0 || st.Entries != 0 {
		t.Errorf("CacheStats %+v, want 3 hits, 5 misses, no outage, nothing cached", st)
	}
}

// pair opens two providers with the cache on one prefix, each with its
// own client: two processes sharing the sessions.
func pair(t *testing.T, adm goredis.UniversalClient, cfg Config) (a, b *Provider) {
	cfg.Prefix = providertest.UniquePrefix(t) + ":"
	cfg.LocalCache = true
	return open(t, adm, cfg), open(t, nil, cfg)
}

// heard waits until p's subscriber has received a message published
// after every write made so far to session id: messages published by one
// server arrive in order, so in a Cluster the marker is published by the
// node that holds the session.
func heard(t *testing.T, adm goredis.UniversalClient, p *Provider, id string) {
	t.Helper()
	var pub goredis.UniversalClient = adm
	if cc, ok := adm.(*goredis.ClusterClient); ok {
		node, err := cc.MasterForKey(bg, p.key(id))
		if err != nil {
			t.Fatal(err)
		}
		pub = node
	}
	marker := "sync:" + providertest.ID()
	got := make(chan struct{})
	var once sync.Once
	fn := func(payload string) {
		if payload == marker {
			once.Do(func() { close(got) })
		}
	}
	p.sub.observe.Store(&fn)
	defer p.sub.observe.Store(nil)
	if err := pub.Publish(bg, p.sub.channel, marker).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscriber did not receive the marker within 5s")
	}
}

// TestLocalCacheSeesOtherProcesses: once the announcement of another
// process's write has arrived, the cached copy is gone, whatever the
// write was.
func TestLocalCacheSeesOtherProcesses(t *testing.T) {
	for _, tc := range deployments() {
		// Messages come as RESP3 pushes or as RESP2 replies.
		for _, proto := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/RESP%d", tc.name, proto), func(t *testing.T) {
				testSeesOtherProcesses(t, tc, proto)
			})
		}
	}
}

// testSeesOtherProcesses is one run of TestLocalCacheSeesOtherProcesses.
func testSeesOtherProcesses(t *testing.T, tc deployment, proto int) {
	adm := admin(t, "redis", tc.addrs...)
	a, b := pair(t, adm, Config{Addrs: tc.addrs, Protocol: proto})
	id, id2 := providertest.ID(), providertest.ID()
	exp := time.Now().Add(time.Hour)
	if err := a.Update(bg, id, sessionkit.Update{Create: true, Set: vals("n", "1"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	want := func(p *Provider, id, key, v string) {
		t.Helper()
		r, err := p.Get(bg, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got, _ := r.Lookup(key); string(got) != v {
			t.Fatalf("%s = %q, want %q", key, got, v)
		}
	}
	want(b, id, "n", "1") // cached by b now
	for i, write := range []func(base sessionkit.Record) error{
		func(base sessionkit.Record) error { // the fast path, with Base
			return a.Update(bg, id, sessionkit.Update{Set: vals("n", "2"), Base: base})
		},
		func(sessionkit.Record) error { // the merge in Lua
			return a.Update(bg, id, sessionkit.Update{Set: vals("n", "3")})
		},
		func(sessionkit.Record) error {
			return a.Update(bg, id, sessionkit.Update{Clear: true, Set: vals("n", "4")})
		},
	} {
		base, err := a.Get(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(base); err != nil {
			t.Fatal(err)
		}
		heard(t, adm, b, id)
		want(b, id, "n", strconv.Itoa(i+2))
		want(a, id, "n", strconv.Itoa(i+2))
	}
	if err := a.Touch(bg, id, exp.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	heard(t, adm, b, id)
	if r, err := b.Get(bg, id); err != nil || r.Expires.UnixMilli() != exp.Add(time.Hour).UnixMilli() {
		t.Fatalf("after Touch: %v, %v; want the new deadline", r.Expires, err)
	}
	if err := a.Rename(bg, id, id2, exp); err != nil {
		t.Fatal(err)
	}
	heard(t, adm, b, id)
	heard(t, adm, b, id2)
	if _, err := b.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("old ID after Rename: %v, want ErrNotFound", err)
	}
	want(b, id2, "n", "4")
	if err := a.Delete(bg, id2); err != nil {
		t.Fatal(err)
	}
	heard(t, adm, b, id2)
	if _, err := b.Get(bg, id2); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("after Delete: %v, want ErrNotFound", err)
	}
	// b cached the session before each of a's six writes.
	if st := b.CacheStats(); st.Invalidations < 6 {
		t.Errorf("b's CacheStats %+v: want at least 6 invalidations", st)
	}
}

// setBehind stores values for id directly, without an announcement, as a
// change made outside the provider would.
func setBehind(t *testing.T, adm goredis.UniversalClient, p *Provider, id string, values map[string][]byte) {
	t.Helper()
	v := appendHeader(nil, deadline(time.Now().Add(time.Hour)), token())
	v = append(v, sessionkit.Pack(values)...)
	if err := adm.Set(bg, p.key(id), v, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// cachedThenChanged creates a session through p, then changes it behind
// p's back, unannounced, and checks that p still answers from its copy.
// It returns the session's ID.
func cachedThenChanged(t *testing.T, adm goredis.UniversalClient, p *Provider) string {
	t.Helper()
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("n", "1"), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	setBehind(t, adm, p, id, vals("n", "2"))
	if r := mustGet(t, p, id); string(r.Map()["n"]) != "1" {
		t.Fatalf("n = %q: the cache should still hold the copy, since nothing was announced", r.Map()["n"])
	}
	return id
}

// waitFor polls cond until it holds, and fails the test if it still does
// not after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLocalCacheResubscribeEmptiesIt: announcements are lost while the
// subscription is down, so a new subscription starts from an empty cache.
func TestLocalCacheResubscribeEmptiesIt(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	name := "sessionkit-test-" + providertest.ID()[:8]
	p := open(t, adm, Config{Addrs: []string{addr}, LocalCache: true, ClientName: name})
	id := cachedThenChanged(t, adm, p)
	ups := p.cache.ups.Load()
	list, err := adm.ClientList(bg).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " cmd=subscribe") {
			f := strings.Fields(line)
			if err := adm.Do(bg, "CLIENT", "KILL", "ID", strings.TrimPrefix(f[0], "id=")).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("found %d subscriber connections named %s, want 1", killed, name)
	}
	waitFor(t, 10*time.Second, "a new subscription", func() bool { return p.cache.ups.Load() != ups })
	if r := mustGet(t, p, id); string(r.Map()["n"]) != "2" {
		t.Fatalf("n = %q after resubscribing, want the value stored meanwhile", r.Map()["n"])
	}
	if st := p.CacheStats(); st.Outages != 1 {
		t.Errorf("CacheStats %+v, want 1 outage", st)
	}
}

// TestLocalCacheMaxAge: a change made without an announcement is seen
// once the copy is LocalCacheMaxAge old.
func TestLocalCacheMaxAge(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	const age = 300 * time.Millisecond
	p := open(t, adm, Config{Addrs: []string{addr}, LocalCache: true, LocalCacheMaxAge: age})
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("n", "1"), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	setBehind(t, adm, p, id, vals("n", "2"))
	if r := mustGet(t, p, id); string(r.Map()["n"]) != "1" && time.Since(start) < age {
		t.Fatalf("n = %q at once: the copy was not used", r.Map()["n"])
	}
	time.Sleep(age)
	if r := mustGet(t, p, id); string(r.Map()["n"]) != "2" {
		t.Fatalf("n = %q after LocalCacheMaxAge, want the stored value", r.Map()["n"])
	}
}

// TestLocalCacheKeepsEveryWrite runs two processes whose goroutines each
// write their own key of a few shared sessions, through the manager's
// read-then-update cycle. A goroutine must always read back what it last
// wrote (its process's cache never serves an older copy of its own
// write), and at the end every key holds its last value everywhere.
func TestLocalCacheKeepsEveryWrite(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	a, b := pair(t, adm, Config{Addrs: []string{addr}})
	ids := []string{providertest.ID(), providertest.ID(), providertest.ID()}
	for _, id := range ids {
		if err := a.Update(bg, id, sessionkit.Update{Create: true, Set: vals("x", "0"), Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	const workers, rounds = 4, 150
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for pi, p := range []*Provider{a, b} {
		for w := range workers {
			key := fmt.Sprintf("p%dw%d", pi, w)
			wg.Go(func() {
				for i := 1; i <= rounds; i++ {
					id := ids[i%len(ids)]
					base, err := p.Get(bg, id)
					if err != nil {
						errs <- fmt.Errorf("%s: Get: %w", key, err)
						return
					}
					if prev, want := base.Map()[key], strconv.Itoa(i-len(ids)); i > len(ids) && string(prev) != want {
						errs <- fmt.Errorf("%s round %d: read %q, want its own last write %q", key, i, prev, want)
						return
					}
					if err := p.Update(bg, id, sessionkit.Update{Set: vals(key, strconv.Itoa(i)), Base: base}); err != nil {
						errs <- fmt.Errorf("%s: Update: %w", key, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		heard(t, adm, a, id)
		heard(t, adm, b, id)
	}
	for _, p := range []*Provider{a, b} {
		for j, id := range ids {
			m := mustGet(t, p, id).Map()
			for pi := range 2 {
				for w := range workers {
					key := fmt.Sprintf("p%dw%d", pi, w)
					last := rounds - (rounds-j)%len(ids) // its last round on session j
					if got := string(m[key]); got != strconv.Itoa(last) {
						t.Errorf("session %d key %s = %q, want %d", j, key, got, last)
					}
				}
			}
		}
	}
}

// TestLocalCacheFlights checks the cache's rules on its own, message by
// message.
func TestLocalCacheFlights(t *testing.T) {
	rec := func(rev uint64) sessionkit.Record {
		return sessionkit.Record{Packed: sessionkit.Pack(vals("r", strconv.FormatUint(rev, 10))), Expires: time.Now().Add(time.Hour), Rev: rev}
	}
	cached := func(c *localCache, id string) uint64 {
		r, ok := c.get(bg, id)
		if !ok {
			return 0
		}
		return r.Rev
	}
	newCache := func() *localCache {
		c := newLocalCache(1000, time.Hour)
		c.reset(true)
		return c
	}
	const id = "0123456789abcdefABCDEF"
	for _, tc := range []struct {
		name string
		run  func(c *localCache)
		want uint64
	}{
		{"read, nothing heard", func(c *localCache) {
			f := c.begin(id)
			c.end(bg, id, f, rec(1), true, false)
		}, 1},
		{"read, its own revision announced", func(c *localCache) {
			f := c.begin(id)
			c.announced(id, 1)
			c.end(bg, id, f, rec(1), true, false)
		}, 1},
		{"read, another revision announced", func(c *localCache) {
			f := c.begin(id)
			c.announced(id, 2)
			c.end(bg, id, f, rec(1), true, false)
		}, 0},
		{"read, two revisions announced", func(c *localCache) {
			f := c.begin(id)
			c.announced(id, 1)
			c.announced(id, 2)
			c.end(bg, id, f, rec(1), true, false)
		}, 0},
		{"read, deletion announced", func(c *localCache) {
			f := c.begin(id)
			c.announced(id, 0)
			c.end(bg, id, f, rec(1), true, false)
		}, 0},
		{"announcement of the cached revision keeps it", func(c *localCache) {
			c.end(bg, id, c.begin(id), rec(1), true, false)
			c.announced(id, 1)
		}, 1},
		{"announcement of another revision drops it", func(c *localCache) {
			c.end(bg, id, c.begin(id), rec(1), true, false)
			c.announced(id, 2)
		}, 0},
		{"a write ending during a read spoils the read", func(c *localCache) {
			r := c.begin(id)
			w := c.begin(id)
			c.end(bg, id, w, rec(2), true, true)
			c.end(bg, id, r, rec(1), true, false)
		}, 2},
		{"a failed write ending during a read spoils the read", func(c *localCache) {
			r := c.begin(id)
			w := c.begin(id)
			c.end(bg, id, w, sessionkit.Record{}, false, true)
			c.end(bg, id, r, rec(1), true, false)
		}, 0},
		{"a write finding a copy made during its flight drops it", func(c *localCache) {
			w := c.begin(id)
			c.end(bg, id, c.begin(id), rec(1), true, false)
			c.end(bg, id, w, rec(2), true, true)
		}, 0},
		{"an older read does not replace a newer one", func(c *localCache) {
			r1 := c.begin(id)
			r2 := c.begin(id)
			c.end(bg, id, r2, rec(2), true, false)
			c.end(bg, id, r1, rec(1), true, false)
		}, 2},
		{"subscription lost mid-flight", func(c *localCache) {
			f := c.begin(id)
			c.reset(false)
			c.reset(true)
			c.end(bg, id, f, rec(1), true, false)
		}, 0},
		{"forget", func(c *localCache) {
			c.end(bg, id, c.begin(id), rec(1), true, false)
			c.forget(id)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache()
			tc.run(c)
			if got := cached(c, id); got != tc.want {
				t.Errorf("cached revision %d, want %d", got, tc.want)
			}
			if n := len(c.shard(id).flights); n != 0 {
				t.Errorf("%d flights left registered", n)
			}
		})
	}
	t.Run("down", func(t *testing.T) {
		c := newCache()
		c.end(bg, id, c.begin(id), rec(1), true, false)
		c.reset(false)
		if c.begin(id) != nil {
			t.Error("a flight began while the subscription is down")
		}
		c.reset(true)
		if got := cached(c, id); got != 0 {
			t.Errorf("revision %d survived a lost subscription", got)
		}
	})
	t.Run("expired", func(t *testing.T) {
		c := newCache()
		r := rec(1)
		r.Expires = time.Now().Add(-time.Hour) // well past: sessionkit.Now may lag a tick behind
		c.end(bg, id, c.begin(id), r, true, false)
		if got := cached(c, id); got != 0 {
			t.Error("an expired copy was returned")
		}
	})
	t.Run("size", func(t *testing.T) {
		c := newLocalCache(localCacheShards*2, time.Hour)
		c.reset(true)
		for i := range 10 * localCacheShards {
			k := fmt.Sprintf("%022d", i)
			c.end(bg, k, c.begin(k), rec(uint64(i+1)), true, false)
		}
		for i := range c.shards {
			if l := len(c.shards[i].entries); l > 2 {
				t.Fatalf("shard %d holds %d entries, cap 2", i, l)
			}
		}
		if st := c.stats(); st.Entries == 0 || st.Entries+int(st.Evictions) != 10*localCacheShards {
			t.Fatalf("%+v: every copy is either held or was evicted", st)
		}
	})
}

// TestLocalCacheSizeCap checks that LocalCacheSize caps the sessions
// cached, small sizes included, and that the cache, filled well past its
// size, holds that many: the shards' shares add up to the size exactly.
func TestLocalCacheSizeCap(t *testing.T) {
	t.Run("provider", func(t *testing.T) {
		addr := singleAddr()
		adm := admin(t, "redis", addr)
		p := open(t, adm, Config{Addrs: []string{addr}, LocalCache: true, LocalCacheSize: 10})
		for range 200 {
			providertest.Create(t, p, providertest.ID(), vals("a", "1"), time.Now().Add(time.Hour))
		}
		if st := p.CacheStats(); st.Entries > 10 {
			t.Errorf("LocalCacheSize 10, but the cache holds %d sessions", st.Entries)
		}
	})
	rec := sessionkit.Record{Packed: sessionkit.Pack(vals("a", "1")), Expires: time.Now().Add(time.Hour)}
	for _, size := range []int{1, 10, 63, 64, 100, 1000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c := newLocalCache(size, time.Hour)
			c.reset(true)
			n := 20*size + 1000
			for i := range n {
				k := fmt.Sprintf("%022d", i)
				rec.Rev = uint64(i + 1)
				c.end(bg, k, c.begin(k), rec, true, false)
			}
			st := c.stats()
			if st.Entries != size || st.Entries+int(st.Evictions) != n {
				t.Errorf("size %d, %d sessions cached: %d held, %d evicted; want %d held, the rest evicted", size, n, st.Entries, st.Evictions, size)
			}
		})
	}
}

// TestLocalCacheConfig checks what New refuses.
func TestLocalCacheConfig(t *testing.T) {
	ring := goredis.NewRing(&goredis.RingOptions{Addrs: map[string]string{"a": singleAddr()}})
	t.Cleanup(func() { _ = ring.Close() })
	for _, cfg := range []Config{
		{LocalCacheSize: 10},
		{LocalCacheMaxAge: time.Second},
		{LocalCache: true, LocalCacheSize: -1},
		{LocalCache: true, LocalCacheMaxAge: -time.Second},
		{LocalCache: true, Client: ring},
	} {
		ctx, cancel := context.WithTimeout(bg, 5*time.Second)
		p, err := New(ctx, cfg)
		cancel()
		if !errors.Is(err, sessionkit.ErrInvalidConfig) {
			if p != nil {
				_ = p.Close()
			}
			t.Errorf("New(%+v): %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// freezer forwards loopback connections to a Redis server until freeze,
// after which the connections open then stay open but carry nothing: a
// network that silently drops packets. Connections opened later work.
type freezer struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen []chan struct{}
	conns  []net.Conn
}

func newFreezer(t *testing.T, upstream string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			stop := make(chan struct{})
			f.mu.Lock()
			f.frozen = append(f.frozen, stop)
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						return
					}
					select {
					case <-stop:
						continue // swallow: nothing goes through any more
					default:
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
			}
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

// freeze silences every connection open now.
func (f *freezer) freeze() {
	f.mu.Lock()
	for _, s := range f.frozen {
		close(s)
	}
	f.frozen = nil
	f.mu.Unlock()
}

// TestLocalCacheSilentSubscription: a subscription whose connection
// carries nothing any more, without an error, is noticed by its
// unanswered PINGs, and replaced by a new one that starts from an empty
// cache.
func TestLocalCacheSilentSubscription(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	fr := newFreezer(t, addr)
	p := open(t, adm, Config{Addrs: []string{fr.addr()}, LocalCache: true, ReadTimeout: time.Second})
	id := cachedThenChanged(t, adm, p)
	ups := p.cache.ups.Load()
	fr.freeze()
	waitFor(t, 15*time.Second, "the silent subscription to be replaced", func() bool { return p.cache.ups.Load() != ups })
	// The request pool's connections are frozen too; new ones work.
	var r sessionkit.Record
	waitFor(t, 15*time.Second, "a Get on a new connection", func() bool {
		var err error
		r, err = p.Get(bg, id)
		return err == nil
	})
	if string(r.Map()["n"]) != "2" {
		t.Fatalf("n = %q after the new subscription, want the value stored meanwhile", r.Map()["n"])
	}
}

// TestLuaString checks that any prefix, quotes, backslashes, NUL and
// non-ASCII bytes included, reaches the scripts as it is.
func TestLuaString(t *testing.T) {
	adm := admin(t, "redis", singleAddr())
	for _, s := range []string{"", "sessionkit:", `a"b'c\d]]==]`, "\x00\x01\xff\xfe", "é:\n\t9"} {
		got, err := adm.Eval(bg, "return "+luaString(s), nil).Text()
		if err != nil || got != s {
			t.Errorf("luaString(%q) came back as %q, %v", s, got, err)
		}
	}
}

// BenchmarkLocalCacheAnnouncement measures how long after a write returns
// in one process another process has applied its announcement: the time
// during which that other process may still read the session as it was.
// It reports the median and the 99th percentile (negative: applied before
// the write returned) and the share applied before the write returned.
func BenchmarkLocalCacheAnnouncement(b *testing.B) {
	addr := singleAddr()
	adm := admin(b, "redis", addr)
	cfg := Config{Addrs: []string{addr}, LocalCache: true, Prefix: providertest.UniquePrefix(b) + ":"}
	w, r := open(b, adm, cfg), open(b, nil, cfg)
	id := providertest.ID()
	if err := w.Update(bg, id, sessionkit.Update{Create: true, Set: vals("n", "0"), Expires: time.Now().Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	arrived := make(chan time.Time, 1)
	fn := func(payload string) {
		if strings.HasSuffix(payload, id) {
			select {
			case arrived <- time.Now():
			default:
			}
		}
	}
	r.sub.observe.Store(&fn)
	lags := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		if err := w.Update(bg, id, sessionkit.Update{Set: vals("n", strconv.Itoa(i))}); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		select {
		case at := <-arrived:
			lags = append(lags, at.Sub(done))
		case <-time.After(5 * time.Second):
			b.Fatal("no announcement within 5s")
		}
	}
	b.StopTimer()
	slices.Sort(lags)
	before := 0
	for _, l := range lags {
		if l <= 0 {
			before++
		}
	}
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(100*float64(before)/float64(len(lags)), "%-before")
}

// TestSharedStore runs providertest.RunShared on pairs of providers with
// one prefix, as processes of a fleet: without the cache, with it on both
// (on a single server and on a Cluster), so that every instance's copies
// are checked against the other's writes. A pair with the cache on one
// side only would fail it, as the package documentation says: the
// uncached side's writes are not announced.
func TestSharedStore(t *testing.T) {
	t.Parallel() // mostly waiting; runs after the tests that count goroutines
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	pair := func(cfg Config, adm goredis.UniversalClient) providertest.NewShared {
		return func(t *testing.T) (sessionkit.Provider, sessionkit.Provider) {
			c := cfg // subtests run in parallel: each its own prefix
			c.Prefix = providertest.UniquePrefix(t) + ":"
			return open(t, adm, c), open(t, adm, c)
		}
	}
	t.Run("default", func(t *testing.T) {
		providertest.RunShared(t, pair(Config{Addrs: []string{addr}}, adm))
	})
	t.Run("LocalCache", func(t *testing.T) {
		providertest.RunShared(t, pair(Config{Addrs: []string{addr}, LocalCache: true}, adm))
	})
	t.Run("LocalCacheCluster", func(t *testing.T) {
		addrs := clusterAddrs()
		providertest.RunShared(t, pair(Config{Addrs: addrs, LocalCache: true}, admin(t, "Redis Cluster", addrs...)))
	})
}
