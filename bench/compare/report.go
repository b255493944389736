package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Report is everything one comparison run measured. cmd/compare writes it
// as JSON; cmd/chart reads it back.
type Report struct {
	Generated string    `json:"generated"`
	Go        string    `json:"go"`
	Platform  string    `json:"platform"`
	CPUs      int       `json:"cpus"` // GOMAXPROCS during the run
	NumCPU    int       `json:"num_cpu"`
	Rounds    int       `json:"rounds"`
	BenchTime string    `json:"benchtime"`
	Fasthttp  string    `json:"fasthttp"`
	Libs      []LibInfo `json:"libs"`
	Results   []Result  `json:"results"`
	Baseline  []Result  `json:"baseline"`

	Fixation   []FixationResult `json:"fixation,omitempty"`
	Updates    []UpdatesResult  `json:"updates,omitempty"`
	Merge      []MergeResult    `json:"merge,omitempty"`
	Parallel   []ParallelResult `json:"parallel,omitempty"`
	Redis      []RoundTrips     `json:"redis,omitempty"`
	RedisError string           `json:"redis_error,omitempty"`

	// The net/http comparison (nethttp.go): the same workloads through
	// each library's net/http middleware.
	HTTPLibs     []LibInfo        `json:"http_libs,omitempty"`
	HTTPResults  []Result         `json:"http_results,omitempty"`
	HTTPBaseline []Result         `json:"http_baseline,omitempty"`
	HTTPFixation []FixationResult `json:"http_fixation,omitempty"`
	HTTPUpdates  []UpdatesResult  `json:"http_updates,omitempty"`
	HTTPMerge    []MergeResult    `json:"http_merge,omitempty"`
}

// LibInfo describes a library in a report.
type LibInfo struct {
	Name   string `json:"name"`
	Module string `json:"module"`
	Setup  string `json:"setup"`
}

// Result is one library on one workload and mode: medians over rounds.
type Result struct {
	Workload string  `json:"workload"`
	Mode     string  `json:"mode"` // "serial" or "parallel"
	Lib      string  `json:"lib"`
	NsOp     float64 `json:"ns_op"`
	AllocsOp float64 `json:"allocs_op"`
	BytesOp  float64 `json:"bytes_op"`
	// Ratio is this library's ns/op divided by sessionkit's, the median
	// of the per-round ratios (each round runs all libraries back to
	// back). 1 for sessionkit itself.
	Ratio   float64   `json:"ratio_vs_sessionkit"`
	Samples []float64 `json:"samples_ns_op"`
	Err     string    `json:"error,omitempty"`
}

// Modes are the benchmark modes, in table order.
var Modes = []string{"serial", "parallel"}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Find returns the result for workload, mode and lib.
func (r *Report) Find(workload, mode, lib string) (Result, bool) {
	return find(r.Results, workload, mode, lib)
}

func find(results []Result, workload, mode, lib string) (Result, bool) {
	for _, x := range results {
		if x.Workload == workload && x.Mode == mode && x.Lib == lib {
			return x, true
		}
	}
	return Result{}, false
}

// DisplayName is the name a library goes by in tables.
func DisplayName(lib string) string {
	switch lib {
	case "fasthttp-session":
		return "fasthttp/session"
	case "fasthttp-session-unpatched":
		return "fasthttp/session (memory provider as shipped)"
	case "go-sessions":
		return "kataras/go-sessions"
	case "sessionkit-localcache":
		return "sessionkit (LocalCache)"
	case "scs":
		return "alexedwards/scs"
	case "scs-lifetime":
		return "alexedwards/scs (Lifetime)"
	}
	return lib
}

