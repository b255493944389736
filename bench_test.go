package sessionkit_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

// The workloads of the performance issue, on the memory provider:
//
//	W1: valid cookie, read one string, save unchanged
//	W2: valid cookie, increment an int, save
//	W3: no cookie, set one value, save (a new session)
//
// Each iteration is one request handled in-process: Start, the work, Save.
// Sessions are preloaded and cookies used round-robin, in a stride that
// spreads consecutive requests over the table.

const benchSessions = 10000

func benchManager(b *testing.B) (*sessionkit.Session, []string) {
	return benchManagerWith(b, sessionkit.Config{})
}

func benchManagerWith(b *testing.B, cfg sessionkit.Config) (*sessionkit.Session, []string) {
	b.Helper()
	m := sessionkit.New(cfg)
	if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	ids := make([]string, benchSessions)
	for i := range ids {
		ids[i] = serve(b, m, request{}, func(s *sessionkit.Store) {
			s.Set("name", "sessionkit")
			s.Set("n", 0)
		}).cookieVal
	}
	return m, ids
}

// handle runs one request through m, reusing ctx as fasthttp does.
func handle(m *sessionkit.Session, ctx *fasthttp.RequestCtx, cookie string, work func(*sessionkit.Store)) error {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.ResetUserValues()
	if cookie != "" {
		ctx.Request.Header.SetCookie("sessionid", cookie)
	}
	s, err := m.Start(ctx)
	if err != nil {
		return err
	}
	work(s)
	return s.Save(ctx)
}

func w1(s *sessionkit.Store) { _, _ = s.GetString("name") }
func w2(s *sessionkit.Store) {
	n, _ := s.GetInt("n")
	s.Set("n", n+1)
}
func w3(s *sessionkit.Store) { s.Set("name", "sessionkit") }

func runSerial(b *testing.B, work func(*sessionkit.Store), withCookie bool) {
	runSerialWith(b, sessionkit.Config{}, work, withCookie)
}

func runSerialWith(b *testing.B, cfg sessionkit.Config, work func(*sessionkit.Store), withCookie bool) {
	m, ids := benchManagerWith(b, cfg)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := handle(m, &ctx, walk(ids, i, withCookie), work); err != nil {
			b.Fatal(err)
		}
	}
}

// walk is the cookie of a benchmark's i-th request among ids, "" when it
// sends none. The stride is bench/compare's too: in the order they were
// created, sessions lie in memory one after another, and the processor's
// prefetching would hide the cache misses that round-robin traffic over a
// large table meets.
func walk(ids []string, i int, withCookie bool) string {
	if !withCookie {
		return ""
	}
	return ids[(i*7919)%len(ids)]
}

// walkStart is where the walk of a parallel benchmark's goroutine begins.
// Started together at one place, the goroutines would go through the
// sessions in step and measure two cores fighting over one session's
// cache lines, which round-robin traffic does not do.
func walkStart(seq *atomic.Int64, n int) int { return int(seq.Add(1)) * (n / 7) }

func runParallel(b *testing.B, work func(*sessionkit.Store), withCookie bool) {
	m, ids := benchManager(b)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, nil, nil)
		for i := walkStart(&seq, len(ids)); pb.Next(); i++ {
			if err := handle(m, &ctx, walk(ids, i, withCookie), work); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkW1ReadUnchanged(b *testing.B)         { runSerial(b, w1, true) }
func BenchmarkW2Increment(b *testing.B)             { runSerial(b, w2, true) }
func BenchmarkW3NewSession(b *testing.B)            { runSerial(b, w3, false) }
func BenchmarkW1ReadUnchangedParallel(b *testing.B) { runParallel(b, w1, true) }
func BenchmarkW2IncrementParallel(b *testing.B)     { runParallel(b, w2, true) }
func BenchmarkW3NewSessionParallel(b *testing.B)    { runParallel(b, w3, false) }

// BenchmarkBaseline is the same request handling with no session at all,
// the yardstick the W benchmarks are read against.
func BenchmarkBaseline(b *testing.B) {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.ResetUserValues()
		ctx.Request.Header.SetCookie("sessionid", "x")
	}
}

