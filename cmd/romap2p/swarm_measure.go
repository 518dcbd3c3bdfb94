package main

import (
	stdfont "golang.org/x/image/font"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/font/liberation"
)

// svgFontFamily is the font list of the SVG pictures: metric-compatible
// faces first, then the wider DejaVu Sans that many Linux systems fall back
// to.
const svgFontFamily = "Liberation Sans, Arial, Helvetica, DejaVu Sans, sans-serif"

// svgFontSlack widens every measured text: DejaVu Sans, the widest usual
// fallback, runs up to about 1.25 times as wide as Liberation Sans (bold,
// narrow letters such as "i" and "l").
const svgFontSlack = 1.25

// svgMeasure estimates how wide a text is drawn in the SVG pictures, from
// the metrics of Liberation Sans (the faces gonum/plot embeds), with room
// for wider fallback fonts.
type svgMeasure struct {
	regular, bold font.Face
}

// measureSize is the size at which text is measured; widths scale linearly.
const measureSize = 100

func newSVGMeasure() *svgMeasure {
	c := font.NewCache(liberation.Collection())
	return &svgMeasure{
		regular: c.Lookup(font.Font{Typeface: "Liberation", Variant: "Sans"}, measureSize),
		bold:    c.Lookup(font.Font{Typeface: "Liberation", Variant: "Sans", Weight: stdfont.WeightBold}, measureSize),
	}
}

// width returns the width of s at the given font size in SVG user units,
// fallback slack included.
func (m *svgMeasure) width(s string, size float64, bold bool) float64 {
	f := m.regular
	if bold {
		f = m.bold
	}
	return svgFontSlack * float64(f.Width(s)) * size / measureSize
}
