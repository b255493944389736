package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/providertest"
)

var bg = context.Background()

func TestMain(m *testing.M) {
	// go-redis logs each Sentinel client's master lookup, and TestSentinel
	// makes dozens. The logger is global and read by go-redis's own
	// goroutines, so it can only be set before any test starts.
	goredis.SetLogger(logging.NewBlacklistLogger([]string{"sentinel: new master", "sentinel: selected addr"}))
	os.Exit(m.Run())
}

func singleAddr() string {
	return providertest.Env("SESSIONKIT_REDIS_ADDR", "127.0.0.1:6379")
}

func clusterAddrs() []string {
	return strings.Split(providertest.Env("SESSIONKIT_REDIS_CLUSTER_ADDRS", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"), ",")
}

// admin returns a plain go-redis client for addrs, for setting up and
// cleaning up behind the provider's back, or ends the test through
// providertest.ServerUnavailable if the server does not answer.
func admin(t testing.TB, what string, addrs ...string) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: addrs, DialTimeout: time.Second, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(bg, 3*time.Second)
	defer cancel()
	err := c.Ping(ctx).Err()
	if err == nil {
		if cc, ok := c.(*goredis.ClusterClient); ok {
			// A cluster whose slots are not all served answers PING but
			// fails every key.
			err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return n.Ping(ctx).Err() })
			if err == nil {
				if info, ierr := cc.ClusterInfo(ctx).Result(); ierr != nil || !strings.Contains(info, "cluster_state:ok") {
					err = fmt.Errorf("cluster not ready: %v %q", ierr, info)
				}
			}
		}
	}
	if err != nil {
		_ = c.Close()
		providertest.ServerUnavailable(t, what+" at "+strings.Join(addrs, ","), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dropPrefix deletes every key under prefix, on every master.
func dropPrefix(c goredis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	del := func(ctx context.Context, s *goredis.Client) error {
		var cursor uint64
		for {
			keys, next, err := s.Scan(ctx, cursor, globEscape(prefix)+"*", 1000).Result()
			if err != nil {
				return err
			}
			// One UNLINK per key, since a cluster refuses a multi-key
			// UNLINK across slots, but one round trip per page.
			pipe := s.Pipeline()
			for _, k := range keys {
				pipe.Unlink(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	switch cc := c.(type) {
	case *goredis.ClusterClient:
		_ = cc.ForEachMaster(ctx, del)
	case *goredis.Client:
		_ = del(ctx, cc)
	}
}

// open creates a provider and schedules its close and the removal of its
// keys.
func open(t testing.TB, adm goredis.UniversalClient, cfg Config) *Provider {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = providertest.UniquePrefix(t) + ":"
	}
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	p, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Close()
		if adm != nil {
			dropPrefix(adm, cfg.Prefix)
		}
	})
	return p
}

func TestConformance(t *testing.T) {
	t.Parallel() // mostly waiting for expiry; runs after the tests that count goroutines
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, adm, Config{Addrs: []string{addr}})
	})
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel() // mostly waiting for expiry; runs after the tests that count goroutines
	addrs := clusterAddrs()
	adm := admin(t, "Redis Cluster", addrs...)
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		p := open(t, adm, Config{Addrs: addrs})
		if p.atomicRename {
			t.Fatal("a Cluster provider must use the multi-step rename")
		}
		return p
	})
}

// TestConformanceSharedClient runs the suite with one caller-owned client
// behind every provider: each subtest closes its provider, and the others
// must go on working, so Close must not close a Config.Client.
func TestConformanceSharedClient(t *testing.T) {
	t.Parallel() // mostly waiting for expiry; runs after the tests that count goroutines
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	shared := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = shared.Close() })
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, adm, Config{Client: shared})
	})
	if err := shared.Ping(bg).Err(); err != nil {
		t.Fatalf("the caller's client after the providers closed: %v", err)
	}
}

// TestConformanceStepwiseRename runs the suite on a single server with
// the Cluster's multi-step Rename, which the Cluster run covers only
// across nodes.
func TestConformanceStepwiseRename(t *testing.T) {
	t.Parallel() // mostly waiting for expiry; runs after the tests that count goroutines
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		p := open(t, adm, Config{Addrs: []string{addr}})
		p.atomicRename = false
		return p
	})
}

// countingHook counts the commands and pipelines a client processes and,
// through the connections it dials, the writes to the network: go-redis
// writes a command with one flush, so a write is a request.
type countingHook struct {
	cmds, pipelines, writes atomic.Int64
	mu                      sync.Mutex
	names                   []string
}

func (h *countingHook) reset() {
	h.cmds.Store(0)
	h.pipelines.Store(0)
	h.writes.Store(0)
	h.mu.Lock()
	h.names = nil
	h.mu.Unlock()
}

func (h *countingHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, writes: &h.writes}, nil
	}
}

