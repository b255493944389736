package memory_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

// footprintSessions is how many sessions the footprint benchmark stores;
// SESSIONKIT_FOOTPRINT_N overrides it.
func footprintSessions() int {
	if n, err := strconv.Atoi(os.Getenv("SESSIONKIT_FOOTPRINT_N")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// fill stores n sessions of about 100 bytes of user data each through the
// manager, and returns their IDs.
func fill(b *testing.B, m *sessionkit.Session, n int) []string {
	ids := make([]string, n)
	payload := strings.Repeat("x", 90)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	for i := range ids {
		ctx.ResetUserValues()
		ctx.Response.Reset()
		s, err := m.Start(&ctx)
		if err != nil {
			b.Fatal(err)
		}
		s.Set("user", payload)
		if err := s.Save(&ctx); err != nil {
			b.Fatal(err)
		}
		// A copy, so that the list holds 32-byte strings (as subtracted
		// below) whatever memory the ID was read from.
		ids[i] = strings.Clone(s.ID())
	}
	return ids
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkFootprint reports the heap each stored session costs (heap
// after GC ÷ sessions), for sessions holding ~100 bytes of user data. The
// ID list the benchmark keeps is subtracted. Run it alone:
//
//	go test -run '^$' -bench Footprint -benchtime 1x ./memory/
func BenchmarkFootprint(b *testing.B) {
	n := footprintSessions()
	for range b.N {
		before := heap()
		m := sessionkit.New(sessionkit.Config{})
		p := memory.New(memory.Config{})
		if err := m.UseProvider(p); err != nil {
			b.Fatal(err)
		}
		ids := fill(b, m, n)
		after := heap()
		idBytes := uint64(len(ids)) * (16 + sessionkit.DefaultIDLength) // the IDs slice and strings
		perSession := float64(after-before-idBytes) / float64(n)
		b.ReportMetric(perSession, "bytes/session")
		b.ReportMetric(perSession-100, "overhead-bytes/session")
		runtime.KeepAlive(ids)
		_ = m.Close()
	}
}

// BenchmarkGCPause measures how a full GC sweep over n sessions affects
// concurrent requests: p99 latency of W1-style reads with and without a
// sweep running (three alternating rounds of a second each), and their
// ratio.
func BenchmarkGCPause(b *testing.B) {
	n := footprintSessions()
	m := sessionkit.New(sessionkit.Config{})
	p := memory.New(memory.Config{})
	if err := m.UseProvider(p); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ids := fill(b, m, n)
	// measure appends the latencies of requests served for a second,
	// with or without a sweep running, to lat.
	measure := func(sweep bool, lat []time.Duration) []time.Duration {
		// Each measurement starts with the Go collector idle, so neither
		// one pays for the other's garbage or the fill's: otherwise the
		// first one runs while the collector marks the million sessions
		// just stored, and its p99 is the collector's, not the sweep's.
		runtime.GC()
		var stop atomic.Bool
		var wg sync.WaitGroup
		if sweep {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					_ = p.GC(context.Background()) // nothing expired: a full pass every time
				}
			}()
		}
		limit := len(lat) + 100_000
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, nil, nil)
		deadline := time.Now().Add(time.Second)
		for i := len(lat); time.Now().Before(deadline) && len(lat) < limit; i++ {
			ctx.ResetUserValues()
			ctx.Request.Header.SetCookie("sessionid", ids[(i*7919)%len(ids)])
			t0 := time.Now()
			s, err := m.Start(&ctx)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = s.GetString("user")
			_ = s.Save(&ctx)
			lat = append(lat, time.Since(t0))
		}
		stop.Store(true)
		wg.Wait()
		return lat
	}
	p99 := func(lat []time.Duration) time.Duration {
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	for range b.N {
		// Three rounds of each, alternating, so that a passing disturbance
		// of the machine does not land on one side only.
		idle := make([]time.Duration, 0, 300_000)
		sweeping := make([]time.Duration, 0, 300_000)
		for range 3 {
			idle = measure(false, idle)
			sweeping = measure(true, sweeping)
		}
		base, during := p99(idle), p99(sweeping)
		b.ReportMetric(float64(base.Nanoseconds()), "p99-ns-idle")
		b.ReportMetric(float64(during.Nanoseconds()), "p99-ns-during-gc")
		b.ReportMetric(float64(during)/float64(base), "p99-ratio")
	}
}

// BenchmarkLargeTable runs W1 (read one value, save unchanged) and W2
// (write one value) through the manager among as many sessions as the
// footprint benchmark stores, visited in a stride: a table far larger
// than the processor's caches, where each memory read a lookup depends
// on is a miss to main memory.
//
//	go test -run '^$' -bench LargeTable -benchtime 2s ./memory/
func BenchmarkLargeTable(b *testing.B) {
	m := sessionkit.New(sessionkit.Config{})
	if err := m.UseProvider(memory.New(memory.Config{})); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ids := fill(b, m, footprintSessions())
	for _, w := range []struct {
		name string
		work func(*sessionkit.Store) error
	}{
		{"W1", func(s *sessionkit.Store) error {
			_, err := s.GetString("user")
			return err
		}},
		{"W2", func(s *sessionkit.Store) error {
			n, _ := s.GetInt("n")
			s.Set("n", n+1)
			return nil
		}},
	} {
		b.Run(w.name, func(b *testing.B) {
			runtime.GC()
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, nil, nil)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				ctx.ResetUserValues()
				ctx.Request.Header.SetCookie("sessionid", ids[(i*7919)%len(ids)])
				s, err := m.Start(&ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := w.work(s); err != nil || s.IsNew() {
					b.Fatalf("a stored session was not found: new %v, %v", s.IsNew(), err)
				}
				if err := s.Save(&ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