// BenchmarkWriteUnread is W2's write without its read: a request that
// reads one key and overwrites another at the same length (a "last seen"
// stamp beside the user's name), to read against BenchmarkW2Increment.
func BenchmarkWriteUnread(b *testing.B) {
	runSerial(b, func(s *sessionkit.Store) {
		_, _ = s.GetString("name")
		s.Set("n", 1)
	}, true)
}

// The cost of the security options on W1, to read against
// BenchmarkW1ReadUnchanged in the same run.
func BenchmarkW1HashedIDs(b *testing.B) { runSerialWith(b, sessionkit.Config{HashIDs: true}, w1, true) }
func BenchmarkW1SignedIDs(b *testing.B) {
	runSerialWith(b, sessionkit.Config{SignKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}}, w1, true)
}

// allocsManager returns a manager on the memory provider holding one
// session as the workloads find it, and its ID, for the allocation
// budgets; it skips under the race detector, which allocates.
func allocsManager(t *testing.T) (*sessionkit.Session, string) {
	t.Helper()
	return allocsManagerWith(t, sessionkit.Config{})
}

// allocsManagerWith is allocsManager on a manager configured by cfg.
func allocsManagerWith(t *testing.T, cfg sessionkit.Config) (*sessionkit.Session, string) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	m := sessionkit.New(cfg)
	if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	id := serve(t, m, request{}, func(s *sessionkit.Store) {
		s.Set("name", "sessionkit")
		s.Set("n", 0)
	}).cookieVal
	return m, id
}

// The allocation budgets of the performance issue, held as tests:
// allocation counts, unlike times, do not depend on the machine. They
// hold under HashIDs too: a Copier's storage key is worked out in the
// pooled state, once per request, so hashing costs time, not
// allocations.
func TestWorkloadAllocs(t *testing.T) {
	for _, cfg := range []sessionkit.Config{{}, {HashIDs: true}} {
		t.Run(fmt.Sprintf("HashIDs=%v", cfg.HashIDs), func(t *testing.T) { checkWorkloadAllocs(t, cfg) })
	}
}

func checkWorkloadAllocs(t *testing.T, cfg sessionkit.Config) {
	m, id := allocsManagerWith(t, cfg)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	for _, tc := range []struct {
		name   string
		work   func(*sessionkit.Store)
		cookie string
		max    float64
	}{
		// The request's handle comes from a block of handleBlock that
		// the pooled state holds, one allocation every 32 requests, which
		// AllocsPerRun's whole-number average rounds away.
		{"W1", w1, id, 0},
		// The budget is 3: the session's new version. The memory
		// provider, a Copier, lets the save reuse its encoding buffer
		// (see sessionkit.Copier).
		{"W2", w2, id, 1},
		// The session's one version, which holds its ID too: the ID is
		// made in the handle and, for a Copier, the bookkeeping in the
		// Store's own buffer.
		{"W3", w3, "", 1},
	} {
		n := testing.AllocsPerRun(200, func() {
			if err := handle(m, &ctx, tc.cookie, tc.work); err != nil {
				t.Fatal(err)
			}
		})
		if n > tc.max {
			t.Errorf("%s allocates %v times per request, want at most %v", tc.name, n, tc.max)
		}
	}
	// A read-only request's one piece of garbage is its handle, 16 bytes
	// in a block of handleBlock: for a Copier the provider calls'
	// context and the ID's buffer are the state's own (see
	// sessionkit.Copier). The budget leaves room for sync.Pool making
	// new states after a collection.
	const requests = 32 * 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range requests {
		if err := handle(m, &ctx, id, w1); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRequest := (after.TotalAlloc - before.TotalAlloc) / requests; perRequest > 24 {
		t.Errorf("W1 allocates %d bytes per request, want at most 24", perRequest)
	}
}

// BenchmarkGetMissing is a getter asked for a key the session lacks, as
// on a counter's first request: the error it returns should cost little.
func BenchmarkGetMissing(b *testing.B) {
	m, ids := benchManager(b)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.Header.SetCookie("sessionid", ids[0])
	s, err := m.Start(&ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetInt("absent"); err == nil {
			b.Fatal("found a key never set")
		}
	}
}
