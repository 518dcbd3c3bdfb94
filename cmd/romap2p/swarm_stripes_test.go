package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/romap2p/romap2p/internal/swarm"
)

// xmlNode is any element of a parsed SVG.
type xmlNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []xmlNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n *xmlNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *xmlNode) num(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

// walk calls f on n and every element below it, depth first.
func (n *xmlNode) walk(f func(*xmlNode)) {
	f(n)
	for i := range n.Nodes {
		n.Nodes[i].walk(f)
	}
}

// parseSVG parses a whole SVG document.
func parseSVG(t *testing.T, b []byte) *xmlNode {
	t.Helper()
	var doc xmlNode
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if doc.XMLName.Local != "svg" {
		t.Fatalf("root element %q, want svg", doc.XMLName.Local)
	}
	return &doc
}

type svgRect struct {
	what       string
	x, y, w, h float64
}

func (a svgRect) overlaps(b svgRect) bool {
	return a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h
}

// stripesTestResult is a swarm of five receivers over three stripes:
// stripe 0 a chain, stripe 1 a star with a receiver of a long name as the
// relay, stripe 2 with a cycle and a receiver without a parent.
func stripesTestResult() *swarm.Result {
	long := "a-rather-long-host-name.berkeley.example.org"
	r := &swarm.Result{Source: "S", Size: 16 << 20, Stripes: 3, TotalS: 3.5, BoundS: 1.3}
	parents := map[string][]string{
		"A":  {"S", "S", "B"},
		"B":  {"A", "S", "A"},
		"C":  {"B", long, ""},
		"Dx": {"C", long, "A"},
		long: {"Dx", "S", "nobody"},
	}
	for i, n := range []string{"A", "B", "C", "Dx", long} {
		p := swarm.PeerResult{
			Name: n, OK: true, CompletionS: 2 + float64(i)/3, GoodputBps: 60e6,
			StripeParents: parents[n], StripeGoodputBps: []float64{20e6, 30e6, 10e6},
		}
		if n == "C" {
			p.OK, p.Err = false, "gave up"
		}
		r.Peers = append(r.Peers, p)
	}
	return r
}

func TestBuildStripeTree(t *testing.T) {
	r := stripesTestResult()
	long := r.Peers[4].Name
	for s, want := range []struct {
		depth  int
		broken []string
	}{
		{5, nil},
		{2, nil},
		{2, []string{"A", "C", long}}, // A-B cycle cut at A; C has no parent; long's is no member
	} {
		tr := buildStripeTree(r, s)
		var broken []string
		for n := range tr.broken {
			broken = append(broken, n)
		}
		slices.Sort(broken)
		if tr.depth() != want.depth || !slices.Equal(broken, want.broken) {
			t.Errorf("stripe %d: depth %d broken %v, want %d %v", s, tr.depth(), broken, want.depth, want.broken)
		}
		seen := map[string]int{}
		for _, kids := range tr.children {
			for _, k := range kids {
				seen[k]++
			}
		}
		for _, p := range r.Peers {
			if seen[p.Name] != 1 {
				t.Errorf("stripe %d: %s is a child %d times", s, p.Name, seen[p.Name])
			}
		}
	}
}

// TestTreeStripesSVG checks the per-stripe picture: well-formed XML, one
// panel per stripe, every receiver once in each and the source once, and
// nothing overlapping: boxes, panels and the legend keep clear of each
// other and every box is wide enough for its measured labels.
func TestTreeStripesSVG(t *testing.T) {
	r := stripesTestResult()
	var buf bytes.Buffer
	if err := writeStripesSVG(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	docW, docH := doc.num(t, "width"), doc.num(t, "height")
	m := newSVGMeasure()

	var panels, legend []svgRect
	var stripes []int
	doc.walk(func(g *xmlNode) {
		if g.XMLName.Local != "g" {
			return
		}
		switch g.attr("class") {
		case "legend":
			for _, n := range g.Nodes {
				if n.XMLName.Local == "text" {
					size := 11.0
					if v := n.attr("font-size"); v != "" {
						size = n.num(t, "font-size")
					}
					w := m.width(n.Text, size, n.attr("font-weight") == "bold")
					legend = append(legend, svgRect{"legend " + n.Text, n.num(t, "x"), n.num(t, "y") - size, w, size * 1.3})
				}
			}
		case "stripe":
			s, err := strconv.Atoi(g.attr("data-stripe"))
			if err != nil {
				t.Fatalf("stripe group %q", g.attr("data-stripe"))
			}
			stripes = append(stripes, s)
			var frame *xmlNode
			var boxes []svgRect
			peers := map[string]int{}
			sources := 0
			for i := range g.Nodes {
				n := &g.Nodes[i]
				if n.XMLName.Local == "rect" && frame == nil {
					frame = n
				}
				if n.XMLName.Local != "g" {
					continue
				}
				name := n.attr("data-peer")
				switch n.attr("class") {
				case "peer":
					peers[name]++
				case "source":
					sources++
					if name != r.Source {
						t.Errorf("stripe %d: source box names %q", s, name)
					}
				default:
					continue
				}
				rect := n.Nodes[0]
				box := svgRect{fmt.Sprintf("stripe %d box %s", s, name), rect.num(t, "x"), rect.num(t, "y"), rect.num(t, "width"), rect.num(t, "height")}
				for _, text := range n.Nodes[1:] {
					size := 12.0
					if v := text.attr("font-size"); v != "" {
						size = text.num(t, "font-size")
					}
					if need := m.width(text.Text, size, text.attr("font-weight") == "bold"); need > box.w {
						t.Errorf("%s: %q needs %.0f, box is %.0f wide", box.what, text.Text, need, box.w)
					}
				}
				boxes = append(boxes, box)
			}
			if frame == nil {
				t.Fatalf("stripe %d has no frame", s)
			}
			panel := svgRect{fmt.Sprintf("panel %d", s), frame.num(t, "x"), frame.num(t, "y"), frame.num(t, "width"), frame.num(t, "height")}
			panels = append(panels, panel)
			if sources != 1 {
				t.Errorf("stripe %d: %d source boxes", s, sources)
			}
			if len(peers) != len(r.Peers) {
				t.Errorf("stripe %d: %d receivers, want %d", s, len(peers), len(r.Peers))
			}
			for _, p := range r.Peers {
				if peers[p.Name] != 1 {
					t.Errorf("stripe %d: %s appears %d times", s, p.Name, peers[p.Name])
				}
			}
			for i, a := range boxes {
				if a.x < panel.x || a.y < panel.y || a.x+a.w > panel.x+panel.w || a.y+a.h > panel.y+panel.h {
					t.Errorf("%s sticks out of its panel", a.what)
				}
				for _, b := range boxes[i+1:] {
					if a.overlaps(b) {
						t.Errorf("%s overlaps %s", a.what, b.what)
					}
				}
			}
		}
	})
	if !slices.Equal(stripes, []int{0, 1, 2}) {
		t.Errorf("stripe panels %v, want 0 1 2", stripes)
	}
	if len(legend) < 3 {
		t.Errorf("legend has %d lines", len(legend))
	}
	all := append(slices.Clone(panels), legend...)
	for i, a := range all {
		if a.x < 0 || a.y < 0 || a.x+a.w > docW || a.y+a.h > docH {
			t.Errorf("%s (%.0f,%.0f %.0fx%.0f) outside the %.0fx%.0f picture", a.what, a.x, a.y, a.w, a.h, docW, docH)
		}
		for _, b := range all[i+1:] {
			if a.overlaps(b) && !(strings.HasPrefix(a.what, "legend") && strings.HasPrefix(b.what, "legend")) {
				t.Errorf("%s overlaps %s", a.what, b.what)
			}
		}
	}
}

// TestTreeSVGLongNames checks that the overview's boxes grow with long
// names and its title fits.
func TestTreeSVGLongNames(t *testing.T) {
	r := stripesTestResult()
	for i := range r.Peers {
		r.Peers[i].Parent = r.Peers[i].StripeParents[1]
	}
	var buf bytes.Buffer
	if err := writeTreeSVG(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	m := newSVGMeasure()
	docW := doc.num(t, "width")
	var boxes []svgRect
	doc.walk(func(n *xmlNode) {
		switch n.XMLName.Local {
		case "rect":
			if n.attr("rx") != "" {
				boxes = append(boxes, svgRect{"box", n.num(t, "x"), n.num(t, "y"), n.num(t, "width"), n.num(t, "height")})
			}
		case "text":
			if n.attr("font-weight") == "bold" {
				size := 12.0
				if n.attr("font-size") != "" {
					size = n.num(t, "font-size")
				}
				w := m.width(n.Text, size, true)
				if n.attr("text-anchor") == "middle" {
					if len(boxes) == 0 || w > boxes[len(boxes)-1].w {
						t.Errorf("name %q (%.0f wide) does not fit its box", n.Text, w)
					}
				} else if n.num(t, "x")+w > docW {
					t.Errorf("title %q runs past the picture's width %.0f", n.Text, docW)
				}
			}
		}
	})
	if len(boxes) != len(r.Peers)+1 {
		t.Fatalf("%d boxes, want %d", len(boxes), len(r.Peers)+1)
	}
	for i, a := range boxes {
		for _, b := range boxes[i+1:] {
			if a.overlaps(b) {
				t.Errorf("boxes %+v and %+v overlap", a, b)
			}
		}
	}
}

// TestTreeStripesDOT checks the DOT form of the per-stripe trees: a cluster per
// stripe, every receiver once in each, the edges of the stripe's parents.
func TestTreeStripesDOT(t *testing.T) {
	r := stripesTestResult()
	var buf bytes.Buffer
	if err := writeSwarmDOT(&buf, r); err != nil {
		t.Fatal(err)
	}
	dot := buf.String()
	if !strings.HasPrefix(dot, "digraph") || strings.Count(dot, "subgraph cluster_stripe") != 3 {
		t.Fatalf("tree.dot:\n%s", dot)
	}
	for s := range 3 {
		for _, p := range r.Peers {
			if n := strings.Count(dot, fmt.Sprintf("\t\t\"%d/%s\" [label=", s, p.Name)); n != 1 {
				t.Errorf("stripe %d: %s declared %d times", s, p.Name, n)
			}
		}
	}
	for _, want := range []string{`"0/A" -> "0/B" [color=`, `"1/S" -> "1/A" [color=`, `"2/S" -> "2/C" [style=dashed`} {
		if !strings.Contains(dot, want) {
			t.Errorf("tree.dot lacks %s", want)
		}
	}
}
