package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/romap2p/romap2p/internal/swarm"
)

// writeSwarmReport writes into dir: the tree as Graphviz DOT (tree.dot,
// one cluster per stripe when there are several) and as an SVG the program draws itself (tree.svg, one parent per
// receiver), one tree per stripe (tree-stripes.svg), and a bar chart of
// every receiver's time against its bound and its single-tree time
// (chart.svg, chart.png).
func writeSwarmReport(dir string, r *swarm.Result) error {
	if err := swarmWriteFile(filepath.Join(dir, "tree.dot"), func(w io.Writer) error { return writeSwarmDOT(w, r) }); err != nil {
		return err
	}
	if err := swarmWriteFile(filepath.Join(dir, "tree.svg"), func(w io.Writer) error { return writeTreeSVG(w, r) }); err != nil {
		return err
	}
	if err := swarmWriteFile(filepath.Join(dir, "tree-stripes.svg"), func(w io.Writer) error { return writeStripesSVG(w, r) }); err != nil {
		return err
	}
	p, err := swarmChart(r)
	if err != nil {
		return fmt.Errorf("report chart: %w", err)
	}
	width := vg.Length(max(7, 1.2*float64(len(r.Peers))+2)) * vg.Inch
	height := 5 * vg.Inch
	svg := vgsvg.New(width, height)
	p.Draw(draw.New(svg))
	if err := swarmWriteFile(filepath.Join(dir, "chart.svg"), func(w io.Writer) error {
		_, err := svg.WriteTo(w)
		return err
	}); err != nil {
		return err
	}
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
	p.Draw(draw.New(img))
	return swarmWriteFile(filepath.Join(dir, "chart.png"), func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

// swarmWriteFile creates path and fills it with write.
func swarmWriteFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}

// writeSwarmDOT writes the tree: solid edges parent -> child labelled with
// the child's goodput, dashed grey edges for the widest-path tree where it
// differs. With several stripes it writes one cluster per stripe instead,
// as tree-stripes.svg draws them.
func writeSwarmDOT(w io.Writer, r *swarm.Result) error {
	if r.Stripes > 1 {
		return writeStripesDOT(w, r)
	}
	var b strings.Builder
	b.WriteString("digraph swarm {\n\trankdir=TB;\n\tnode [shape=box, fontname=\"Helvetica\"];\n\tedge [fontname=\"Helvetica\", fontsize=10];\n")
	fmt.Fprintf(&b, "\t%s [shape=doubleoctagon, label=%s];\n", swarmDOTID(r.Source), swarmDOTID(r.Source+"\nsource"))
	for _, p := range r.Peers {
		label := fmt.Sprintf("%s\n%.1f / %.1f Mbit/s", p.Name, p.GoodputBps/1e6, p.WidthBps/1e6)
		attrs := ""
		if !p.OK {
			label = p.Name + "\nfailed"
			attrs = ", color=red"
		}
		fmt.Fprintf(&b, "\t%s [label=%s%s];\n", swarmDOTID(p.Name), swarmDOTID(label), attrs)
	}
	for _, p := range r.Peers {
		if p.Parent != "" {
			fmt.Fprintf(&b, "\t%s -> %s [label=%s];\n", swarmDOTID(p.Parent), swarmDOTID(p.Name), swarmDOTID(fmt.Sprintf("%.1f Mbit/s", p.GoodputBps/1e6)))
		}
		if p.IdealParent != "" && p.IdealParent != p.Parent {
			fmt.Fprintf(&b, "\t%s -> %s [style=dashed, color=gray50, fontcolor=gray50, label=%s];\n",
				swarmDOTID(p.IdealParent), swarmDOTID(p.Name), swarmDOTID(fmt.Sprintf("ideal %.1f", p.WidthBps/1e6)))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeStripesDOT writes one cluster per stripe, each the stripe's tree:
// every receiver below the upstream that delivered the most of the stripe,
// labelled with its time and its goodput on the stripe; receivers without a
// parent, or whose parents do not lead to the source, hang below the source
// on a dashed edge.
func writeStripesDOT(w io.Writer, r *swarm.Result) error {
	var b strings.Builder
	b.WriteString("digraph swarm {\n\trankdir=LR;\n\tnode [shape=box, fontname=\"Helvetica\"];\n\tedge [fontname=\"Helvetica\", fontsize=10];\n")
	for s := range r.Stripes {
		t := buildStripeTree(r, s)
		id := func(n string) string { return swarmDOTID(fmt.Sprintf("%d/%s", s, n)) }
		fmt.Fprintf(&b, "\tsubgraph cluster_stripe%d {\n\t\tlabel=%s;\n\t\tcolor=%s;\n", s, swarmDOTID(fmt.Sprintf("stripe %d", s)), swarmDOTID(stripeColor(s)))
		fmt.Fprintf(&b, "\t\t%s [shape=doubleoctagon, label=%s];\n", id(r.Source), swarmDOTID(r.Source+"\nsource"))
		for _, p := range r.Peers {
			l1, l2 := stripeBoxLines(p, s)
			attrs := ""
			if !p.OK {
				attrs = ", color=red"
			}
			fmt.Fprintf(&b, "\t\t%s [label=%s%s];\n", id(p.Name), swarmDOTID(l1+"\n"+l2), attrs)
		}
		parents := make([]string, 0, len(t.children))
		for p := range t.children {
			parents = append(parents, p)
		}
		sort.Strings(parents)
		for _, p := range parents {
			for _, k := range t.children[p] {
				attrs := fmt.Sprintf(" [color=%s]", swarmDOTID(stripeColor(s)))
				if t.broken[k] {
					attrs = " [style=dashed, color=darkorange]"
				}
				fmt.Fprintf(&b, "\t\t%s -> %s%s;\n", id(p), id(k), attrs)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// swarmDOTID quotes s as a DOT identifier.
func swarmDOTID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// transferSeconds is how long size bytes take at bps bits per second (0
// when the rate is unknown).
func transferSeconds(size int64, bps float64) float64 {
	if bps <= 0 || math.IsInf(bps, 0) || math.IsNaN(bps) {
		return 0
	}
	return 8 * float64(size) / bps
}

// swarmChart builds the grouped bar chart, in seconds per receiver: the
// time it took, its bound (the file over its max-flow from all hosts) and
// the time the widest single tree would give it; the title carries the
// whole swarm's time and bound.
func swarmChart(r *swarm.Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s from %s, %d stripe(s): all done in %.1f s, bound %.1f s",
		humanBytes(float64(r.Size)), r.Source, r.Stripes, r.TotalS, r.BoundS)
	p.Title.Padding = vg.Points(6)
	p.Y.Label.Text = "seconds to the verified file (lower is better)"
	p.Y.Min = 0
	series := []struct {
		label string
		value func(swarm.PeerResult) float64
	}{
		{"its time", func(p swarm.PeerResult) float64 { return p.CompletionS }},
		{"its bound (max-flow from all hosts)", func(p swarm.PeerResult) float64 { return transferSeconds(r.Size, p.MaxFlowBps) }},
		{"single widest tree", func(p swarm.PeerResult) float64 { return transferSeconds(r.Size, p.WidthBps) }},
	}
	names := make([]string, len(r.Peers))
	for i, pr := range r.Peers {
		names[i] = pr.Name
		if !pr.OK {
			names[i] += " (failed)"
		}
	}
	w := vg.Points(14)
	top := 0.1
	for i, s := range series {
		vals := make(plotter.Values, len(r.Peers))
		for j, pr := range r.Peers {
			vals[j] = s.value(pr)
			top = max(top, vals[j])
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(i-1) * w
		p.Add(bars)
		p.Legend.Add(s.label, bars)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(8)
	p.Legend.YOffs = -vg.Points(4)
	p.Legend.Padding = vg.Points(2)
	p.NominalX(names...)
	// Room above the bars for the three legend lines.
	p.Y.Max = 1.45 * top
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Add(plotter.NewGrid())
	return p, nil
}