func (h *countingHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.cmds.Add(1)
		h.mu.Lock()
		h.names = append(h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// roundTrips runs op and fails the test unless it issued want commands
// (named names), no pipeline and, when checkWrites is set, want writes.
func roundTrips(t *testing.T, h *countingHook, what string, want int, checkWrites bool, op func() error) {
	t.Helper()
	h.reset()
	if err := op(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	h.mu.Lock()
	names := strings.Join(h.names, ",")
	h.mu.Unlock()
	if n := h.cmds.Load(); n != int64(want) || h.pipelines.Load() != 0 {
		t.Errorf("%s: %d commands (%s) and %d pipelines, want %d commands", what, n, names, h.pipelines.Load(), want)
	}
	if w := h.writes.Load(); checkWrites && w != int64(want) {
		t.Errorf("%s: %d network writes, want %d", what, w, want)
	}
	t.Logf("%s: %d command(s): %s", what, h.cmds.Load(), names)
}

func exerciseRoundTrips(t *testing.T, p *Provider, h *countingHook, renameCmds int, checkWrites bool) {
	id, id2 := providertest.ID(), providertest.ID()
	exp := time.Now().Add(time.Hour)
	big := map[string][]byte{"a": []byte("1"), "b": []byte("2"), "\x00c": {0, 1}}
	roundTrips(t, h, "Update(Create)", 1, checkWrites, func() error {
		return p.Update(bg, id, sessionkit.Update{Create: true, Set: big, Expires: exp})
	})
	roundTrips(t, h, "Get", 1, checkWrites, func() error { _, err := p.Get(bg, id); return err })
	roundTrips(t, h, "Update", 1, checkWrites, func() error {
		return p.Update(bg, id, sessionkit.Update{Delete: []string{"a"}, Set: map[string][]byte{"d": []byte("4")}, Expires: exp})
	})
	roundTrips(t, h, "Update(Clear)", 1, checkWrites, func() error {
		return p.Update(bg, id, sessionkit.Update{Clear: true, Set: map[string][]byte{"e": []byte("5")}})
	})
	roundTrips(t, h, "Touch", 1, checkWrites, func() error { return p.Touch(bg, id, exp.Add(time.Minute)) })
	roundTrips(t, h, "Rename", renameCmds, checkWrites, func() error { return p.Rename(bg, id, id2, exp) })
	roundTrips(t, h, "Delete", 1, checkWrites, func() error { return p.Delete(bg, id2) })
	roundTrips(t, h, "Get(missing)", 1, checkWrites, func() error {
		if _, err := p.Get(bg, id2); !errors.Is(err, sessionkit.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
}

// TestRoundTrips proves that each request-path call is one command, sent
// with one network write, on a single server.
func TestRoundTrips(t *testing.T) {
	p, h, _ := openCounted(t)
	exerciseRoundTrips(t, p, h, 1, true)
}

// openCounted opens a provider on the single server through a client of
// one connection that counts what it sends, and returns an admin client
// too.
func openCounted(t *testing.T) (*Provider, *countingHook, goredis.UniversalClient) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	h := &countingHook{}
	client := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 1})
	client.AddHook(h)
	t.Cleanup(func() { _ = client.Close() })
	return open(t, adm, Config{Client: client}), h, adm
}

// TestRoundTripsCluster does the same through a Cluster client, where
// Rename takes three commands (read, copy, drop).
func TestRoundTripsCluster(t *testing.T) {
	addrs := clusterAddrs()
	adm := admin(t, "Redis Cluster", addrs...)
	h := &countingHook{}
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	client.AddHook(h)
	t.Cleanup(func() { _ = client.Close() })
	p := open(t, adm, Config{Client: client})
	exerciseRoundTrips(t, p, h, 3, false)
}

var vals = providertest.Values

func mustGet(t *testing.T, p *Provider, id string) sessionkit.Record {
	t.Helper()
	r, err := p.Get(bg, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return r
}

// TestStorageEdges covers what the storage layout makes special: the
// empty key, a session with no values left, Clear keeping the deadline,
// and more keys than one Lua unpack takes.
func TestStorageEdges(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	p := open(t, adm, Config{Addrs: []string{addr}})
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("", "empty key", "a", "1"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, id).Map(); string(got[""]) != "empty key" || string(got["a"]) != "1" || len(got) != 2 {
		t.Fatalf("values = %q", got)
	}
	if err := p.Update(bg, id, sessionkit.Update{Delete: []string{"", "a"}}); err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, p, id)
	if len(r.Map()) != 0 || !r.Expires.Equal(exp) {
		t.Fatalf("after deleting every value: %q, %v; want a live empty session until %v", r.Map(), r.Expires, exp)
	}
	if err := p.Update(bg, id, sessionkit.Update{Set: vals("back", "1")}); err != nil {
		t.Fatalf("Update of a session with no values: %v", err)
	}
	if err := p.Update(bg, id, sessionkit.Update{Clear: true, Set: vals("c", "3")}); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, p, id); !r.Expires.Equal(exp) || len(r.Map()) != 1 {
		t.Fatalf("after Clear without Expires: %q, %v; want one value and deadline %v", r.Map(), r.Expires, exp)
	}

	many := providertest.ID()
	set := make(map[string][]byte, 3000)
	var del []string
	for i := range 3000 {
		k := "k" + strconv.Itoa(i)
		set[k] = []byte(k)
		if i >= 500 {
			del = append(del, k)
		}
	}
	if err := p.Update(bg, many, sessionkit.Update{Create: true, Set: set, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if n := len(mustGet(t, p, many).Map()); n != 3000 {
		t.Fatalf("%d values after setting 3000", n)
	}
	if err := p.Update(bg, many, sessionkit.Update{Delete: del}); err != nil {
		t.Fatal(err)
	}
	if n := len(mustGet(t, p, many).Map()); n != 500 {
		t.Fatalf("%d values after deleting 2500 of 3000", n)
	}

	if err := p.Update(bg, providertest.ID(), sessionkit.Update{Create: true, Set: vals("a", "1")}); err == nil {
		t.Fatal("Create without a deadline succeeded")
	}
}

// TestHeaderDeadline checks that every write of the key's expiry writes
// the matching deadline into the session's header, so that Get's plain
// GET reports the deadline Redis enforces: atomic and stepwise Rename,
// Update with and without a deadline, Clear keeping the deadline, Touch.
// The key expires a millisecond before the header's deadline: Redis keeps
// a key while its clock reads the PXAT time, and the session must be gone
// once its deadline has come (TestNoSessionAfterItsDeadline).
func TestHeaderDeadline(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	for _, atomicRename := range []bool{true, false} {
		p := open(t, adm, Config{Addrs: []string{addr}})
		p.atomicRename = atomicRename
		exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
		id, id2 := providertest.ID(), providertest.ID()
		agree := func(step, id string, want time.Time) {
			t.Helper()
			key := p.key(id)
			v, err := adm.Get(bg, key).Result()
			if err != nil || len(v) < headerLen {
				t.Fatalf("atomic rename %v, %s: GET = %q, %v", atomicRename, step, v, err)
			}
			ttl, err := adm.Do(bg, "PEXPIRETIME", key).Int64()
			if err != nil {
				t.Fatal(err)
			}
			header := v[1 : 1+deadlineLen]
			if header != fmt.Sprintf("%015d", want.UnixMilli()) || ttl != want.UnixMilli()-1 {
				t.Errorf("atomic rename %v, %s: header deadline %s, key expiry %d, want %d and %d", atomicRename, step, header, ttl, want.UnixMilli(), want.UnixMilli()-1)
			}
			if got := mustGet(t, p, id).Expires; !got.Equal(want) {
				t.Errorf("atomic rename %v, %s: Get reports %v, want %v", atomicRename, step, got, want)
			}
		}
		steps := []struct {
			name string
			id   string
			exp  time.Time
			op   func() error
		}{
			{"create", id, exp, func() error {
				return p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: exp})
			}},
			{"update keeping the deadline", id, exp, func() error { return p.Update(bg, id, sessionkit.Update{Set: vals("b", "2")}) }},
			{"update with a deadline", id, exp.Add(time.Minute), func() error {
				return p.Update(bg, id, sessionkit.Update{Set: vals("b", "3"), Expires: exp.Add(time.Minute)})
			}},
			{"clear keeping the deadline", id, exp.Add(time.Minute), func() error {
				return p.Update(bg, id, sessionkit.Update{Clear: true, Set: vals("c", "4")})
			}},
			{"clear with a deadline", id, exp.Add(2 * time.Minute), func() error {
				return p.Update(bg, id, sessionkit.Update{Clear: true, Set: vals("c", "5"), Expires: exp.Add(2 * time.Minute)})
			}},
			{"touch", id, exp.Add(3 * time.Minute), func() error { return p.Touch(bg, id, exp.Add(3*time.Minute)) }},
			{"rename", id2, exp.Add(4 * time.Minute), func() error { return p.Rename(bg, id, id2, exp.Add(4*time.Minute)) }},
		}
		for _, st := range steps {
			if err := st.op(); err != nil {
				t.Fatalf("atomic rename %v, %s: %v", atomicRename, st.name, err)
			}
			agree(st.name, st.id, st.exp)
		}
		if got := mustGet(t, p, id2).Map(); len(got) != 1 || string(got["c"]) != "5" {
			t.Errorf("atomic rename %v: values after the steps = %q, want only c=5", atomicRename, got)
		}
	}
}

// TestNoSessionAfterItsDeadline checks that a session is gone from the
// moment its deadline comes: Get finds nothing, and neither Touch nor
// Update can bring it back. Each try writes a session due shortly and acts
// on it 100µs after its deadline, within the millisecond during which
// Redis would still hold a key set to expire at the deadline itself.
func TestNoSessionAfterItsDeadline(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	p := open(t, adm, Config{Addrs: []string{addr}})
	// due creates a session due 20ms from now, on a millisecond, and
	// returns 100µs past its deadline, busy-waiting the last stretch: a
	// sleep overshoots by more than the window this test looks into.
	due := func() string {
		id := providertest.ID()
		exp := time.Now().Add(20 * time.Millisecond).Truncate(time.Millisecond)
		providertest.Create(t, p, id, vals("a", "1"), exp)
		time.Sleep(time.Until(exp))
		for time.Now().Before(exp.Add(100 * time.Microsecond)) {
		}
		return id
	}
	later := time.Now().Add(time.Hour)
	ops := []struct {
		name string
		op   func(id string) error
	}{
		{"Get", func(id string) error { _, err := p.Get(bg, id); return err }},
		{"Touch", func(id string) error { return p.Touch(bg, id, later) }},
		{"Update", func(id string) error {
			return p.Update(bg, id, sessionkit.Update{Set: vals("b", "2"), Expires: later})
		}},
	}
	const tries = 20
	for _, o := range ops {
		found := 0
		for range tries {
			id := due()
			switch err := o.op(id); {
			case err == nil:
				found++
			case !errors.Is(err, sessionkit.ErrNotFound):
				t.Fatalf("%s after the deadline: %v", o.name, err)
			default:
				if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
					t.Fatalf("%s failed with ErrNotFound but left the session readable: Get = %v", o.name, err)
				}
			}
		}
		if found > 0 {
			t.Errorf("%s found %d of %d sessions 100µs after their deadline", o.name, found, tries)
		}
	}
}

// TestMergeMatchesApply drives one session through random updates and
// checks after each that the script's merge, done in Lua on the packed
// values, stored what sessionkit.Update.Apply computes: keys and values of
// every length the varint lengths make special (0, 127, 128, 16383,
// 16384), binary keys, the empty key, deletes of missing keys, Clear.
func TestMergeMatchesApply(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	p := open(t, adm, Config{Addrs: []string{addr}})
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 127, 128, 300, 16383, 16384}
	keys := []string{"", "a", "\x00c", "name", "\xff\x00\x80", strings.Repeat("k", 127), strings.Repeat("k", 128), strings.Repeat("x", 300)}
	value := func() []byte {
		b := make([]byte, sizes[rng.IntN(len(sizes))])
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	id := providertest.ID()
	exp := time.Now().Add(time.Hour)
	model := map[string][]byte{}
	for step := range 200 {
		u := sessionkit.Update{Create: step == 0, Expires: exp, Set: map[string][]byte{}}
		if step > 0 {
			u.Clear = rng.IntN(20) == 0
			if rng.IntN(3) > 0 {
				u.Expires = time.Time{}
			}
			for range rng.IntN(3) {
				u.Delete = append(u.Delete, keys[rng.IntN(len(keys))])
			}
		}
		for range rng.IntN(4) {
			u.Set[keys[rng.IntN(len(keys))]] = value()
		}
		if err := p.Update(bg, id, u); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		model = u.Apply(model)
		got := mustGet(t, p, id).Map()
		if len(got) != len(model) {
			t.Fatalf("step %d: %d values stored, want %d", step, len(got), len(model))
		}
		for k, v := range model {
			if g, ok := got[k]; !ok || string(g) != string(v) {
				t.Fatalf("step %d: key %q holds %d bytes (present %v), want %d bytes", step, k, len(g), ok, len(v))
			}
		}
	}
}

// writeLegacy stores a session the way earlier versions of the provider
// did: a hash with the marker "", the deadline field "e" (unless
// deadline is zero, which leaves the key's expiry as the only deadline)
// and a field "." + key per value.
func writeLegacy(t *testing.T, adm goredis.UniversalClient, key string, deadline time.Time, withField bool, kv ...string) {
	t.Helper()
	fields := []any{"", "7"}
	if withField {
		fields = append(fields, "e", strconv.FormatInt(deadline.UnixMilli(), 10))
	}
	for i := 0; i < len(kv); i += 2 {
		fields = append(fields, "."+kv[i], kv[i+1])
	}
	if err := adm.HSet(bg, key, fields...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := adm.PExpireAt(bg, key, deadline).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyHash reads sessions stored as hashes by earlier versions, with
// and without the deadline field: Get answers with a second command (a
// third without the field), every kind of write converts the session to
// the string layout, keeping what the write did not change, and Get is
// one GET after that. A malformed deadline field reads as corrupt; Count
// and Range see both layouts.
func TestLegacyHash(t *testing.T) {
	p, h, adm := openCounted(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	later := exp.Add(time.Minute)
	writes := []struct {
		name string
		op   func(id string) (string, error) // returns the ID the session ends under
		want map[string]string
		exp  time.Time
		// cmds is how many commands op sends: 1, but for the stepwise
		// rename, which reads the session first (a GET, then the
		// legacy read) and must then find it unchanged when it takes
		// it (a put and a take, and no second put).
		cmds int
	}{
		{"update", func(id string) (string, error) {
			return id, p.Update(bg, id, sessionkit.Update{Delete: []string{"a"}, Set: vals("c", "3")})
		}, map[string]string{"b": "2", "c": "3"}, exp, 1},
		{"update with a deadline", func(id string) (string, error) {
			return id, p.Update(bg, id, sessionkit.Update{Set: vals("a", "9"), Expires: later})
		}, map[string]string{"a": "9", "b": "2"}, later, 1},
		{"clear", func(id string) (string, error) {
			return id, p.Update(bg, id, sessionkit.Update{Clear: true, Set: vals("c", "3")})
		}, map[string]string{"c": "3"}, exp, 1},
		{"touch", func(id string) (string, error) { return id, p.Touch(bg, id, later) },
			map[string]string{"a": "1", "b": "2"}, later, 1},
		{"rename", func(id string) (string, error) {
			id2 := providertest.ID()
			return id2, p.Rename(bg, id, id2, later)
		}, map[string]string{"a": "1", "b": "2"}, later, 1},
		{"stepwise rename", func(id string) (string, error) {
			id2 := providertest.ID()
			p.atomicRename = false
			defer func() { p.atomicRename = true }()
			return id2, p.Rename(bg, id, id2, later)
		}, map[string]string{"a": "1", "b": "2"}, later, 4},
	}
	for _, withField := range []bool{true, false} {
		for _, w := range writes {
			name := fmt.Sprintf("%s, deadline field %v", w.name, withField)
			id := providertest.ID()
			writeLegacy(t, adm, p.key(id), exp, withField, "a", "1", "b", "2")
			cmds := 2
			if !withField {
				cmds = 3
			}
			roundTrips(t, h, name+": Get before", cmds, true, func() error {
				r, err := p.Get(bg, id)
				if err == nil && (!r.Expires.Equal(exp) || r.Len() != 2 || string(r.Map()["a"]) != "1") {
					err = fmt.Errorf("got %q until %v, want a=1 b=2 until %v", r.Map(), r.Expires, exp)
				}
				return err
			})
			if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("x", "1"), Expires: exp}); !errors.Is(err, sessionkit.ErrExists) {
				t.Fatalf("%s: Create over a live legacy session = %v, want ErrExists", name, err)
			}
			cmds = w.cmds
			if !withField && w.cmds > 1 {
				cmds++ // the legacy read's PEXPIRETIME
			}
			var got string
			roundTrips(t, h, name, cmds, true, func() (err error) {
				got, err = w.op(id)
				return err
			})
			if typ := adm.Type(bg, p.key(got)).Val(); typ != "string" {
				t.Fatalf("%s: the session is a %s after the write, want a string", name, typ)
			}
			roundTrips(t, h, name+": Get after", 1, true, func() error {
				r, err := p.Get(bg, got)
				if err != nil {
					return err
				}
				m := r.Map()
				if !r.Expires.Equal(w.exp) || len(m) != len(w.want) {
					return fmt.Errorf("got %q until %v, want %q until %v", m, r.Expires, w.want, w.exp)
				}
				for k, v := range w.want {
					if string(m[k]) != v {
						return fmt.Errorf("got %q, want %q", m, w.want)
					}
				}
				return nil
			})
		}
	}

	// Both layouts side by side.
	legacyID, newID := providertest.ID(), providertest.ID()
	writeLegacy(t, adm, p.key(legacyID), exp, true, "a", "1")
	if err := p.Update(bg, newID, sessionkit.Update{Create: true, Set: vals("a", "2"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	if err := p.Range(bg, func(id string, r sessionkit.Record) bool {
		v, _ := r.Lookup("a")
		seen[id] = string(v)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if seen[legacyID] != "1" || seen[newID] != "2" {
		t.Errorf("Range saw %q, want %s=1 and %s=2 among them", seen, legacyID, newID)
	}
	if n, err := p.Count(bg); err != nil || n != len(seen) {
		t.Errorf("Count = %d, %v; Range saw %d", n, err, len(seen))
	}

	key := p.key(legacyID)
	for _, bad := range []string{"soon", "0", "-5", ""} {
		if err := adm.HSet(bg, key, legacyDeadlineField, bad).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Get(bg, legacyID); !errors.Is(err, sessionkit.ErrCorruptValue) {
			t.Errorf("deadline field %q: Get = %v, want ErrCorruptValue", bad, err)
		}
		if err := p.Update(bg, legacyID, sessionkit.Update{Set: vals("a", "3")}); !errors.Is(err, sessionkit.ErrCorruptValue) {
			t.Errorf("deadline field %q: Update = %v, want ErrCorruptValue", bad, err)
		}
	}
}

// resendingHook sends every write twice, as go-redis does when a
// connection breaks after the server applied a command, and runs between
// before the second time. The caller sees the second reply.
type resendingHook struct{ between func() }

func (resendingHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h resendingHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if name := cmd.Name(); name != "set" && name != "evalsha" {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil {
			return err
		}
		if h.between != nil {
			h.between()
		}
		return next(ctx, cmd)
	}
}

func (resendingHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestRetriedWriteIsIdempotent resends every write after it applied, as
// go-redis does when a connection breaks at the wrong moment: the resent
// write must report success and change nothing, even when another write
// that kept the token (the one thing that could tell the resend apart)
// landed in between.
func TestRetriedWriteIsIdempotent(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	var slip func()
	hook := &resendingHook{between: func() {
		if slip != nil {
			slip()
		}
	}}
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	client.AddHook(hook)
	t.Cleanup(func() { _ = client.Close() })
	p := open(t, adm, Config{Client: client})
	exp := time.Now().Add(time.Hour)
	id := providertest.ID()
	key := p.key(id)

	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: exp}); err != nil {
		t.Fatalf("resent Create: %v", err)
	}
	// "late" is added behind the provider's back, under the same token: a
	// Clear that ran twice would remove it.
	slip = func() {
		v := adm.Get(bg, key).Val()
		late := sessionkit.Update{Set: vals("late", "x")}.AppendPacked([]byte(v[:headerLen]), sessionkit.Packed(v[headerLen:]))
		if err := adm.Set(bg, key, late, goredis.KeepTTL).Err(); err != nil {
			t.Error(err)
		}
	}
	if err := p.Update(bg, id, sessionkit.Update{Clear: true, Set: vals("b", "2")}); err != nil {
		t.Fatalf("resent Clear: %v", err)
	}
	slip = nil
	if got := mustGet(t, p, id).Map(); len(got) != 2 || string(got["b"]) != "2" || string(got["late"]) != "x" {
		t.Fatalf("after a resent Clear: %q, want b and late (the Clear ran twice if late is gone)", got)
	}
	id2 := providertest.ID()
	if err := p.Rename(bg, id, id2, exp); err != nil {
		t.Fatalf("resent Rename: %v", err)
	}
	if got := mustGet(t, p, id2).Map(); len(got) != 2 {
		t.Fatalf("after a resent Rename: %q", got)
	}
	if err := p.Touch(bg, id2, exp.Add(time.Minute)); err != nil {
		t.Fatalf("resent Touch: %v", err)
	}
	// A second Create of a live session is not a resend: it is refused.
	if err := p.Update(bg, id2, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: exp}); !errors.Is(err, sessionkit.ErrExists) {
		t.Fatalf("Create of a live session = %v, want ErrExists", err)
	}
}

// deployment is a server to run a test against.
type deployment struct {
	name  string
	addrs []string
}

// deployments lists the single server and the Cluster.
func deployments() []deployment {
	return []deployment{{"single", []string{singleAddr()}}, {"cluster", clusterAddrs()}}
}

// TestStepwiseRenameRaces writes to the old session between the Cluster
// Rename's copy and its take, the moment the take exists for.
func TestStepwiseRenameRaces(t *testing.T) {
	for _, tc := range deployments() {
		t.Run(tc.name, func(t *testing.T) {
			adm := admin(t, "redis", tc.addrs...)
			p := open(t, adm, Config{Addrs: tc.addrs})
			p.atomicRename = false
			later := time.Now().Add(time.Hour)
			exp := time.Now().Add(2 * time.Hour).Truncate(time.Millisecond)
			race := func(during func(oldID string)) (oldID, newID string, err error) {
				oldID, newID = providertest.ID(), providertest.ID()
				if err := p.Update(bg, oldID, sessionkit.Update{Create: true, Set: vals("a", "1", "b", "2"), Expires: later}); err != nil {
					t.Fatal(err)
				}
				p.afterCopy = func() { during(oldID) }
				defer func() { p.afterCopy = nil }()
				return oldID, newID, p.Rename(bg, oldID, newID, exp)
			}

			oldID, newID, err := race(func(id string) {
				if err := p.Update(bg, id, sessionkit.Update{Delete: []string{"a"}, Set: vals("c", "3")}); err != nil {
					t.Errorf("Update mid-rename: %v", err)
				}
			})
			if err != nil {
				t.Fatalf("Rename with an Update mid-copy: %v", err)
			}
			r := mustGet(t, p, newID)
			if len(r.Map()) != 2 || string(r.Map()["b"]) != "2" || string(r.Map()["c"]) != "3" || !r.Expires.Equal(exp) {
				t.Fatalf("after an Update mid-rename: %q until %v; want b and c until %v", r.Map(), r.Expires, exp)
			}
			if _, err := p.Get(bg, oldID); !errors.Is(err, sessionkit.ErrNotFound) {
				t.Fatalf("old ID: %v", err)
			}

			_, newID, err = race(func(id string) {
				if err := p.Delete(bg, id); err != nil {
					t.Errorf("Delete mid-rename: %v", err)
				}
			})
			if !errors.Is(err, sessionkit.ErrNotFound) {
				t.Fatalf("Rename with a Delete mid-copy = %v, want ErrNotFound", err)
			}
			if _, err := p.Get(bg, newID); !errors.Is(err, sessionkit.ErrNotFound) {
				t.Fatalf("the copy survived a Delete of the old ID: %v", err)
			}

			_, newID, err = race(func(id string) {
				if err := p.Touch(bg, id, later.Add(time.Hour)); err != nil {
					t.Errorf("Touch mid-rename: %v", err)
				}
			})
			if err != nil {
				t.Fatalf("Rename with a Touch mid-copy: %v", err)
			}
			if r := mustGet(t, p, newID); len(r.Map()) != 2 || !r.Expires.Equal(exp) {
				t.Fatalf("after a Touch mid-rename: %q until %v", r.Map(), r.Expires)
			}
		})
	}
}

// TestRenameCrossSlotFallback uses a plain *redis.Client on one cluster
// node, as behind a cluster proxy: the atomic rename script gets
// CROSSSLOT, and Rename must fall back to the multi-step version.
func TestRenameCrossSlotFallback(t *testing.T) {
	addrs := clusterAddrs()
	adm := admin(t, "Redis Cluster", addrs...)
	node := goredis.NewClient(&goredis.Options{Addr: addrs[0]})
	t.Cleanup(func() { _ = node.Close() })
	// A node answers MOVED for a key on another node's slots.
	local := func(key string) bool { return node.Exists(bg, key).Err() == nil }
	// Every key the test touches, the provider's probe included, must
	// live on this node, or the node answers MOVED.
	var prefix string
	for prefix == "" || !local(prefix+"\x00probe") {
		prefix = providertest.UniquePrefix(t) + ":"
	}
	localID := func() string {
		for {
			if id := providertest.ID(); local(prefix + id) {
				return id
			}
		}
	}
	p := open(t, adm, Config{Client: node, Prefix: prefix})
	if !p.atomicRename {
		t.Fatal("a *redis.Client should try the atomic rename first")
	}
	oldID, newID := localID(), localID()
	if err := p.Update(bg, oldID, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Rename(bg, oldID, newID, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Rename across slots through one node: %v", err)
	}
	if got := mustGet(t, p, newID).Map(); string(got["a"]) != "1" {
		t.Fatalf("renamed values = %q", got)
	}
	if _, err := p.Get(bg, oldID); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("old ID after Rename: %v", err)
	}
}

// TestCorruptValue stores keys the provider did not write where a session
// would be: each read fails with ErrCorruptValue, and no write touches
// them.
func TestCorruptValue(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	p := open(t, adm, Config{Addrs: []string{addr}})
	later := time.Now().Add(time.Hour)
	cases := []struct {
		name  string
		setup func(key string) error
	}{
		{"string", func(k string) error { return adm.Set(bg, k, "not a hash", time.Minute).Err() }},
		{"list", func(k string) error {
			if err := adm.RPush(bg, k, "x").Err(); err != nil {
				return err
			}
			return adm.Expire(bg, k, time.Minute).Err()
		}},
		{"unmarked hash", func(k string) error {
			if err := adm.HSet(bg, k, ".a", "1").Err(); err != nil {
				return err
			}
			return adm.Expire(bg, k, time.Minute).Err()
		}},
		{"foreign field", func(k string) error {
			if err := adm.HSet(bg, k, "", "1", "plain", "x").Err(); err != nil {
				return err
			}
			return adm.Expire(bg, k, time.Minute).Err()
		}},
		{"no expiry", func(k string) error { return adm.HSet(bg, k, "", "1", ".a", "x").Err() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := providertest.ID()
			if err := c.setup(p.key(id)); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrCorruptValue) {
				t.Fatalf("Get = %v, want ErrCorruptValue", err)
			}
			if c.name == "foreign field" || c.name == "no expiry" {
				return // marked hashes: writes may proceed
			}
			for op, err := range map[string]error{
				"Update":         p.Update(bg, id, sessionkit.Update{Set: vals("a", "2")}),
				"Update(Create)": p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "2"), Expires: later}),
				"Touch":          p.Touch(bg, id, later),
				"Rename":         p.Rename(bg, id, providertest.ID(), later),
				"Rename onto":    p.Rename(bg, providertest.ID(), id, later),
			} {
				if op == "Rename onto" {
					if !errors.Is(err, sessionkit.ErrCorruptValue) && !errors.Is(err, sessionkit.ErrNotFound) {
						t.Errorf("%s = %v, want ErrCorruptValue or ErrNotFound", op, err)
					}
					continue
				}
				if !errors.Is(err, sessionkit.ErrCorruptValue) {
					t.Errorf("%s = %v, want ErrCorruptValue", op, err)
				}
			}
			if typ, err := adm.Type(bg, p.key(id)).Result(); err != nil || typ == "none" {
				t.Fatalf("the corrupt key was removed: %q, %v", typ, err)
			}
		})
	}
}

// redisServer is a private redis-server process, for tests that kill it or
// configure it in ways the shared server must not be.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts redis-server on a free loopback port, with no
// persistence and the given arguments added.
func startServer(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	s := newServer(t)
	s.args = append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}, extra...)
	s.start()
	return s
}

