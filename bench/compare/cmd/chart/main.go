// Command chart turns the JSON report of cmd/compare into an SVG bar
// chart: ns/op and allocs/op of every library on every workload and mode.
//
//	go run ./cmd/chart -in ../compare.json -out ../compare.svg
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"strings"

	"github.com/sessionkit/sessionkit/bench/compare"
)

var colors = []string{"#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030"}

func main() {
	in := flag.String("in", "compare.json", "report written by cmd/compare -json")
	out := flag.String("out", "compare.svg", "SVG file to write")
	flag.Parse()
	b, err := os.ReadFile(*in)
	if err != nil {
		fail(err)
	}
	var rep compare.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		fail(err)
	}
	if len(rep.Libs) == 0 || len(rep.Results) == 0 {
		fail(fmt.Errorf("%s holds no results", *in))
	}
	if err := os.WriteFile(*out, []byte(render(&rep)), 0o644); err != nil {
		fail(err)
	}
}

type group struct {
	label string
	vals  []float64 // one per library; NaN when missing
}

const (
	width   = 960
	left    = 70
	right   = 20
	panelH  = 250
	topPad  = 70
	gapH    = 80
	bottomH = 30
)

func render(rep *compare.Report) string {
	var groups []group
	var allocs []group
	for _, op := range compare.Workloads {
		for _, mode := range compare.Modes {
			g := group{label: op.String() + " " + mode}
			a := group{label: g.label}
			for _, l := range rep.Libs {
				x, ok := rep.Find(op.String(), mode, l.Name)
				if !ok || x.Err != "" {
					g.vals = append(g.vals, math.NaN())
					a.vals = append(a.vals, math.NaN())
					continue
				}
				g.vals = append(g.vals, x.NsOp)
				a.vals = append(a.vals, x.AllocsOp)
			}
			groups = append(groups, g)
			allocs = append(allocs, a)
		}
	}
	height := topPad + 2*panelH + gapH + bottomH
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&s, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&s, `<text x="%d" y="24" font-size="16" font-weight="bold">Session libraries on fasthttp: in-process handler, memory storage</text>`+"\n", left)
	fmt.Fprintf(&s, `<text x="%d" y="44" fill="#555">%s</text>`+"\n", left,
		html.EscapeString(fmt.Sprintf("median of %d interleaved rounds, %s %s, GOMAXPROCS=%d, fasthttp %s, %s",
			rep.Rounds, rep.Go, rep.Platform, rep.CPUs, rep.Fasthttp, rep.Generated)))
	// Legend.
	x := float64(left)
	for i, l := range rep.Libs {
		fmt.Fprintf(&s, `<rect x="%.0f" y="54" width="12" height="12" fill="%s"/>`, x, colors[i%len(colors)])
		name := compare.DisplayName(l.Name)
		fmt.Fprintf(&s, `<text x="%.0f" y="64">%s</text>`+"\n", x+16, html.EscapeString(name))
		x += 16 + float64(len(name))*7 + 24
	}
	panel(&s, groups, len(rep.Libs), topPad+10, "ns/op (lower is better)", "%.0f")
	panel(&s, allocs, len(rep.Libs), topPad+panelH+gapH, "allocs/op (lower is better)", "%.1f")
	s.WriteString("</svg>\n")
	return s.String()
}

// panel draws one grouped bar chart whose plot area starts at y0.
func panel(s *strings.Builder, groups []group, nlib, y0 int, title, valFmt string) {
	plotH := float64(panelH - 40)
	top := float64(y0 + 20)
	bottom := top + plotH
	maxV := 0.0
	for _, g := range groups {
		for _, v := range g.vals {
			if !math.IsNaN(v) && v > maxV {
				maxV = v
			}
		}
	}
	step := niceStep(maxV / 4)
	maxAxis := math.Ceil(maxV/step) * step
	if maxAxis == 0 {
		maxAxis = 1
	}
	fmt.Fprintf(s, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, y0+8, html.EscapeString(title))
	plotW := float64(width - left - right)
	for v := 0.0; v <= maxAxis+step/2; v += step {
		y := bottom - v/maxAxis*plotH
		fmt.Fprintf(s, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e2e8f0"/>`, left, y, width-right, y)
		fmt.Fprintf(s, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y+4, axisLabel(v))
	}
	groupW := plotW / float64(len(groups))
	barW := groupW * 0.8 / float64(nlib)
	for gi, g := range groups {
		gx := float64(left) + float64(gi)*groupW + groupW*0.1
		for li, v := range g.vals {
			bx := gx + float64(li)*barW
			if math.IsNaN(v) {
				fmt.Fprintf(s, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#c53030">n/a</text>`+"\n", bx+barW/2, bottom-4)
				continue
			}
			h := v / maxAxis * plotH
			fmt.Fprintf(s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
				bx+1, bottom-h, barW-2, h, colors[li%len(colors)], html.EscapeString(fmt.Sprintf(valFmt, v)))
			fmt.Fprintf(s, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#333">%s</text>`+"\n",
				bx+barW/2, bottom-h-3, html.EscapeString(shortLabel(v, valFmt)))
		}
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", gx+groupW*0.4, bottom+16, html.EscapeString(g.label))
	}
	fmt.Fprintf(s, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", left, bottom, width-right, bottom)
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func axisLabel(v float64) string {
	switch {
	case v >= 1000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func shortLabel(v float64, valFmt string) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf(valFmt, v)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "chart:", err)
	os.Exit(1)
}
