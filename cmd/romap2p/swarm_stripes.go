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

// Layout of the per-stripe tree picture, in SVG user units.
const (
	stripeFont      = 12.0 // receiver names
	stripeSmall     = 11.0 // second box line, legend, panel notes
	stripeTitleFont = 15.0
	stripePanelFont = 13.0
	stripePadX      = 8.0  // text to box edge
	stripeBoxH      = 36.0 // two lines
	stripeGapY      = 8.0  // between rows of boxes
	stripeGapX      = 40.0 // between a parent's column and its children's
	stripePanelPad  = 12.0 // panel border to its content
	stripePanelGap  = 16.0 // between panels
	stripeMargin    = 16.0
	stripeLineH     = 18.0 // height of one header line
)

// stripeColor returns the colour that tells stripe s apart: its panel
// header, arrows and relay boxes.
func stripeColor(s int) string {
	colors := [...]string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}
	return colors[s%len(colors)]
}

// stripeTree is the tree of one stripe, laid out left to right: the source
// in column 0, every receiver one column right of its parent, leaves on
// consecutive rows and every parent centred on its children's rows.
type stripeTree struct {
	stripe   int
	children map[string][]string
	// broken marks receivers whose parents do not lead to the source (no
	// parent seen, or a cycle): they are drawn below the source with a
	// dashed arrow.
	broken map[string]bool
	col    map[string]int
	row    map[string]float64
	cols   int // columns used
	rows   int // rows used
}

// buildStripeTree makes the tree of stripe s from every receiver's parent
// on that stripe.
func buildStripeTree(r *swarm.Result, s int) *stripeTree {
	t := &stripeTree{
		stripe:   s,
		children: map[string][]string{},
		broken:   map[string]bool{},
		col:      map[string]int{},
		row:      map[string]float64{},
	}
	parent := map[string]string{}
	isPeer := map[string]bool{}
	for _, p := range r.Peers {
		isPeer[p.Name] = true
	}
	for _, p := range r.Peers {
		up := ""
		if s < len(p.StripeParents) {
			up = p.StripeParents[s]
		}
		if up == p.Name || (up != r.Source && !isPeer[up]) {
			up = ""
		}
		parent[p.Name] = up
	}
	// A receiver whose chain of parents does not reach the source within
	// as many steps as there are receivers is cut loose: the first one of
	// its chain without a parent, or the least name on a cycle.
	for _, p := range r.Peers {
		var chain []string
		on := map[string]int{}
		at := p.Name
		for at != r.Source && at != "" && !t.broken[at] {
			if i, seen := on[at]; seen {
				cyc := chain[i:]
				least := cyc[0]
				for _, n := range cyc {
					least = min(least, n)
				}
				t.broken[least] = true
				break
			}
			on[at] = len(chain)
			chain = append(chain, at)
			if parent[at] == "" {
				t.broken[at] = true
				break
			}
			at = parent[at]
		}
	}
	for _, p := range r.Peers {
		up := parent[p.Name]
		if t.broken[p.Name] {
			up = r.Source
		}
		t.children[up] = append(t.children[up], p.Name)
	}
	for k := range t.children {
		sort.Strings(t.children[k])
	}
	next := 0.0
	var place func(n string, d int) float64
	place = func(n string, d int) float64 {
		t.cols = max(t.cols, d+1)
		var ys []float64
		for _, c := range t.children[n] {
			ys = append(ys, place(c, d+1))
		}
		y := next
		if len(ys) == 0 {
			next++
		} else {
			y = (ys[0] + ys[len(ys)-1]) / 2
		}
		t.col[n], t.row[n] = d, y
		return y
	}
	place(r.Source, 0)
	t.rows = max(int(next), 1)
	return t
}

// depth is the number of receiver levels below the source.
func (t *stripeTree) depth() int { return t.cols - 1 }

// note is the panel's one-line summary.
func (t *stripeTree) note(source string) string {
	s := fmt.Sprintf("%s feeds %d, depth %d", source, len(t.children[source]), t.depth())
	if n := len(t.broken); n > 0 {
		s += fmt.Sprintf(", %d without a path", n)
	}
	return s
}

// stripeBoxLines returns the two lines of a receiver's box on a stripe:
// its name, and its time to the verified file with its goodput on the
// stripe.
func stripeBoxLines(p swarm.PeerResult, s int) (string, string) {
	switch {
	case p.Killed:
		return p.Name, "killed"
	case !p.OK:
		return p.Name, "failed"
	}
	g := 0.0
	if s < len(p.StripeGoodputBps) {
		g = p.StripeGoodputBps[s]
	}
	return p.Name, fmt.Sprintf("%.1f s · %.1f Mbit/s", p.CompletionS, g/1e6)
}