func newServer(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		providertest.ServerUnavailable(t, "the redis-server binary", err)
	}
	s := &redisServer{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	t.Cleanup(s.stop)
	return s
}

// start runs the server and waits until it answers PING.
func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Ping(bg).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.stop()
			s.t.Fatalf("redis-server on %s did not answer: %v", s.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// TestServerFailure kills the provider's server under it: calls must fail
// promptly, then work again once the server is back, with the same
// provider; Close must leave no goroutine behind.
func TestServerFailure(t *testing.T) {
	t.Run("default", func(t *testing.T) { testServerFailure(t, false) })
	t.Run("LocalCache", func(t *testing.T) { testServerFailure(t, true) })
}

// testServerFailure stops and restarts a private server under a
// provider. With the cache, the provider must stop using it when the
// server goes away, and must not bring back sessions the restarted server
// lost.
func testServerFailure(t *testing.T, cache bool) {
	srv := startServer(t)
	before := runtime.NumGoroutine()
	p, err := New(bg, Config{
		Addrs:       []string{srv.addr()},
		DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond,
		MaxRetries:  1,
		LocalCache:  cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	id := providertest.ID()
	later := time.Now().Add(time.Hour)
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: later}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, p, id)

	srv.stop()
	if cache {
		// The subscriber sees its connection close and turns the cache
		// off; until then a read may still be answered from it.
		waitFor(t, 5*time.Second, "the cache to switch off after the server stopped", func() bool { return !p.cache.live.Load() })
	}
	for name, op := range map[string]func() error{
		"Get":    func() error { _, err := p.Get(bg, id); return err },
		"Update": func() error { return p.Update(bg, id, sessionkit.Update{Set: vals("b", "2")}) },
		"Count":  func() error { _, err := p.Count(bg); return err },
	} {
		start := time.Now()
		err := op()
		if err == nil {
			t.Fatalf("%s with the server down succeeded", name)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("%s with the server down took %v", name, d)
		}
		t.Logf("%s with the server down: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	_, err = p.Get(ctx, id)
	cancel()
	if err == nil {
		t.Fatal("Get with the server down succeeded")
	}

	srv.start()
	// The restarted server has neither the data (no persistence) nor the
	// scripts: the provider must reconnect and reload them by itself.
	id2 := providertest.ID()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := p.Update(bg, id2, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: later})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Update after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := mustGet(t, p, id2).Map(); string(got["a"]) != "1" {
		t.Fatalf("after restart: %q", got)
	}
	if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("session from before the restart: %v, want ErrNotFound", err)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(bg, id2); !errors.Is(err, sessionkit.ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	var after int
	for range 50 {
		if after = runtime.NumGoroutine(); after <= before+1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines before New, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
}

func TestOpenServerDown(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	p, err := New(bg, Config{Addrs: []string{addr}, DialTimeout: 500 * time.Millisecond})
	if err == nil {
		_ = p.Close()
		t.Fatal("New with no server succeeded")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name the address %s", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("New took %v to fail", d)
	}
	t.Logf("New with no server (%v): %v", time.Since(start).Round(time.Millisecond), err)

	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := New(ctx, Config{Addrs: []string{addr}}); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("New under a 100ms context: %v after %v", err, time.Since(start))
	}
}

// TestACL authenticates as an ACL user, and checks that a wrong password
// and a user without scripting rights fail at New with a clear error.
func TestACL(t *testing.T) {
	srv := startServer(t)
	adm := admin(t, "private redis", srv.addr())
	if err := adm.Do(bg, "ACL", "SETUSER", "sk", "on", ">s3cret", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := adm.Do(bg, "ACL", "SETUSER", "noscript", "on", ">pw", "~*", "+@all", "-@scripting").Err(); err != nil {
		t.Fatal(err)
	}
	p := open(t, nil, Config{Addrs: []string{srv.addr()}, Username: "sk", Password: "s3cret"})
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, p, id)

	for _, c := range []struct{ user, pass, want string }{{"sk", "wrong", "WRONGPASS"}, {"noscript", "pw", "NOPERM"}} {
		p, err := New(bg, Config{Addrs: []string{srv.addr()}, Username: c.user, Password: c.pass})
		if err == nil {
			_ = p.Close()
			t.Fatalf("New as %s/%s succeeded", c.user, c.pass)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Fatalf("New as %s: %v; want an error mentioning %s", c.user, err, c.want)
		}
		t.Logf("New as %s: %v", c.user, err)
	}

	// LocalCache needs the announcement channel: refused at New without
	// it (Redis 7 grants no channel by default), working with it.
	lc := Config{Addrs: []string{srv.addr()}, Username: "sk", Password: "s3cret", LocalCache: true, Prefix: "acl:"}
	if p, err := New(bg, lc); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		if p != nil {
			_ = p.Close()
		}
		t.Fatalf("New with LocalCache and no channel permission: %v; want NOPERM", err)
	}
	if err := adm.Do(bg, "ACL", "SETUSER", "sk", "&acl:invalidate").Err(); err != nil {
		t.Fatal(err)
	}
	p = open(t, nil, lc)
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	base := mustGet(t, p, id)
	if err := p.Update(bg, id, sessionkit.Update{Set: vals("b", "2"), Base: base}); err != nil {
		t.Fatalf("a write that announces itself, with the channel permitted: %v", err)
	}
}

// TestUnixSocket connects through a unix socket given as the address.
func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "skr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	startServer(t, "--unixsocket", sock, "--unixsocketperm", "700")
	p := open(t, nil, Config{Addrs: []string{sock}})
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, id).Map(); string(got["a"]) != "1" {
		t.Fatalf("values = %q", got)
	}
}

