package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/romap2p/romap2p/internal/swarm"
)

// Layout of the tree picture, in SVG user units (box widths come from the
// measured labels).
const (
	treeBoxH   = 44
	treePadX   = 10
	treeGapX   = 24
	treeGapY   = 70
	treeMargin = 20
	treeFont   = 12
)

// writeTreeSVG draws the overview of what the swarm built: receivers below
// the parent that delivered most to them over all stripes (solid arrows,
// labelled with the receiver's goodput), each box with the receiver's time
// and its single-tree time. With one stripe the other upstreams that fed a
// receiver are thin dashed arrows; with more, tree-stripes.svg draws every
// stripe's tree instead.
func writeTreeSVG(w io.Writer, r *swarm.Result) error {
	m := newSVGMeasure()
	boxLine2 := func(p swarm.PeerResult) string {
		if !p.OK {
			return "failed"
		}
		return fmt.Sprintf("%.1f s (single tree %.1f s)", p.CompletionS, transferSeconds(r.Size, p.WidthBps))
	}
	treeBoxW := max(m.width(r.Source, treeFont, true), m.width("source", treeFont-2, false))
	for _, p := range r.Peers {
		treeBoxW = max(treeBoxW, m.width(p.Name, treeFont, true), m.width(boxLine2(p), treeFont-2, false))
	}
	treeBoxW = math.Ceil(treeBoxW + 2*treePadX)
	title := fmt.Sprintf("%s from %s, %s: all done in %.1f s (bound %.1f s)",
		humanBytes(float64(r.Size)), r.Source, stripesWord(r.Stripes), r.TotalS, r.BoundS)
	legend := "solid: the parent that delivered most; dashed: other upstreams"
	if r.Stripes > 1 {
		legend = "arrows: the parent that delivered most over all stripes (tree-stripes.svg has the tree of every stripe)"
	}
	children := map[string][]string{}
	byName := map[string]swarm.PeerResult{}
	for _, p := range r.Peers {
		byName[p.Name] = p
	}
	var roots []string
	for _, p := range r.Peers {
		if _, ok := byName[p.Parent]; ok || p.Parent == r.Source {
			children[p.Parent] = append(children[p.Parent], p.Name)
		} else {
			roots = append(roots, p.Name) // no parent seen: hang below the source
		}
	}
	children[r.Source] = append(children[r.Source], roots...)
	for k := range children {
		sort.Strings(children[k])
	}
	// Depth-first: leaves take consecutive columns, parents sit centred
	// above their children.
	type pos struct{ x, y float64 }
	at := map[string]pos{}
	col := 0.0
	depth := 0
	visiting := map[string]bool{}
	var place func(n string, d int) float64
	place = func(n string, d int) float64 {
		depth = max(depth, d)
		visiting[n] = true
		var xs []float64
		for _, c := range children[n] {
			if !visiting[c] {
				xs = append(xs, place(c, d+1))
			}
		}
		x := col
		if len(xs) == 0 {
			col++
		} else {
			x = (xs[0] + xs[len(xs)-1]) / 2
		}
		at[n] = pos{x, float64(d)}
		return x
	}
	place(r.Source, 0)
	// Receivers in a cycle of "most delivered" parents are placed apart.
	for _, p := range r.Peers {
		if _, ok := at[p.Name]; !ok {
			at[p.Name] = pos{col, 1}
			col++
		}
	}
	cx := func(n string) float64 { return treeMargin + at[n].x*(treeBoxW+treeGapX) + treeBoxW/2 }
	cy := func(n string) float64 { return treeMargin + 36 + at[n].y*(treeBoxH+treeGapY) }
	width := 2*treeMargin + max(max(col, 1)*(treeBoxW+treeGapX)-treeGapX,
		m.width(title, treeFont+2, true), m.width(legend, treeFont-1, false))
	width = math.Ceil(width)
	height := 2*treeMargin + 36 + float64(depth+1)*(treeBoxH+treeGapY) - treeGapY

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="%s" font-size="%d">`+"\n", width, height, width, height, svgFontFamily, treeFont)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker>` +
		`<marker id="thin" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker></defs>` + "\n")
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" font-weight="bold">%s</text>`+"\n", treeMargin, treeMargin, treeFont+2, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" fill="#555">%s</text>`+"\n", treeMargin, treeMargin+17, treeFont-1, html.EscapeString(legend))
	edge := func(from, to string, solid bool, label string) {
		x1, y1 := cx(from), cy(from)+treeBoxH
		x2, y2 := cx(to), cy(to)
		if solid {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-width="1.6" marker-end="url(#arrow)"/>`+"\n", x1, y1, x2, y2)
			if label != "" {
				// Near the child, where the arrows of one parent are a
				// box apart, rather than near the parent where they meet.
				const at = 0.72
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="%d" fill="#333" stroke="white" stroke-width="3" paint-order="stroke">%s</text>`+"\n",
					x1+at*(x2-x1), y1+at*(y2-y1)+4, treeFont-1, html.EscapeString(label))
			}
			return
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-width="0.8" stroke-dasharray="4 3" marker-end="url(#thin)"/>`+"\n", x1, y1, x2, y2)
	}
	for _, p := range r.Peers {
		if r.Stripes > 1 {
			break
		}
		for _, u := range p.Upstreams {
			if u != p.Parent {
				if _, ok := at[u]; ok {
					edge(u, p.Name, false, "")
				}
			}
		}
	}
	for parent, kids := range children {
		for _, k := range kids {
			edge(parent, k, byName[k].Parent == parent, fmt.Sprintf("%.1f Mbit/s", byName[k].GoodputBps/1e6))
		}
	}
	box := func(n, line1, line2, fill string) {
		x, y := cx(n)-treeBoxW/2, cy(n)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%g" height="%d" rx="6" fill="%s" stroke="#333"/>`+"\n", x, y, treeBoxW, treeBoxH, fill)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", cx(n), y+17, html.EscapeString(line1))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="%d">%s</text>`+"\n", cx(n), y+34, treeFont-2, html.EscapeString(line2))
	}
	box(r.Source, r.Source, "source", "#dbe9f6")
	for _, p := range r.Peers {
		fill := "#eef7e8"
		if !p.OK {
			fill = "#fbe0e0"
		}
		box(p.Name, p.Name, boxLine2(p), fill)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
