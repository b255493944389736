package compare

import (
	"sync/atomic"
	"testing"
)

// stride walks the preloaded cookies in an order that spreads consecutive
// requests over the storage; it is prime, so coprime with Preloaded, and
// every session is visited once per Preloaded requests.
const stride = 7919

// Bench returns the benchmark of op on lib, serial or with b.RunParallel.
// Each run opens a fresh instance and, for W1 and W2, preloads it with
// Preloaded sessions before the timer starts.
func Bench(lib Lib, op Op, parallel bool) func(b *testing.B) {
	return func(b *testing.B) {
		inst, err := lib.New()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(inst.Close)
		var ids []string
		if op.WithCookie() {
			if ids, err = Preload(inst, Preloaded); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		if !parallel {
			ctx := NewCtx()
			k := 0
			for i := 0; i < b.N; i++ {
				c := ""
				if ids != nil {
					c = ids[k]
					k = (k + stride) % len(ids)
				}
				Prepare(ctx, c)
				if _, err := inst.Serve(ctx, op); err != nil {
					b.Fatal(err)
				}
			}
			return
		}
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			ctx := NewCtx()
			// Each goroutine starts at its own place in the walk.
			k := int(seq.Add(1)*2503) % Preloaded
			for pb.Next() {
				c := ""
				if ids != nil {
					c = ids[k%len(ids)]
					k = (k + stride) % len(ids)
				}
				Prepare(ctx, c)
				if _, err := inst.Serve(ctx, op); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
}

// Baseline is the same request handling with no session library: the
// floor every library's numbers include.
func Baseline(parallel bool) func(b *testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		if !parallel {
			ctx := NewCtx()
			for i := 0; i < b.N; i++ {
				Prepare(ctx, "0123456789abcdefghijABCDEFGHIJ-_")
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			ctx := NewCtx()
			for pb.Next() {
				Prepare(ctx, "0123456789abcdefghijABCDEFGHIJ-_")
			}
		})
	}
}