// TestSentinel runs the conformance suite through a Sentinel: a private
// master and one sentinel monitoring it.
func TestSentinel(t *testing.T) {
	t.Parallel() // mostly waiting for expiry; runs after the tests that count goroutines
	master := startServer(t)
	sentinel := newServer(t)
	conf := filepath.Join(sentinel.dir, "sentinel.conf")
	err := os.WriteFile(conf, fmt.Appendf(nil, "port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor skm 127.0.0.1 %d 1\nsentinel down-after-milliseconds skm 60000\n",
		sentinel.port, sentinel.dir, master.port), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sentinel.args = []string{conf, "--sentinel"}
	sentinel.start()
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: sentinel.addr()})
	defer sc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		addr, err := sc.GetMasterAddrByName(bg, "skm").Result()
		if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(master.port) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel did not report the master: %v %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	adm := admin(t, "private redis", master.addr())
	for _, cache := range []bool{false, true} {
		cfg := Config{MasterName: "skm", Addrs: []string{sentinel.addr()}, LocalCache: cache}
		t.Run(fmt.Sprintf("LocalCache=%v", cache), func(t *testing.T) {
			t.Parallel()
			providertest.Run(t, func(t *testing.T) sessionkit.Provider {
				p := open(t, adm, cfg)
				if !p.atomicRename {
					t.Fatal("a Sentinel provider talks to one master and must rename atomically")
				}
				return p
			})
		})
	}
}

