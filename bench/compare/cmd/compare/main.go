// Command compare runs the W1/W2/W3 workloads against sessionkit and the
// other fasthttp session libraries, and (unless -http=false) through
// net/http middleware against alexedwards/scs, interleaved: every round
// runs each library once on each workload and mode, back to back, so that
// a slow moment of a shared machine hits all libraries alike. It prints markdown
// tables of the medians, the ratios to sessionkit and the correctness
// checks, and writes the same data as JSON and CSV (for cmd/chart).
//
//	go run ./cmd/compare -rounds 5 -json ../compare.json -csv ../compare.csv
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit/bench/compare"
)

func main() {
	testing.Init()
	rounds := flag.Int("rounds", 5, "interleaved rounds; medians are taken over them")
	benchtime := flag.String("benchtime", "1s", "time (or Nx count) per benchmark run")
	cpu := flag.Int("cpu", 2, "GOMAXPROCS for the runs (the goroutines of the parallel mode)")
	jsonPath := flag.String("json", "", "write the report as JSON to this file")
	csvPath := flag.String("csv", "", "write the results as CSV to this file")
	mdPath := flag.String("md", "", "also write the markdown tables to this file")
	redisAddr := flag.String("redis", "127.0.0.1:6379", `Redis for the round-trip count ("" skips it)`)
	redisN := flag.Int("redis-requests", 200, "requests per workload for the round-trip count")
	only := flag.String("libs", "", "comma-separated library names to run, fasthttp's and net/http's (default all; sessionkit always runs)")
	checks := flag.Bool("checks", true, "run the correctness checks")
	withHTTP := flag.Bool("http", true, "also compare the net/http libraries (sessionkit's Middleware, alexedwards/scs)")
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fail(err)
	}
	runtime.GOMAXPROCS(*cpu)

	want := func(string) bool { return true }
	if *only != "" {
		names := map[string]bool{"sessionkit": true}
		for _, n := range strings.Split(*only, ",") {
			names[strings.TrimSpace(n)] = true
		}
		want = func(name string) bool { return names[name] }
	}
	var libs []compare.Lib
	for _, l := range compare.BenchLibs() {
		if want(l.Name) {
			libs = append(libs, l)
		}
	}

	rep := &compare.Report{
		Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Go:        runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:      runtime.GOMAXPROCS(0),
		NumCPU:    runtime.NumCPU(),
		Rounds:    *rounds,
		BenchTime: *benchtime,
		Fasthttp:  moduleVersion("github.com/valyala/fasthttp"),
	}
	for _, l := range libs {
		rep.Libs = append(rep.Libs, compare.LibInfo{Name: l.Name, Module: l.Module, Setup: l.Setup})
	}
	var httpLibs []compare.HTTPLib
	if *withHTTP {
		for _, l := range compare.HTTPLibs() {
			if want(l.Name) {
				httpLibs = append(httpLibs, l)
				rep.HTTPLibs = append(rep.HTTPLibs, compare.LibInfo{Name: l.Name, Module: l.Module, Setup: l.Setup})
			}
		}
	}

	if *checks {
		for _, l := range compare.Libs() {
			rep.Fixation = append(rep.Fixation, compare.CheckFixation(l))
			rep.Updates = append(rep.Updates, compare.CheckUpdates(l, 1000, 3))
			rep.Merge = append(rep.Merge, compare.CheckMerge(l, 200))
			rep.Parallel = append(rep.Parallel, compare.CheckParallel(l, 2, 50000))
		}
		for _, l := range httpLibs {
			rep.HTTPFixation = append(rep.HTTPFixation, compare.CheckFixationHTTP(l))
			rep.HTTPUpdates = append(rep.HTTPUpdates, compare.CheckUpdatesHTTP(l, 1000, 3))
			rep.HTTPMerge = append(rep.HTTPMerge, compare.CheckMergeHTTP(l, 200))
		}
	}
	if *redisAddr != "" {
		progress("redis round trips against %s", *redisAddr)
		rt, err := compare.MeasureRoundTrips(*redisAddr, *redisN)
		if err != nil {
			rep.RedisError = err.Error()
		}
		rep.Redis = rt
	}

	fast := newRuns(libNames(libs), "", compare.Baseline, func(i int, op compare.Op, parallel bool) func(*testing.B) {
		return compare.Bench(libs[i], op, parallel)
	})
	web := newRuns(httpLibNames(httpLibs), "net/http ", compare.BaselineHTTP, func(i int, op compare.Op, parallel bool) func(*testing.B) {
		return compare.BenchHTTP(httpLibs[i], op, parallel)
	})
	start := time.Now()
	for round := 0; round < *rounds; round++ {
		for _, mode := range compare.Modes {
			fast.round(round, *rounds, mode)
			if len(httpLibs) > 0 {
				web.round(round, *rounds, mode)
			}
		}
	}
	progress("benchmarks took %s", time.Since(start).Round(time.Second))
	rep.Results, rep.Baseline = fast.results(), fast.baselines()
	if len(httpLibs) > 0 {
		rep.HTTPResults, rep.HTTPBaseline = web.results(), web.baselines()
	}

	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	os.Stdout.Write(md.Bytes())
	if *mdPath != "" {
		if err := os.WriteFile(*mdPath, md.Bytes(), 0o644); err != nil {
			fail(err)
		}
	}
	if *jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			fail(err)
		}
	}
	if *csvPath != "" {
		f, err := os.Create(*csvPath)
		if err != nil {
			fail(err)
		}
		if err := rep.WriteCSV(f); err != nil {
			fail(err)
		}
		if err := f.Close(); err != nil {
			fail(err)
		}
	}
}

