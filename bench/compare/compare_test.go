package compare

import (
	"os"
	"testing"
)

// go test -run '^$' -bench . -benchmem -cpu 2 runs every library on every
// workload, serial and parallel. cmd/compare runs the same benchmarks
// interleaved and prints the comparison table.

func benchWorkload(b *testing.B, op Op) {
	for _, lib := range BenchLibs() {
		b.Run(lib.Name+"/serial", Bench(lib, op, false))
		b.Run(lib.Name+"/parallel", Bench(lib, op, true))
	}
}

func BenchmarkW1ReadUnchanged(b *testing.B) { benchWorkload(b, W1) }
func BenchmarkW2Increment(b *testing.B)     { benchWorkload(b, W2) }
func BenchmarkW3NewSession(b *testing.B)    { benchWorkload(b, W3) }

func BenchmarkBaseline(b *testing.B) {
	b.Run("serial", Baseline(false))
	b.Run("parallel", Baseline(true))
}

// TestWorkloads checks that every benchmarked library really does the
// work: W1 finds the value, W2 increments, W3 issues a cookie.
func TestWorkloads(t *testing.T) {
	for _, lib := range BenchLibs() {
		t.Run(lib.Name, func(t *testing.T) {
			inst, err := lib.New()
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close()
			ids, err := Preload(inst, 3)
			if err != nil {
				t.Fatal(err)
			}
			ctx := NewCtx()
			Prepare(ctx, ids[0])
			if has, err := inst.Serve(ctx, OpHasName); err != nil || has != 1 {
				t.Fatalf("preloaded session has no name: %d, %v", has, err)
			}
			for want := 1; want <= 3; want++ {
				Prepare(ctx, ids[1])
				if n, err := inst.Serve(ctx, W2); err != nil || n != want {
					t.Fatalf("W2: n = %d, %v; want %d", n, err, want)
				}
			}
			Prepare(ctx, "")
			if _, err := inst.Serve(ctx, W3); err != nil {
				t.Fatal(err)
			}
			if ResponseCookie(ctx) == "" {
				t.Fatal("W3 set no cookie")
			}
		})
	}
}

// TestChecks runs the correctness checks and logs what each library does;
// only sessionkit is required to pass them.
func TestChecks(t *testing.T) {
	for _, lib := range Libs() {
		f := CheckFixation(lib)
		t.Logf("%s: fixation: adopted=%v response cookie=%q stored under attacker ID=%v err=%q",
			lib.Name, f.Adopted, f.ResponseCookie, f.StoredUnderAttackerID, f.Err)
		u := CheckUpdates(lib, 1000, 3)
		t.Logf("%s: updates: ok=%v wrong=%d/%d new cookies=%d panic=%q err=%q example=%q",
			lib.Name, u.OK(), u.Wrong, u.Sessions, u.NewCookies, u.Panic, u.Err, u.Example)
		if !raceEnabled || lib.Name == "sessionkit" {
			p := CheckParallel(lib, 2, 5000)
			t.Logf("%s: parallel W1/W2: ok=%v panic=%q err=%q", lib.Name, p.OK(), p.Panic, p.Err)
			if lib.Name == "sessionkit" && !p.OK() {
				t.Errorf("sessionkit failed in parallel: %+v", p)
			}
		}
		if raceEnabled && lib.Name == "go-sessions" {
			// Its memory database writes a session's values under a
			// read lock, which the race detector reports as a failure.
			t.Logf("%s: concurrent different keys: skipped under -race (data race in the library)", lib.Name)
			continue
		}
		mg := CheckMerge(lib, 200)
		t.Logf("%s: concurrent different keys: ok=%v lost=%d/%d panic=%q err=%q",
			lib.Name, mg.OK(), mg.Lost, mg.Sessions, mg.Panic, mg.Err)
		if lib.Name == "sessionkit" {
			if !mg.OK() {
				t.Errorf("sessionkit lost a concurrent write: %+v", mg)
			}
			if f.Adopted || f.Err != "" {
				t.Errorf("sessionkit adopted an unknown session ID: %+v", f)
			}
			if !u.OK() {
				t.Errorf("sessionkit lost updates: %+v", u)
			}
		}
	}
}

// TestRedisRoundTrips measures Redis round trips per request when Redis
// answers at 127.0.0.1:6379 (SESSIONKIT_BENCH_REDIS overrides), and
// requires sessionkit's to be what its provider documents: one round trip
// per provider call, and with LocalCache none for a read of a session
// this process has cached (every session here: it preloaded them).
func TestRedisRoundTrips(t *testing.T) {
	addr := os.Getenv("SESSIONKIT_BENCH_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	res, err := MeasureRoundTrips(addr, 50)
	if err != nil {
		t.Skipf("no Redis: %v", err)
	}
	for _, r := range res {
		t.Logf("%s: round trips per request %v, hook commands %v pipelines %v, dials %d, err %q",
			r.Lib, r.PerRequest, r.Commands, r.Pipelines, r.Dials, r.Err)
		want := map[string]map[string]float64{
			"sessionkit":            {"W1": 1, "W2": 2, "W3": 1},
			"sessionkit-localcache": {"W1": 0, "W2": 1, "W3": 1},
		}[r.Lib]
		if want == nil {
			continue
		}
		if r.Err != "" {
			t.Fatal(r.Err)
		}
		for w, n := range want {
			if r.PerRequest[w] != n {
				t.Errorf("%s %s: %v round trips per request, want %v", r.Lib, w, r.PerRequest[w], n)
			}
		}
	}
}

// The report gives each library's parallel speed-up, round by round, and
// the baseline's.
func TestSpeedups(t *testing.T) {
	libs := []LibInfo{{Name: "sessionkit"}, {Name: "go-sessions"}}
	results := []Result{
		{Workload: "W1", Mode: "serial", Lib: "sessionkit", NsOp: 300, Samples: []float64{300, 400, 200}},
		{Workload: "W1", Mode: "parallel", Lib: "sessionkit", NsOp: 150, Samples: []float64{100, 400, 100}},
		{Workload: "W2", Mode: "serial", Lib: "sessionkit", NsOp: 600},
		{Workload: "W2", Mode: "parallel", Lib: "sessionkit", NsOp: 400},
		{Workload: "W1", Mode: "serial", Lib: "go-sessions", NsOp: 500},
		{Workload: "W1", Mode: "parallel", Lib: "go-sessions", Err: "benchmark failed"},
	}
	baseline := []Result{
		{Workload: "baseline", Mode: "serial", Lib: "none", NsOp: 40, Samples: []float64{40}},
		{Workload: "baseline", Mode: "parallel", Lib: "none", NsOp: 25, Samples: []float64{25}},
	}
	// W1: per-round ratios 3, 1, 2 → 2 (the ratio of the medians would
	// be 2 too, so W2, without samples, checks the fallback: 1.5).
	want := "Parallel speed-up (serial ns/op ÷ parallel ns/op, median of the per-round ratios): sessionkit W1 2.00, W2 1.50; the baseline alone 1.60."
	if got := speedups(libs, results, baseline); got != want {
		t.Errorf("speedups =\n%s\nwant\n%s", got, want)
	}
	results[1].Samples = []float64{100, 100, 100} // ratios 3, 4, 2 → 3; medians would give 2
	if got := speedup(results, "W1", "sessionkit"); got != 3 {
		t.Errorf("speedup with per-round samples = %v, want 3 (the median of the ratios)", got)
	}
	if got := speedups(libs, results[4:], nil); got != "" {
		t.Errorf("speedups without a parallel result = %q, want none", got)
	}
}