func TestConfigValidation(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"client and addrs", Config{Client: client, Addrs: []string{"x:1"}}, "Addrs"},
		{"client and password", Config{Client: client, Password: "p"}, "Username/Password"},
		{"client and pool", Config{Client: client, PoolSize: 3}, "pool"},
		{"nil client", Config{Client: (*goredis.Client)(nil)}, "nil *redis.Client"},
		{"nil cluster client", Config{Client: (*goredis.ClusterClient)(nil), LocalCache: true}, "nil *redis.ClusterClient"},
		{"nil ring", Config{Client: (*goredis.Ring)(nil), LocalCache: true}, "nil *redis.Ring"},
		{"empty addr", Config{Addrs: []string{""}}, "Addrs[0]"},
		{"sentinel without addrs", Config{MasterName: "m"}, "sentinel"},
		{"sentinel and cluster", Config{MasterName: "m", Addrs: []string{"a:1"}, ClusterMode: true}, "ClusterMode"},
		{"cluster db", Config{Addrs: []string{"a:1", "b:1"}, DB: 2}, "DB"},
		{"negative db", Config{DB: -1}, "DB"},
		{"protocol", Config{Protocol: 4}, "Protocol"},
		{"negative dial timeout", Config{DialTimeout: -1}, "DialTimeout"},
		{"negative pool", Config{PoolSize: -1}, "PoolSize"},
		{"negative scan count", Config{ScanCount: -1}, "ScanCount"},
		{"negative dialer retries", Config{DialerRetries: -1}, "DialerRetries"},
	}
	for _, c := range bad {
		if _, err := New(bg, c.cfg); !errors.Is(err, sessionkit.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, want an error wrapping ErrInvalidConfig and mentioning %q", c.name, err, c.want)
		}
	}
	if _, err := driver.Open(bg, wrongConfig{}); !errors.Is(err, sessionkit.ErrInvalidConfig) || !strings.Contains(err.Error(), "*redis.Config") {
		t.Errorf("Open with a foreign config = %v", err)
	}
	found := false
	for _, n := range sessionkit.Drivers() {
		found = found || n == Name
	}
	if !found {
		t.Errorf("%q is not registered: %v", Name, sessionkit.Drivers())
	}
}

