package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// median returns the median of xs (NaN when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// maxOf returns the largest of xs (NaN when empty).
func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return slices.Max(xs)
}

// mss is the TCP payload of one full segment on the testbed's links
// (1500-byte MTU, timestamps on): retransmitted segments are counted in it.
const mss = 1448

// receiverTimes returns one receiver's completion times over the runs in
// which it verified its copy.
func receiverTimes(sr *systemResult, host string) []float64 {
	var ts []float64
	for _, r := range sr.Runs {
		if rr := r.Receivers[host]; rr != nil && rr.OK {
			ts = append(ts, rr.Seconds)
		}
	}
	return ts
}

func fmtTimes(ts []float64) string {
	if len(ts) == 0 {
		return "–"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%.1f", t)
	}
	if len(ts) == 1 {
		return parts[0]
	}
	return fmt.Sprintf("%.1f (%s)", median(ts), strings.Join(parts, ", "))
}

// systemsOf returns the systems of a result in the order they were asked for.
func systemsOf(res *result) []string {
	var out []string
	for _, s := range res.Case.Systems {
		if res.Systems[s] != nil {
			out = append(out, s)
		}
	}
	return out
}

// markdown renders result.md.
func markdown(res *result) string {
	var b strings.Builder
	c := res.Case
	fmt.Fprintf(&b, "# Testbed: %s, source %s, %s, scale %g", c.Matrix, c.Source, humanSize(c.SizeBytes), c.Scale)
	if c.CC != "" {
		fmt.Fprintf(&b, ", TCP %s", c.CC)
	}
	fmt.Fprintf(&b, "\n\n")
	fmt.Fprintf(&b, "%d receivers; default access links %g/%g Mbit/s (up/down) before scaling; stagger %g s; %d run(s) per system, systems alternating; %d cores, %s; started %s.\n\n",
		c.Receivers, c.UplinkMbit, c.DownlinkMbit, c.StaggerS, c.Runs, c.Cores, c.Go, c.Started)
	fmt.Fprintf(&b, "Whole-swarm bound (any scheme): **%.2f s** (source egress %.2f s, aggregate uplinks %.2f s, slowest max-flow %.2f s).\n\n",
		c.BoundS, c.BoundTerms.SourceS, c.BoundTerms.AggregateS, c.BoundTerms.FlowS)

	systems := systemsOf(res)
	b.WriteString("## Whole swarm\n\n| system | last receiver done, s: median (runs) | / bound | CPU s per run (all processes) | source CPU s | source sent MiB | ok |\n|---|---|---|---|---|---|---|\n")
	for _, s := range systems {
		sr := res.Systems[s]
		var whole, cpu, scpu, ssent []float64
		ok, total := 0, 0
		for _, r := range sr.Runs {
			if countOK(r) == len(r.Receivers) && r.Error == "" {
				whole = append(whole, r.WholeS)
			}
			cpu = append(cpu, r.CPUS)
			scpu = append(scpu, r.Source.CPUS+r.Source.HelperCPUS)
			ssent = append(ssent, float64(r.Source.SentBytes)/(1<<20))
			ok += countOK(r)
			total += len(r.Receivers)
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %s | %s | %d/%d |\n", s, fmtTimes(whole), median(whole)/c.BoundS,
			fmtTimes(cpu), fmtTimes(scpu), fmtTimes(ssent), ok, total)
	}
	for _, s := range systems {
		for _, r := range res.Systems[s].Runs {
			if r.Error != "" {
				fmt.Fprintf(&b, "\n%s run %d: %s", s, r.Run, r.Error)
			}
		}
	}

	b.WriteString("\n\n## Where the time goes (medians over receivers and runs)\n\n")
	b.WriteString("| system | receiver done, s | start-up s (launch to 2 % of the file in) | tail s (90 % in to done) | receiver CPU s | receiver CPU s at done | source CPU s | downlink at done / file (max) | retransmitted MiB, all hosts |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range systems {
		var secs, start, tail, cpu, cpuDone, scpu, cost, retx []float64
		for _, r := range res.Systems[s].Runs {
			scpu = append(scpu, r.Source.CPUS+r.Source.HelperCPUS)
			segs := r.Source.RetransSegs
			for _, rr := range r.Receivers {
				segs += rr.RetransSegs
			}
			if r.Sabotage != nil && r.Sabotage.Saboteur != nil {
				segs += r.Sabotage.Saboteur.RetransSegs
			}
			retx = append(retx, float64(segs)*mss/(1<<20))
			for _, rr := range r.Receivers {
				if !rr.OK {
					continue
				}
				secs = append(secs, rr.Seconds)
				start = append(start, rr.StartS)
				tail = append(tail, rr.TailS)
				cpu = append(cpu, rr.CPUS)
				cpuDone = append(cpuDone, rr.CPUDoneS)
				if rr.DoneBytes > 0 && res.Case.SizeBytes > 0 {
					cost = append(cost, float64(rr.DoneBytes)/float64(res.Case.SizeBytes))
				}
			}
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.3f (%.3f) | %.1f |\n", s, median(secs), median(start), median(tail), median(cpu), median(cpuDone), median(scpu), median(cost), maxOf(cost), median(retx))
	}
	b.WriteString("\n## Per receiver: completion time, s (median, then each run)\n\n")
	b.WriteString("| receiver | bound s | max-flow Mbit/s | widest path Mbit/s (parent) | eq. 2 Mbit/s | single tree s |")
	for _, s := range systems {
		b.WriteString(" " + s + " |")
	}
	b.WriteString("\n|---|---|---|---|---|---|" + strings.Repeat("---|", len(systems)) + "\n")
	for _, h := range sortedReceivers(res) {
		rb := res.Receivers[h]
		fmt.Fprintf(&b, "| %s | %.2f | %.1f | %.1f (%s) | %.1f | %.2f |", h, rb.BoundS, rb.MaxFlowMbit, rb.WidthMbit, rb.Parent, rb.Eq2Mbit, rb.TreeS)
		for _, s := range systems {
			fmt.Fprintf(&b, " %s |", fmtTimes(receiverTimes(res.Systems[s], h)))
		}
		b.WriteString("\n")
	}

	b.WriteString("\n## Per receiver: CPU seconds of its process, MiB received / sent on its link (median over runs)\n\n| receiver |")
	for _, s := range systems {
		b.WriteString(" " + s + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(systems)) + "\n")
	for _, h := range sortedReceivers(res) {
		fmt.Fprintf(&b, "| %s |", h)
		for _, s := range systems {
			var cpu, rx, tx []float64
			for _, r := range res.Systems[s].Runs {
				if rr := r.Receivers[h]; rr != nil {
					cpu = append(cpu, rr.CPUS)
					rx = append(rx, float64(rr.RecvBytes)/(1<<20))
					tx = append(tx, float64(rr.SentBytes)/(1<<20))
				}
			}
			fmt.Fprintf(&b, " %.1f s, %.0f / %.0f |", median(cpu), median(rx), median(tx))
		}
		b.WriteString("\n")
	}

	var romaSys []string
	for _, s := range systems {
		if strings.HasPrefix(s, "romap2p") {
			romaSys = append(romaSys, s)
		}
	}
	if len(romaSys) > 0 {
		b.WriteString("\n## romap2p: received / K and upstreams (last run)\n\n| receiver |")
		for _, s := range romaSys {
			b.WriteString(" " + s + " |")
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(romaSys)) + "\n")
		for _, h := range sortedReceivers(res) {
			fmt.Fprintf(&b, "| %s |", h)
			for _, s := range romaSys {
				runs := res.Systems[s].Runs
				cell := "–"
				if len(runs) > 0 {
					if rr := runs[len(runs)-1].Receivers[h]; rr != nil && rr.ReceivedK != nil {
						cell = fmt.Sprintf("%.3f, %s", *rr.ReceivedK, strings.Join(rr.Upstreams, " "))
					}
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString(sabotageMarkdown(res))
	b.WriteString(paperMode(res))
	return b.String()
}

// paperObservations is what the ROMA paper says of its Figure 14 (Table I,
// tree rooted at UW): ratios of throughput, so > 1 means ROMA is faster.
const paperObservations = "The paper (Figure 14, its Table I tree rooted at UW) reports ROMA far ahead of N x unicast at every host, " +
	"and ahead of direct unicast at most hosts, the gain coming from wider paths; where a host has a large fan-out, " +
	"link stress leaves ROMA slightly below direct unicast."

// paperMode prints the Figure 14 ratios when the single tree, direct and
// N x unicast ran.
func paperMode(res *result) string {
	tree, direct, nx := res.Systems["romap2p-tree"], res.Systems["direct"], res.Systems["http"]
	if tree == nil || (direct == nil && nx == nil) {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Paper mode: Figure 14 ratios (throughput ratio = time ratio inverted; > 1: the single ROMA tree is faster)\n\n")
	b.WriteString("| receiver | ROMA / direct | ROMA / N x unicast | eq. 2 / direct rate (predicted) |\n|---|---|---|---|\n")
	for _, h := range sortedReceivers(res) {
		t := median(receiverTimes(tree, h))
		cell := func(sr *systemResult) string {
			if sr == nil {
				return "–"
			}
			o := median(receiverTimes(sr, h))
			if math.IsNaN(o) || math.IsNaN(t) {
				return "–"
			}
			return fmt.Sprintf("%.2f", o/t)
		}
		rb := res.Receivers[h]
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f |\n", h, cell(direct), cell(nx), rb.Eq2Mbit/rb.DirectMbit)
	}
	b.WriteString("\n" + paperObservations + "\n")
	return b.String()
}

// palette colours the systems in the chart.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
}

// chart draws per receiver the median completion time of each system as
// bars, with the max-flow bound and the single-tree time as marks.
func chart(res *result, path string) error {
	systems := systemsOf(res)
	hosts := sortedReceivers(res)
	if len(hosts) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s, source %s, %s, scale %g", res.Case.Matrix, res.Case.Source, humanSize(res.Case.SizeBytes), res.Case.Scale)
	p.Y.Label.Text = "seconds to verified completion (median over runs)"
	p.Legend.Top = true
	width := vg.Length(math.Max(6, 0.35*float64(len(hosts)*max(1, len(systems))))) * vg.Inch
	// Each receiver gets a group of bars filling about 70 % of its slot.
	w := vg.Length(math.Max(2, float64(width)*0.85/float64(len(hosts))*0.7/float64(max(1, len(systems)))))
	top := 0.0
	for k, s := range systems {
		vals := make(plotter.Values, len(hosts))
		for i, h := range hosts {
			v := median(receiverTimes(res.Systems[s], h))
			if math.IsNaN(v) {
				v = 0
			}
			vals[i] = v
			top = math.Max(top, v)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = palette[k%len(palette)]
		bars.Offset = w * vg.Length(float64(k)-float64(len(systems)-1)/2)
		p.Add(bars)
		p.Legend.Add(s, bars)
	}
	bound, tree := make(plotter.XYs, len(hosts)), make(plotter.XYs, len(hosts))
	for i, h := range hosts {
		bound[i] = plotter.XY{X: float64(i), Y: res.Receivers[h].BoundS}
		tree[i] = plotter.XY{X: float64(i), Y: res.Receivers[h].TreeS}
		top = math.Max(top, math.Max(bound[i].Y, tree[i].Y))
	}
	bs, err := plotter.NewScatter(bound)
	if err != nil {
		return err
	}
	bs.GlyphStyle = draw.GlyphStyle{Shape: draw.BoxGlyph{}, Radius: vg.Points(3.5), Color: color.Black}
	ts, err := plotter.NewScatter(tree)
	if err != nil {
		return err
	}
	ts.GlyphStyle = draw.GlyphStyle{Shape: draw.RingGlyph{}, Radius: vg.Points(4), Color: color.Black}
	p.Add(bs, ts)
	p.Legend.Add("max-flow bound", bs)
	p.Legend.Add("single widest tree (eq. 2)", ts)
	p.NominalX(hosts...)
	p.Y.Min = 0
	// Head room for the legend above the bars.
	p.Y.Max = top * (1.2 + 0.09*float64(len(systems)+2))
	return p.Save(width, 4.5*vg.Inch, path)
}