// writeStripesSVG draws one tree per stripe, each in its own panel of a
// grid: every receiver below the upstream that delivered the most new
// symbols of that stripe, its box giving its time and its goodput on the
// stripe. Box widths and the layout come from the measured labels.
func writeStripesSVG(w io.Writer, r *swarm.Result) error {
	m := newSVGMeasure()
	stripes := max(r.Stripes, 1)
	trees := make([]*stripeTree, stripes)
	for s := range trees {
		trees[s] = buildStripeTree(r, s)
	}

	// One box width for every box of every panel.
	boxW := 0.0
	grow := func(l1, l2 string) {
		boxW = max(boxW, m.width(l1, stripeFont, true), m.width(l2, stripeSmall, false))
	}
	grow(r.Source, "source")
	for _, p := range r.Peers {
		for s := range stripes {
			grow(stripeBoxLines(p, s))
		}
	}
	boxW = math.Ceil(boxW + 2*stripePadX)

	// Panels sit in a grid whose columns are as wide as their widest
	// panel and whose rows are as high as their highest.
	panelW := make([]float64, stripes)
	panelH := make([]float64, stripes)
	for i, t := range trees {
		tw := float64(t.cols)*boxW + float64(t.cols-1)*stripeGapX
		hw := m.width(fmt.Sprintf("stripe %d", t.stripe), stripePanelFont, true) + 12 + m.width(t.note(r.Source), stripeSmall, false)
		panelW[i] = math.Ceil(max(tw, hw) + 2*stripePanelPad)
		panelH[i] = stripeLineH + 6 + float64(t.rows)*(stripeBoxH+stripeGapY) - stripeGapY + 2*stripePanelPad
	}
	grid := func(cols int) (colX, rowY, colW, rowH []float64, w, h float64) {
		rows := (stripes + cols - 1) / cols
		colW = make([]float64, cols)
		rowH = make([]float64, rows)
		for i := range stripes {
			colW[i%cols] = max(colW[i%cols], panelW[i])
			rowH[i/cols] = max(rowH[i/cols], panelH[i])
		}
		for _, cw := range colW {
			colX = append(colX, w)
			w += cw + stripePanelGap
		}
		for _, rh := range rowH {
			rowY = append(rowY, h)
			h += rh + stripePanelGap
		}
		return colX, rowY, colW, rowH, w - stripePanelGap, h - stripePanelGap
	}
	// The number of columns that makes the grid closest to 3:2.
	cols := 1
	best := math.Inf(1)
	for c := 1; c <= stripes; c++ {
		_, _, _, _, gw, gh := grid(c)
		if d := math.Abs(math.Log(gw / gh / 1.5)); d < best {
			best, cols = d, c
		}
	}
	colX, rowY, colW, rowH, gridW, gridH := grid(cols)

	// Header: title, two lines of explanation, a row of swatches.
	title := fmt.Sprintf("%s from %s, %s: all done in %.1f s (bound %.1f s)",
		humanBytes(float64(r.Size)), r.Source, stripesWord(r.Stripes), r.TotalS, r.BoundS)
	explain := []string{
		"One tree per stripe: each receiver sits right of the upstream that sent it the most new symbols of that stripe.",
		"Box: the receiver, its time to the verified file, its goodput on that stripe. Relays of a stripe are outlined in its colour.",
	}
	type swatch struct{ fill, stroke, dash, label string }
	swatches := []swatch{
		{"#dbe9f6", "#333", "", "source"},
		{"#eef7e8", "#333", "", "receiver"},
		{"#fbe0e0", "#333", "", "failed or killed"},
		{"#fff4e0", "#c60", "4 3", "no parent seen, or no path to the source: hung below it"},
	}
	const swW, swH = 22.0, 12.0
	headerW := m.width(title, stripeTitleFont, true)
	for _, e := range explain {
		headerW = max(headerW, m.width(e, stripeSmall, false))
	}
	swRowW := 0.0
	for _, sw := range swatches {
		swRowW += swW + 6 + m.width(sw.label, stripeSmall, false) + 18
	}
	headerW = max(headerW, swRowW)
	headerH := 4 * stripeLineH

	width := math.Ceil(2*stripeMargin + max(gridW, headerW))
	height := math.Ceil(2*stripeMargin + headerH + stripeLineH/2 + gridH)

	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="%s" font-size="%g">`+"\n",
		width, height, width, height, svgFontFamily, stripeFont)
	b.WriteString("<defs>")
	for s := range stripes {
		fmt.Fprintf(&b, `<marker id="arrow%d" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`, s, stripeColor(s))
	}
	b.WriteString(`<marker id="arrowbroken" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#c60"/></marker>`)
	b.WriteString("</defs>\n")
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")

	// Header, clear of the panels.
	y := stripeMargin + stripeTitleFont
	fmt.Fprintf(&b, `<g class="legend"><text x="%g" y="%g" font-size="%g" font-weight="bold">%s</text>`+"\n", stripeMargin, y, stripeTitleFont, esc(title))
	for _, e := range explain {
		y += stripeLineH
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="%g" fill="#444">%s</text>`+"\n", stripeMargin, y, stripeSmall, esc(e))
	}
	y += stripeLineH
	x := stripeMargin
	for _, sw := range swatches {
		dash := ""
		if sw.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, sw.dash)
		}
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" rx="3" fill="%s" stroke="%s"%s/>`, x, y-swH+2, swW, swH, sw.fill, sw.stroke, dash)
		x += swW + 6
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="%g" fill="#444">%s</text>`+"\n", x, y, stripeSmall, esc(sw.label))
		x += m.width(sw.label, stripeSmall, false) + 18
	}
	b.WriteString("</g>\n")

	gridY := stripeMargin + headerH + stripeLineH/2
	for i, t := range trees {
		px := stripeMargin + colX[i%cols]
		py := gridY + rowY[i/cols]
		color := stripeColor(t.stripe)
		fmt.Fprintf(&b, `<g class="stripe" data-stripe="%d">`+"\n", t.stripe)
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" rx="8" fill="#fcfcfc" stroke="#ccc"/>`+"\n", px, py, colW[i%cols], rowH[i/cols])
		hx, hy := px+stripePanelPad, py+stripePanelPad+stripePanelFont
		head := fmt.Sprintf("stripe %d", t.stripe)
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="%g" font-weight="bold" fill="%s">%s</text>`, hx, hy, stripePanelFont, color, esc(head))
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="%g" fill="#555">%s</text>`+"\n", hx+m.width(head, stripePanelFont, true)+12, hy, stripeSmall, esc(t.note(r.Source)))
		ox, oy := px+stripePanelPad, py+stripePanelPad+stripeLineH+6
		bx := func(n string) float64 { return ox + float64(t.col[n])*(boxW+stripeGapX) }
		by := func(n string) float64 { return oy + t.row[n]*(stripeBoxH+stripeGapY) }
		// Arrows first, boxes over them.
		for parent, kids := range t.children {
			for _, k := range kids {
				x1, y1 := bx(parent)+boxW, by(parent)+stripeBoxH/2
				x2, y2 := bx(k), by(k)+stripeBoxH/2
				xm := x1 + stripeGapX/2
				stroke, marker, dash := color, fmt.Sprintf("arrow%d", t.stripe), ""
				if t.broken[k] {
					stroke, marker, dash = "#c60", "arrowbroken", ` stroke-dasharray="4 3"`
				}
				fmt.Fprintf(&b, `<path d="M%.1f,%.1f H%.1f V%.1f H%.1f" fill="none" stroke="%s" stroke-width="1.4"%s marker-end="url(#%s)"/>`+"\n",
					x1, y1, xm, y2, x2-1, stroke, dash, marker)
			}
		}
		box := func(class, n, l1, l2, fill, stroke string, strokeW float64, dash string) {
			x, y := bx(n), by(n)
			if dash != "" {
				dash = fmt.Sprintf(` stroke-dasharray="%s"`, dash)
			}
			fmt.Fprintf(&b, `<g class="%s" data-peer="%s"><rect x="%.1f" y="%.1f" width="%g" height="%g" rx="5" fill="%s" stroke="%s" stroke-width="%g"%s/>`,
				class, esc(n), x, y, boxW, stripeBoxH, fill, stroke, strokeW, dash)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`, x+boxW/2, y+15, esc(l1))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="%g">%s</text></g>`+"\n", x+boxW/2, y+30, stripeSmall, esc(l2))
		}
		box("source", r.Source, r.Source, "source", "#dbe9f6", "#333", 1, "")
		for _, p := range r.Peers {
			l1, l2 := stripeBoxLines(p, t.stripe)
			fill, stroke, strokeW, dash := "#eef7e8", "#333", 1.0, ""
			if !p.OK {
				fill = "#fbe0e0"
			}
			if len(t.children[p.Name]) > 0 {
				stroke, strokeW = color, 2.2
			}
			if t.broken[p.Name] {
				fill, stroke, dash = "#fff4e0", "#c60", "4 3"
			}
			box("peer", p.Name, l1, l2, fill, stroke, strokeW, dash)
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// stripesWord says "1 stripe" or "n stripes".
func stripesWord(n int) string {
	if n == 1 {
		return "1 stripe"
	}
	return fmt.Sprintf("%d stripes", n)
}