type wrongConfig struct{}

func (wrongConfig) ProviderName() string { return "other" }

func TestOptions(t *testing.T) {
	c := Config{}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	o := c.universalOptions()
	if o.Addrs[0] != DefaultAddr || o.DialTimeout != DefaultDialTimeout || o.ReadTimeout != DefaultReadTimeout ||
		o.WriteTimeout != DefaultReadTimeout || o.PoolTimeout != DefaultReadTimeout+time.Second ||
		o.MaxRetries != DefaultMaxRetries || !o.ContextTimeoutEnabled || o.ConnMaxIdleTime != DefaultConnMaxIdleTime {
		t.Errorf("defaults: %+v", o)
	}
	if c.Prefix != DefaultPrefix || c.ScanCount != DefaultScanCount {
		t.Errorf("provider defaults: %+v", c)
	}
	c = Config{ReadTimeout: -1, MaxRetries: -5, ConnMaxIdleTime: -1, IgnoreContextDeadline: true, WriteTimeout: time.Second}
	o = c.universalOptions()
	if o.ReadTimeout != -1 || o.MaxRetries != -1 || o.ConnMaxIdleTime != -1 || o.ContextTimeoutEnabled ||
		o.WriteTimeout != time.Second || o.PoolTimeout != 0 {
		t.Errorf("negative values: %+v", o)
	}
	if got := globEscape(`a*b?c[d]e\`); got != `a\*b\?c\[d\]e\\` {
		t.Errorf("globEscape = %q", got)
	}
}

// benchProvider opens a provider on the shared server for a benchmark.
func benchProvider(b *testing.B) *Provider {
	addr := singleAddr()
	adm := admin(b, "redis", addr)
	return open(b, adm, Config{Addrs: []string{addr}})
}

func BenchmarkProvider(b *testing.B) { providertest.BenchProvider(b, benchProvider(b)) }

func BenchmarkManager(b *testing.B) { providertest.BenchManager(b, benchProvider(b)) }

// BenchmarkManagerLocalCache is BenchmarkManager with Config.LocalCache:
// W1 reads from the cache, W2 and W3 make one round trip.
func BenchmarkManagerLocalCache(b *testing.B) {
	addr := singleAddr()
	adm := admin(b, "redis", addr)
	providertest.BenchManager(b, open(b, adm, Config{Addrs: []string{addr}, LocalCache: true}))
}

// TestBaseSkipsTheMerge checks that an Update made against the session as
// read stores what Go merged from Update.Base without the script parsing
// the stored values: given a Base whose values differ from the stored
// ones under the stored token (which the manager never sends), what is
// stored is Base's values merged, which only that path writes. Get
// reports the token as Rev.
func TestBaseSkipsTheMerge(t *testing.T) {
	addr := singleAddr()
	adm := admin(t, "redis", addr)
	p := open(t, adm, Config{Addrs: []string{addr}})
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	read := mustGet(t, p, id)
	v := adm.Get(bg, p.key(id)).Val()
	if read.Rev == 0 || tokenArg(read.Rev) != v[1+deadlineLen:headerLen] {
		t.Fatalf("Rev %x, stored token %s", read.Rev, v[1+deadlineLen:headerLen])
	}
	base := read
	base.Packed = sessionkit.Pack(vals("z", "9"))
	if err := p.Update(bg, id, sessionkit.Update{Set: vals("b", "2"), Base: base}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, id).Map(); len(got) != 2 || string(got["z"]) != "9" || string(got["b"]) != "2" {
		t.Fatalf("stored %q, want z and b: the script merged instead of storing what was merged from Base", got)
	}
}

// TestScriptsFlushed: a server that lost the provider's scripts (SCRIPT
// FLUSH, or a replica promoted since they were loaded) answers EVALSHA
// with NOSCRIPT. Every write must then send the script itself and apply
// once: the update script, whose command Update builds itself, as well as
// those run through goredis.Script.
func TestScriptsFlushed(t *testing.T) {
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("LocalCache=%v", cache), func(t *testing.T) {
			srv := startServer(t)
			adm := admin(t, "redis", srv.addr())
			p := open(t, adm, Config{Addrs: []string{srv.addr()}, LocalCache: cache})
			id := providertest.ID()
			exp := time.Now().Add(time.Hour)
			if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: exp}); err != nil {
				t.Fatal(err)
			}
			flush := func() {
				t.Helper()
				if err := adm.ScriptFlush(bg).Err(); err != nil {
					t.Fatal(err)
				}
			}
			flush()
			// Without a Base: the script merges.
			if err := p.Update(bg, id, sessionkit.Update{Set: vals("b", "2")}); err != nil {
				t.Fatalf("update after SCRIPT FLUSH: %v", err)
			}
			flush()
			// With the session as read: the script stores what Go merged.
			read := mustGet(t, p, id)
			if err := p.Update(bg, id, sessionkit.Update{Set: vals("c", "3"), Delete: []string{"a"}, Base: read}); err != nil {
				t.Fatalf("update with a Base after SCRIPT FLUSH: %v", err)
			}
			flush()
			exp = exp.Add(time.Hour)
			if err := p.Touch(bg, id, exp); err != nil {
				t.Fatalf("touch after SCRIPT FLUSH: %v", err)
			}
			got := mustGet(t, p, id)
			if m := got.Map(); len(m) != 2 || string(m["b"]) != "2" || string(m["c"]) != "3" {
				t.Fatalf("stored %q, want b=2 and c=3", m)
			}
			if got.Expires.UnixMilli() != exp.UnixMilli() {
				t.Fatalf("deadline %v, want %v", got.Expires, exp)
			}
			// The EVAL loaded the script again: the next update is an EVALSHA.
			if err := p.Update(bg, id, sessionkit.Update{Set: vals("d", "4")}); err != nil {
				t.Fatal(err)
			}
			calls := adm.Info(bg, "commandstats").Val()
			if !strings.Contains(calls, "cmdstat_eval:") || !strings.Contains(calls, "cmdstat_evalsha:") {
				t.Fatalf("commandstats show no EVAL fallback or no EVALSHA:\n%s", calls)
			}
		})
	}
}