func fmtNum(x float64) string {
	switch {
	case x >= 100:
		return addCommas(strconv.FormatFloat(x, 'f', 0, 64))
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func fmtAllocs(x float64) string {
	if x == float64(int64(x)) {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func addCommas(s string) string {
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// WriteMarkdown writes the report's tables.
func (r *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "### In-process handler, memory storage (median of %d interleaved rounds)\n\n", r.Rounds)
	fmt.Fprintf(w, "%s %s, GOMAXPROCS=%d (%d CPUs), benchtime %s per benchmark, fasthttp %s, %d preloaded sessions, %s.\n\n",
		r.Go, r.Platform, r.CPUs, r.NumCPU, r.BenchTime, r.Fasthttp, Preloaded, r.Generated)
	writeResults(w, r.Libs, r.Results, r.Baseline, "resetting the request and setting its cookie")

	if len(r.Fixation) > 0 || len(r.Updates) > 0 {
		fmt.Fprintln(w, "### Correctness")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| library | adopts an unknown, attacker-chosen session ID | W2 increments kept (1000 sessions × 3 passes over 3 reused connections) | two concurrent requests set different keys: both kept | parallel W1 and W2 (2 goroutines, reused RequestCtxs) |")
		fmt.Fprintln(w, "|---|---|---|---|---|")
		names := map[string]bool{}
		var order []string
		for _, f := range r.Fixation {
			if !names[f.Lib] {
				names[f.Lib] = true
				order = append(order, f.Lib)
			}
		}
		for _, p := range r.Parallel {
			if !names[p.Lib] {
				names[p.Lib] = true
				order = append(order, p.Lib)
			}
		}
		for _, u := range r.Updates {
			if !names[u.Lib] {
				names[u.Lib] = true
				order = append(order, u.Lib)
			}
		}
		for _, lib := range order {
			fix, upd, mrg, par := "", "", "", ""
			for _, f := range r.Fixation {
				if f.Lib == lib {
					fix = describeFixation(f)
				}
			}
			for _, u := range r.Updates {
				if u.Lib == lib {
					upd = describeUpdates(u)
				}
			}
			for _, m := range r.Merge {
				if m.Lib == lib {
					mrg = describeMerge(m)
				}
			}
			for _, p := range r.Parallel {
				if p.Lib == lib {
					par = describeParallel(p)
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", DisplayName(lib), fix, upd, mrg, par)
		}
		fmt.Fprintln(w)
		for _, l := range Libs() {
			if l.Issues != "" && names[l.Name] {
				fmt.Fprintf(w, "- %s: %s.\n", DisplayName(l.Name), l.Issues)
			}
		}
		fmt.Fprintln(w)
	}

	r.writeHTTP(w)

	if len(r.Redis) > 0 || r.RedisError != "" {
		fmt.Fprintln(w, "### Redis round trips per request")
		fmt.Fprintln(w)
		if r.RedisError != "" {
			fmt.Fprintf(w, "Not measured: %s\n\n", r.RedisError)
			return
		}
		fmt.Fprintln(w, "| library | W1 | W2 | W3 | how counted |")
		fmt.Fprintln(w, "|---|--:|--:|--:|---|")
		for _, x := range r.Redis {
			if x.Err != "" {
				fmt.Fprintf(w, "| %s | | | | failed: %s |\n", DisplayName(x.Lib), x.Err)
				continue
			}
			fmt.Fprintf(w, "| %s |", DisplayName(x.Lib))
			for _, op := range Workloads {
				fmt.Fprintf(w, " %s |", fmtNum(x.PerRequest[op.String()]))
			}
			how := "proxy"
			if x.Commands != nil {
				var cs []string
				for _, op := range Workloads {
					cs = append(cs, fmt.Sprintf("%s %s cmd/%s pipeline", op, fmtNum(x.Commands[op.String()]), fmtNum(x.Pipelines[op.String()])))
				}
				how = "proxy; go-redis hook: " + strings.Join(cs, ", ")
			}
			fmt.Fprintf(w, " %s; %s |\n", how, x.Note)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Counted by a loopback proxy in front of Redis (one client write, one reply = one round trip), serially, after preloading and warming the connection pool.")
		fmt.Fprintln(w)
	}
}

// writeResults writes the table of one comparison: a row per workload
// and mode, a column group per library, then what the baseline (which
// does baselineWhat) costs alone.
func writeResults(w io.Writer, libs []LibInfo, results, baseline []Result, baselineWhat string) {
	fmt.Fprint(w, "| workload | mode |")
	for i, l := range libs {
		if i == 0 {
			fmt.Fprintf(w, " %s ns/op | allocs/op |", DisplayName(l.Name))
			continue
		}
		fmt.Fprintf(w, " %s ns/op | allocs/op | × |", DisplayName(l.Name))
	}
	fmt.Fprint(w, "\n|---|---|")
	for i := range libs {
		if i == 0 {
			fmt.Fprint(w, "--:|--:|")
			continue
		}
		fmt.Fprint(w, "--:|--:|--:|")
	}
	fmt.Fprintln(w)
	for _, op := range Workloads {
		for _, mode := range Modes {
			fmt.Fprintf(w, "| %s %s | %s |", op, op.Describe(), mode)
			for i, l := range libs {
				x, ok := find(results, op.String(), mode, l.Name)
				switch {
				case !ok || x.Err != "":
					fmt.Fprint(w, " failed | |")
					if i > 0 {
						fmt.Fprint(w, " |")
					}
					continue
				}
				fmt.Fprintf(w, " %s | %s |", fmtNum(x.NsOp), fmtAllocs(x.AllocsOp))
				if i > 0 {
					fmt.Fprintf(w, " %.2f |", x.Ratio)
				}
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "× is the library's ns/op divided by sessionkit's (median of the per-round ratios): above 1, sessionkit is faster.")
	if len(baseline) > 0 {
		var parts []string
		for _, b := range baseline {
			parts = append(parts, fmt.Sprintf("%s %s ns/op, %s allocs/op", b.Mode, fmtNum(b.NsOp), fmtAllocs(b.AllocsOp)))
		}
		fmt.Fprintf(w, "Every number includes %s, which alone costs: %s.\n", baselineWhat, strings.Join(parts, "; "))
	}
	if line := speedups(libs, results, baseline); line != "" {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

// speedups describes how much faster each library runs in parallel than
// serially (the issue asks sessionkit for 1.6 on two cores), and the
// baseline's, which shares and allocates nothing, as what the machine
// itself allows. It is "" when the results have no parallel runs.
func speedups(libs []LibInfo, results, baseline []Result) string {
	var parts []string
	for _, l := range libs {
		var xs []string
		for _, op := range Workloads {
			if x := speedup(results, op.String(), l.Name); x > 0 {
				xs = append(xs, fmt.Sprintf("%s %.2f", op, x))
			}
		}
		if len(xs) > 0 {
			parts = append(parts, DisplayName(l.Name)+" "+strings.Join(xs, ", "))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	if x := speedup(baseline, "baseline", "none"); x > 0 {
		parts = append(parts, fmt.Sprintf("the baseline alone %.2f", x))
	}
	return "Parallel speed-up (serial ns/op ÷ parallel ns/op, median of the per-round ratios): " + strings.Join(parts, "; ") + "."
}

// speedup is serial ns/op over parallel ns/op for one workload and
// library: the median of the per-round ratios when both have a sample for
// every round (the two modes run in the same round, minutes apart at
// most), else the ratio of the medians; 0 if either is missing.
func speedup(results []Result, workload, lib string) float64 {
	ser, ok1 := find(results, workload, "serial", lib)
	par, ok2 := find(results, workload, "parallel", lib)
	if !ok1 || !ok2 || ser.Err != "" || par.Err != "" || ser.NsOp <= 0 || par.NsOp <= 0 {
		return 0
	}
	if len(ser.Samples) > 0 && len(ser.Samples) == len(par.Samples) {
		ratios := make([]float64, 0, len(ser.Samples))
		for i, s := range ser.Samples {
			if par.Samples[i] > 0 {
				ratios = append(ratios, s/par.Samples[i])
			}
		}
		if len(ratios) == len(ser.Samples) {
			return Median(ratios)
		}
	}
	return ser.NsOp / par.NsOp
}

// writeHTTP writes the net/http comparison, if the report has one.
func (r *Report) writeHTTP(w io.Writer) {
	if len(r.HTTPResults) == 0 {
		return
	}
	fmt.Fprintf(w, "### net/http middleware, memory storage (median of %d interleaved rounds)\n\n", r.Rounds)
	fmt.Fprintf(w, "The same workloads through each library's own net/http middleware, on one reused `*http.Request` and `ResponseWriter` per goroutine. %d preloaded sessions.\n\n", Preloaded)
	writeResults(w, r.HTTPLibs, r.HTTPResults, r.HTTPBaseline, "resetting the response header and setting the request's Cookie header")
	fmt.Fprintln(w, "| library | setup | adopts an unknown, attacker-chosen session ID | W2 increments kept (1000 sessions × 3 passes) | two concurrent requests set different keys: both kept |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, l := range r.HTTPLibs {
		fix, upd, mrg := "", "", ""
		for _, f := range r.HTTPFixation {
			if f.Lib == l.Name {
				fix = describeFixation(f)
			}
		}
		for _, u := range r.HTTPUpdates {
			if u.Lib == l.Name {
				upd = describeUpdates(u)
			}
		}
		for _, m := range r.HTTPMerge {
			if m.Lib == l.Name {
				mrg = describeMerge(m)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", DisplayName(l.Name), l.Setup, fix, upd, mrg)
	}
	fmt.Fprintln(w)
}

func describeFixation(f FixationResult) string {
	switch {
	case f.Err != "":
		return "check failed: " + f.Err
	case !f.Adopted:
		return "no: a new ID is issued"
	case f.ResponseCookie == f.AttackerID:
		return "**yes**: the response cookie is the attacker's ID"
	}
	return "**yes**: no new cookie is sent and the value is stored under the attacker's ID"
}

func describeParallel(p ParallelResult) string {
	switch {
	case p.Panic != "":
		return "**panic**: " + p.Panic
	case p.Err != "":
		return "**error**: " + p.Err
	}
	return fmt.Sprintf("ok, %d requests", p.Requests)
}

func describeMerge(m MergeResult) string {
	switch {
	case m.Panic != "":
		return "**panic**: " + m.Panic
	case m.Err != "":
		return "**error**: " + m.Err
	case m.OK():
		return fmt.Sprintf("yes, %d/%d sessions", m.Sessions, m.Sessions)
	}
	return fmt.Sprintf("**no**: a key lost in %d of %d sessions", m.Lost, m.Sessions)
}

func describeUpdates(u UpdatesResult) string {
	switch {
	case u.Panic != "":
		return "**panic**: " + u.Panic
	case u.Err != "":
		return "**error**: " + u.Err
	case u.OK():
		return fmt.Sprintf("yes, %d/%d", u.Sessions, u.Sessions)
	}
	s := fmt.Sprintf("**no**: %d of %d sessions wrong", u.Wrong, u.Sessions)
	if u.NewCookies > 0 {
		s += fmt.Sprintf(", %d new cookies", u.NewCookies)
	}
	if u.Example != "" {
		s += " (" + strings.ReplaceAll(u.Example, "|", `\|`) + ")"
	}
	return s
}

// WriteCSV writes one line per library, workload and mode.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"workload", "mode", "lib", "ns_op", "allocs_op", "bytes_op", "ratio_vs_sessionkit"})
	for _, x := range r.Results {
		_ = cw.Write([]string{x.Workload, x.Mode, x.Lib,
			strconv.FormatFloat(x.NsOp, 'f', 1, 64),
			strconv.FormatFloat(x.AllocsOp, 'f', 1, 64),
			strconv.FormatFloat(x.BytesOp, 'f', 0, 64),
			strconv.FormatFloat(x.Ratio, 'f', 3, 64)})
	}
	for _, x := range r.Baseline {
		_ = cw.Write([]string{"baseline", x.Mode, "none",
			strconv.FormatFloat(x.NsOp, 'f', 1, 64),
			strconv.FormatFloat(x.AllocsOp, 'f', 1, 64),
			strconv.FormatFloat(x.BytesOp, 'f', 0, 64), ""})
	}
	// The net/http comparison's rows name their library "nethttp/" + its
	// name.
	for _, x := range r.HTTPResults {
		_ = cw.Write([]string{x.Workload, x.Mode, "nethttp/" + x.Lib,
			strconv.FormatFloat(x.NsOp, 'f', 1, 64),
			strconv.FormatFloat(x.AllocsOp, 'f', 1, 64),
			strconv.FormatFloat(x.BytesOp, 'f', 0, 64),
			strconv.FormatFloat(x.Ratio, 'f', 3, 64)})
	}
	cw.Flush()
	return cw.Error()
}
