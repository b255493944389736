// Command compare runs the W1/W2/W3 workloads against sessionkit and the
// other fasthttp session libraries, interleaved: every round runs each
// library once on each workload and mode, back to back, so that a slow
// moment of a shared machine hits all libraries alike. It prints markdown
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
	only := flag.String("libs", "", "comma-separated library names to run (default all)")
	checks := flag.Bool("checks", true, "run the correctness checks")
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fail(err)
	}
	runtime.GOMAXPROCS(*cpu)

	libs := compare.BenchLibs()
	if *only != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			want[strings.TrimSpace(n)] = true
		}
		var kept []compare.Lib
		for _, l := range libs {
			if want[l.Name] || l.Name == "sessionkit" {
				kept = append(kept, l)
			}
		}
		libs = kept
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

	if *checks {
		for _, l := range compare.Libs() {
			rep.Fixation = append(rep.Fixation, compare.CheckFixation(l))
			rep.Updates = append(rep.Updates, compare.CheckUpdates(l, 1000, 3))
			rep.Merge = append(rep.Merge, compare.CheckMerge(l, 200))
			rep.Parallel = append(rep.Parallel, compare.CheckParallel(l, 2, 50000))
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

	type key struct{ op, mode, lib string }
	samples := map[key][]testing.BenchmarkResult{}
	base := map[string][]testing.BenchmarkResult{}
	errs := map[key]string{}
	start := time.Now()
	for round := 0; round < *rounds; round++ {
		for _, mode := range compare.Modes {
			parallel := mode == "parallel"
			progress("round %d/%d: baseline %s", round+1, *rounds, mode)
			base[mode] = append(base[mode], testing.Benchmark(compare.Baseline(parallel)))
			for _, op := range compare.Workloads {
				// Rotate the order each round, so no library always
				// runs first (or right after the same neighbour).
				for i := range libs {
					l := libs[(i+round)%len(libs)]
					progress("round %d/%d: %s %s %s", round+1, *rounds, op, mode, l.Name)
					r := testing.Benchmark(compare.Bench(l, op, parallel))
					k := key{op.String(), mode, l.Name}
					if r.N == 0 {
						errs[k] = "benchmark failed"
						continue
					}
					samples[k] = append(samples[k], r)
				}
			}
		}
	}
	progress("benchmarks took %s", time.Since(start).Round(time.Second))

	for _, op := range compare.Workloads {
		for _, mode := range compare.Modes {
			ref := samples[key{op.String(), mode, "sessionkit"}]
			for _, l := range libs {
				k := key{op.String(), mode, l.Name}
				res := compare.Result{Workload: op.String(), Mode: mode, Lib: l.Name, Err: errs[k]}
				rs := samples[k]
				var ns, allocs, bs, ratios []float64
				for i, r := range rs {
					ns = append(ns, float64(r.T.Nanoseconds())/float64(r.N))
					allocs = append(allocs, float64(r.MemAllocs)/float64(r.N))
					bs = append(bs, float64(r.MemBytes)/float64(r.N))
					if i < len(ref) {
						refNs := float64(ref[i].T.Nanoseconds()) / float64(ref[i].N)
						ratios = append(ratios, ns[i]/refNs)
					}
				}
				res.Samples = ns
				res.NsOp, res.AllocsOp, res.BytesOp = compare.Median(ns), compare.Median(allocs), compare.Median(bs)
				res.Ratio = compare.Median(ratios)
				if len(rs) == 0 && res.Err == "" {
					res.Err = "no result"
				}
				rep.Results = append(rep.Results, res)
			}
		}
	}
	for _, mode := range compare.Modes {
		var ns, allocs, bs []float64
		for _, r := range base[mode] {
			ns = append(ns, float64(r.T.Nanoseconds())/float64(r.N))
			allocs = append(allocs, float64(r.MemAllocs)/float64(r.N))
			bs = append(bs, float64(r.MemBytes)/float64(r.N))
		}
		rep.Baseline = append(rep.Baseline, compare.Result{Workload: "baseline", Mode: mode, Lib: "none",
			NsOp: compare.Median(ns), AllocsOp: compare.Median(allocs), BytesOp: compare.Median(bs), Samples: ns})
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
