package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// writeSwarmReport writes the tree the swarm built as Graphviz DOT and a
// bar chart of ideal width, goodput and direct unicast per receiver as SVG
// and PNG into dir.
func writeSwarmReport(dir string, r *swarm.Result) error {
	if err := swarmWriteFile(filepath.Join(dir, "tree.dot"), func(w io.Writer) error { return writeSwarmDOT(w, r) }); err != nil {
		return err
	}
	p, err := swarmChart(r)
	if err != nil {
		return fmt.Errorf("report chart: %w", err)
	}
	width := vg.Length(max(6, 1.1*float64(len(r.Peers))+2)) * vg.Inch
	height := 4 * vg.Inch
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
// differs.
func writeSwarmDOT(w io.Writer, r *swarm.Result) error {
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

// swarmDOTID quotes s as a DOT identifier.
func swarmDOTID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// swarmChart builds the grouped bar chart: ideal widest-path width,
// achieved goodput and direct unicast per receiver, Mbit/s.
func swarmChart(r *swarm.Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("romap2p swarm: %.0f MiB from %s, %d stripe(s)", float64(r.Size)/(1<<20), r.Source, r.Stripes)
	p.Y.Label.Text = "Mbit/s"
	p.Y.Min = 0
	series := []struct {
		label string
		value func(swarm.PeerResult) float64
	}{
		{"ideal (widest-path tree)", func(p swarm.PeerResult) float64 { return p.WidthBps }},
		{"achieved goodput", func(p swarm.PeerResult) float64 { return p.GoodputBps }},
		{"direct unicast", func(p swarm.PeerResult) float64 { return p.DirectBps }},
	}
	names := make([]string, len(r.Peers))
	for i, pr := range r.Peers {
		names[i] = pr.Name
	}
	w := vg.Points(12)
	top := 1.0
	for i, s := range series {
		vals := make(plotter.Values, len(r.Peers))
		for j, pr := range r.Peers {
			vals[j] = s.value(pr) / 1e6
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
	p.NominalX(names...)
	// Room above the bars for the legend, and beside the outer groups.
	p.Y.Max = 1.3 * top
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Add(plotter.NewGrid())
	return p, nil
}
