package memcache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomemcache "github.com/bradfitz/gomemcache/memcache"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memcache"
	"github.com/sessionkit/sessionkit/providertest"
)

var bg = context.Background()

func servers() []string {
	return strings.Split(providertest.Env("SESSIONKIT_MEMCACHE_ADDRS", "127.0.0.1:11211,127.0.0.1:11212"), ",")
}

// requireServers ends the test when the shared memcached servers are not
// reachable (a skip outside CI, a failure in CI).
func requireServers(t testing.TB) {
	t.Helper()
	p, err := memcache.New(memcache.Config{Servers: servers()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Ping(bg); err != nil {
		providertest.ServerUnavailable(t, fmt.Sprintf("memcached at %v", servers()), err)
	}
}

// newProvider returns a provider on the shared servers with a key prefix
// of its own, closed when the test ends.
func newProvider(t testing.TB) *memcache.Provider {
	t.Helper()
	return newProviderWith(t, providertest.UniquePrefix(t)+":")
}

// newProviderWith returns a provider on the shared servers with the given
// key prefix, closed when the test ends.
func newProviderWith(t testing.TB, prefix string) *memcache.Provider {
	t.Helper()
	p, err := memcache.New(memcache.Config{Servers: servers(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

var vals = providertest.Values

func create(t testing.TB, p sessionkit.Provider, id string, v map[string][]byte) {
	t.Helper()
	providertest.Create(t, p, id, v, providertest.Later())
}

func TestConformance(t *testing.T) {
	requireServers(t)
	providertest.Run(t, func(t *testing.T) sessionkit.Provider { return newProvider(t) })
}

// TestSharedStore runs providertest.RunShared on pairs of providers with
// one prefix, as processes of a fleet on the same servers.
func TestSharedStore(t *testing.T) {
	requireServers(t)
	providertest.RunShared(t, func(t *testing.T) (sessionkit.Provider, sessionkit.Provider) {
		prefix := providertest.UniquePrefix(t) + ":"
		return newProviderWith(t, prefix), newProviderWith(t, prefix)
	})
}

func TestNotCounterOrRanger(t *testing.T) {
	var p sessionkit.Provider = &memcache.Provider{}
	if _, ok := p.(sessionkit.Counter); ok {
		t.Error("the provider claims to count sessions, which memcached cannot")
	}
	if _, ok := p.(sessionkit.Ranger); ok {
		t.Error("the provider claims to list sessions, which memcached cannot")
	}
	if _, ok := p.(sessionkit.GarbageCollector); ok {
		t.Error("the provider asks for GC, which memcached does itself")
	}
	if _, ok := p.(sessionkit.Toucher); !ok {
		t.Error("the provider should be a Toucher")
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  memcache.Config
	}{
		{"prefix with a space", memcache.Config{Prefix: "my app:"}},
		{"prefix with a control character", memcache.Config{Prefix: "a\nb"}},
		{"prefix too long", memcache.Config{Prefix: strings.Repeat("p", memcache.MaxPrefixLength+1)}},
		{"negative timeout", memcache.Config{Timeout: -time.Second}},
		{"negative idle conns", memcache.Config{MaxIdleConns: -1}},
		{"negative retries", memcache.Config{MaxRetries: -1}},
		{"empty server", memcache.Config{Servers: []string{"127.0.0.1:11211", " "}}},
		{"server without a port", memcache.Config{Servers: []string{"127.0.0.1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := memcache.New(c.cfg)
			if !errors.Is(err, sessionkit.ErrInvalidConfig) {
				t.Fatalf("New = %v, %v; want an error wrapping ErrInvalidConfig", p, err)
			}
			t.Log(err)
		})
	}
	if _, err := memcache.New(memcache.Config{Prefix: strings.Repeat("p", memcache.MaxPrefixLength)}); err != nil {
		t.Fatalf("a prefix of MaxPrefixLength bytes: %v", err)
	}
	if _, err := memcache.New(memcache.Config{}); err != nil {
		t.Fatalf("the zero Config: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	found := false
	for _, n := range sessionkit.Drivers() {
		found = found || n == memcache.Name
	}
	if !found {
		t.Fatalf("%q is not registered: %v", memcache.Name, sessionkit.Drivers())
	}
	m := sessionkit.New(sessionkit.Config{})
	defer m.Close()
	// Nothing listens on port 1: Open must say so quickly.
	start := time.Now()
	err := m.SetProvider(memcache.Name, &memcache.Config{Servers: []string{"127.0.0.1:1"}, Timeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("SetProvider with an unreachable server succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("SetProvider took %v to fail", d)
	}
	t.Log(err)
	if err := m.SetProvider(memcache.Name, &memcache.Config{Prefix: "bad prefix"}); !errors.Is(err, sessionkit.ErrInvalidConfig) {
		t.Fatalf("SetProvider with a bad prefix = %v, want ErrInvalidConfig", err)
	}
}

func TestRegistryOpen(t *testing.T) {
	requireServers(t)
	m := sessionkit.New(sessionkit.Config{})
	defer m.Close()
	if err := m.SetProvider(memcache.Name, &memcache.Config{Servers: servers(), Prefix: providertest.UniquePrefix(t) + ":"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Count(bg); !errors.Is(err, sessionkit.ErrNotSupported) {
		t.Fatalf("Count = %v, want ErrNotSupported", err)
	}
}

// TestInvalidIDs checks that malformed IDs are refused before any network
// call: the provider points at a port where nothing listens, so a call
// that reached the network would fail differently.
func TestInvalidIDs(t *testing.T) {
	p, err := memcache.New(memcache.Config{Servers: []string{"127.0.0.1:1"}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	good := sessionkit.NewID()
	for _, id := range []string{"", "a", "../../x", "/etc/passwd", "has space 0123456789", "ctl\r\n0123456789abcdef",
		strings.Repeat("x", sessionkit.MaxIDLength+1), strings.Repeat("y", 100000)} {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, sessionkit.ErrInvalidID) {
				t.Errorf("%s(%.20q) = %v, want ErrInvalidID", op, id, err)
			}
		}
		_, err := p.Get(bg, id)
		check("Get", err)
		check("Update", p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: providertest.Later()}))
		check("Touch", p.Touch(bg, id, providertest.Later()))
		check("Delete", p.Delete(bg, id))
		check("Rename from", p.Rename(bg, id, good, providertest.Later()))
		check("Rename to", p.Rename(bg, good, id, providertest.Later()))
	}
}

// TestLongIDs checks IDs too long to be memcached keys as they are.
func TestLongIDs(t *testing.T) {
	requireServers(t)
	p := newProvider(t)
	long := func(c string) string { return strings.Repeat(c, sessionkit.MaxIDLength) }
	a, b := long("a"), long("b")
	create(t, p, a, vals("k", "v"))
	r, err := p.Get(bg, a)
	if err != nil || string(r.Map()["k"]) != "v" {
		t.Fatalf("Get of a %d-byte ID = %v, %v", len(a), r.Map(), err)
	}
	if err := p.Rename(bg, a, b, providertest.Later()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(bg, a); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("old long ID after Rename: %v", err)
	}
	if r, err := p.Get(bg, b); err != nil || string(r.Map()["k"]) != "v" {
		t.Fatalf("new long ID after Rename = %v, %v", r.Map(), err)
	}
	// A long ID and its hashed form must not meet a short ID.
	short := long("a")[:sessionkit.MinIDLength]
	if _, err := p.Get(bg, short); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("a short ID sees a long one's session: %v", err)
	}
}

func TestCorruptValue(t *testing.T) {
	requireServers(t)
	raw := gomemcache.New(servers()...)
	defer raw.Close()
	prefix := providertest.UniquePrefix(t) + ":"
	p, err := memcache.New(memcache.Config{Client: raw, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cases := []struct {
		name  string
		flags uint32
		value []byte
	}{
		{"foreign item", 0, []byte("garbage that is not a session")},
		{"empty", 0x534b0001, nil},
		{"short header", 0x534b0001, []byte{1, 2, 3}},
		{"bad values", 0x534b0001, append([]byte{0x7f, 0, 0, 0, 0, 0, 0, 0}, 0xee, 0xff, 0x01)},
		{"truncated values", 0x534b0001, append([]byte{0x7f, 0, 0, 0, 0, 0, 0, 0}, 1, 5, 1, 'k')},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := sessionkit.NewID()
			if err := raw.Set(&gomemcache.Item{Key: prefix + id, Value: c.value, Flags: c.flags, Expiration: 60}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrCorruptValue) {
				t.Fatalf("Get = %v, want ErrCorruptValue", err)
			}
			if err := p.Update(bg, id, sessionkit.Update{Set: vals("a", "1")}); !errors.Is(err, sessionkit.ErrCorruptValue) {
				t.Fatalf("Update = %v, want ErrCorruptValue", err)
			}
			if err := p.Delete(bg, id); err != nil {
				t.Fatalf("Delete of a corrupt session: %v", err)
			}
			if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
				t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
			}
		})
	}
}

func benchProvider(b *testing.B) *memcache.Provider {
	requireServers(b)
	return newProvider(b)
}

func BenchmarkProvider(b *testing.B) { providertest.BenchProvider(b, benchProvider(b)) }

func BenchmarkManager(b *testing.B) { providertest.BenchManager(b, benchProvider(b)) }

// countingConn counts the writes of a connection: gomemcache sends each
// command with one flush, so a write is a round trip.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestRoundTrips counts what reaches memcached: a Create is one add, a Get
// one gets, an Update made against the session as read (Update.Base) one
// cas; without a Base, or with a stale one, the Update reads first.
func TestRoundTrips(t *testing.T) {
	requireServers(t)
	var writes atomic.Int64
	c := gomemcache.New(servers()...)
	c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: conn, writes: &writes}, nil
	}
	p, err := memcache.New(memcache.Config{Client: c, Prefix: providertest.UniquePrefix(t) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	count := func(what string, want int, op func() error) {
		t.Helper()
		writes.Store(0)
		if err := op(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := writes.Load(); n != int64(want) {
			t.Errorf("%s: %d round trips, want %d", what, n, want)
		}
	}
	id := providertest.ID()
	exp := providertest.Later()
	count("Create", 1, func() error {
		return p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: exp})
	})
	var read sessionkit.Record
	count("Get", 1, func() (err error) { read, err = p.Get(bg, id); return err })
	count("Update against the current Base", 1, func() error {
		return p.Update(bg, id, sessionkit.Update{Set: vals("n", "1"), Expires: exp, Base: read})
	})
	count("Update against a stale Base", 3, func() error {
		return p.Update(bg, id, sessionkit.Update{Set: vals("n", "2"), Expires: exp, Base: read})
	})
	count("Update without a Base", 2, func() error {
		return p.Update(bg, id, sessionkit.Update{Set: vals("m", "3")})
	})
	count("Create of a live ID", 2, func() error {
		if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: exp}); !errors.Is(err, sessionkit.ErrExists) {
			return fmt.Errorf("got %v, want ErrExists", err)
		}
		return nil
	})
	r, err := p.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Map(); len(m) != 3 || string(m["a"]) != "1" || string(m["n"]) != "2" || string(m["m"]) != "3" {
		t.Fatalf("after the updates: %q", m)
	}
}