func libNames(libs []compare.Lib) []string {
	var out []string
	for _, l := range libs {
		out = append(out, l.Name)
	}
	return out
}

func httpLibNames(libs []compare.HTTPLib) []string {
	var out []string
	for _, l := range libs {
		out = append(out, l.Name)
	}
	return out
}

// runs is one comparison (fasthttp's libraries, or net/http's): its
// benchmarks, and their results over the rounds.
type runs struct {
	libs     []string // sessionkit first: the others' ratios are to it
	label    string   // before progress lines
	baseline func(parallel bool) func(*testing.B)
	bench    func(lib int, op compare.Op, parallel bool) func(*testing.B)
	samples  map[runKey][]testing.BenchmarkResult
	errs     map[runKey]string
	base     map[string][]testing.BenchmarkResult // by mode
}

type runKey struct{ op, mode, lib string }

func newRuns(libs []string, label string, baseline func(bool) func(*testing.B), bench func(int, compare.Op, bool) func(*testing.B)) *runs {
	return &runs{libs: libs, label: label, baseline: baseline, bench: bench,
		samples: map[runKey][]testing.BenchmarkResult{}, errs: map[runKey]string{}, base: map[string][]testing.BenchmarkResult{}}
}

// round runs the baseline, then every library on every workload, in mode.
func (r *runs) round(round, rounds int, mode string) {
	parallel := mode == "parallel"
	progress("round %d/%d: %sbaseline %s", round+1, rounds, r.label, mode)
	r.base[mode] = append(r.base[mode], testing.Benchmark(r.baseline(parallel)))
	for _, op := range compare.Workloads {
		// Rotate the order each round, so no library always runs first
		// (or right after the same neighbour).
		for i := range r.libs {
			lib := (i + round) % len(r.libs)
			progress("round %d/%d: %s%s %s %s", round+1, rounds, r.label, op, mode, r.libs[lib])
			res := testing.Benchmark(r.bench(lib, op, parallel))
			k := runKey{op.String(), mode, r.libs[lib]}
			if res.N == 0 {
				r.errs[k] = "benchmark failed"
				continue
			}
			r.samples[k] = append(r.samples[k], res)
		}
	}
}

// perOp returns a result's ns, allocs and bytes per operation.
func perOp(res testing.BenchmarkResult) (ns, allocs, bytes float64) {
	n := float64(res.N)
	return float64(res.T.Nanoseconds()) / n, float64(res.MemAllocs) / n, float64(res.MemBytes) / n
}

// results returns the medians of every library, workload and mode, with
// each library's ratio to the first (sessionkit) taken round by round.
func (r *runs) results() []compare.Result {
	var out []compare.Result
	for _, op := range compare.Workloads {
		for _, mode := range compare.Modes {
			ref := r.samples[runKey{op.String(), mode, r.libs[0]}]
			for _, lib := range r.libs {
				k := runKey{op.String(), mode, lib}
				res := compare.Result{Workload: op.String(), Mode: mode, Lib: lib, Err: r.errs[k]}
				var ns, allocs, bs, ratios []float64
				for i, s := range r.samples[k] {
					n, a, b := perOp(s)
					ns, allocs, bs = append(ns, n), append(allocs, a), append(bs, b)
					if i < len(ref) {
						refNs, _, _ := perOp(ref[i])
						ratios = append(ratios, n/refNs)
					}
				}
				res.Samples = ns
				res.NsOp, res.AllocsOp, res.BytesOp = compare.Median(ns), compare.Median(allocs), compare.Median(bs)
				res.Ratio = compare.Median(ratios)
				if len(ns) == 0 && res.Err == "" {
					res.Err = "no result"
				}
				out = append(out, res)
			}
		}
	}
	return out
}

// baselines returns the baseline's medians, by mode.
func (r *runs) baselines() []compare.Result {
	var out []compare.Result
	for _, mode := range compare.Modes {
		var ns, allocs, bs []float64
		for _, s := range r.base[mode] {
			n, a, b := perOp(s)
			ns, allocs, bs = append(ns, n), append(allocs, a), append(bs, b)
		}
		out = append(out, compare.Result{Workload: "baseline", Mode: mode, Lib: "none",
			NsOp: compare.Median(ns), AllocsOp: compare.Median(allocs), BytesOp: compare.Median(bs), Samples: ns})
	}
	return out
}

// moduleVersion is the version of a dependency built into the binary.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}
