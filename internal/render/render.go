// Package render draws chess boards as SVG: an [8,8] heatmap as coloured squares with a colour bar, the
// pieces of a position, and arrows for moves. It knows positions (internal/board) but nothing of networks
// or lenses: callers hand it 64 numbers, a1 first.
package render

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
)

// Colormap names a colour scale.
type Colormap string

// The colour maps.
const (
	// Diverging is centred at 0: blue for negative, white for 0, red for positive (ColorBrewer RdBu), with
	// the scale symmetric, -m..m for m the largest absolute value. The default: attributions have signs.
	Diverging Colormap = "diverging"
	// Sequential runs from the minimum (dark) to the maximum (light), viridis-like, for one-signed maps.
	Sequential Colormap = "sequential"
)

// Colormaps lists the accepted colour map names.
func Colormaps() []string { return []string{string(Diverging), string(Sequential)} }

// Options say what to draw.
type Options struct {
	// Heat holds 64 values, a1 first (index = rank*8 + file); nil draws a plain board. NaN squares are
	// hatched grey (no value).
	Heat []float32
	// Position gives the pieces; nil draws none.
	Position *board.Position
	// BlackBottom draws the board from black's side: a1 at the top right.
	BlackBottom bool
	// Arrows are drawn from the centre of From to the centre of To, in order (the first drawn thickest).
	Arrows []board.Move
	// Title is printed above the board ("" for none).
	Title    string
	Colormap Colormap // "" means Diverging
	// SquareSize is a square's side in SVG units (0 means 60).
	SquareSize int
}

// rgb is a colour.
type rgb struct{ r, g, b float64 }

func (c rgb) hex() string {
	cl := func(v float64) int { return int(math.Round(math.Max(0, math.Min(255, v)))) }
	return fmt.Sprintf("#%02x%02x%02x", cl(c.r), cl(c.g), cl(c.b))
}

// ColorBrewer RdBu (11 classes, reversed: negative blue, positive red) and viridis, sampled evenly.
var (
	rdbu = []rgb{{5, 48, 97}, {33, 102, 172}, {67, 147, 195}, {146, 197, 222}, {209, 229, 240}, {247, 247, 247},
		{253, 219, 199}, {244, 165, 130}, {214, 96, 77}, {178, 24, 43}, {103, 0, 31}}
	viridis = []rgb{{68, 1, 84}, {72, 40, 120}, {62, 74, 137}, {49, 104, 142}, {38, 130, 142}, {31, 158, 137},
		{53, 183, 121}, {109, 205, 89}, {180, 222, 44}, {253, 231, 37}}
)

// ramp interpolates stops at t in [0,1].
func ramp(stops []rgb, t float64) rgb {
	t = math.Max(0, math.Min(1, t))
	x := t * float64(len(stops)-1)
	i := int(math.Floor(x))
	if i >= len(stops)-1 {
		return stops[len(stops)-1]
	}
	f := x - float64(i)
	a, b := stops[i], stops[i+1]
	return rgb{a.r + f*(b.r-a.r), a.g + f*(b.g-a.g), a.b + f*(b.b-a.b)}
}

// Scale maps values to colours: the range the colour bar shows, and the data's own extremes.
type Scale struct {
	Map              Colormap
	Lo, Hi           float64 // the colour bar's ends
	DataMin, DataMax float64 // NaN when there is no finite value
}

// NewScale fits a colour map to values (NaNs ignored). A diverging scale is symmetric about 0; a flat or
// empty map gets a unit range so that colours stay defined.
func NewScale(m Colormap, values []float32) Scale {
	s := Scale{Map: m, DataMin: math.NaN(), DataMax: math.NaN()}
	if s.Map == "" {
		s.Map = Diverging
	}
	for _, v := range values {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		if math.IsNaN(s.DataMin) || f < s.DataMin {
			s.DataMin = f
		}
		if math.IsNaN(s.DataMax) || f > s.DataMax {
			s.DataMax = f
		}
	}
	switch {
	case math.IsNaN(s.DataMin):
		s.Lo, s.Hi = -1, 1
		if s.Map == Sequential {
			s.Lo = 0
		}
	case s.Map == Diverging:
		m := math.Max(math.Abs(s.DataMin), math.Abs(s.DataMax))
		if m == 0 {
			m = 1
		}
		s.Lo, s.Hi = -m, m
	default:
		s.Lo, s.Hi = s.DataMin, s.DataMax
		if s.Lo == s.Hi {
			s.Lo, s.Hi = s.Lo-0.5, s.Hi+0.5
		}
	}
	return s
}

// Color returns v's colour as #rrggbb.
func (s Scale) Color(v float64) string { return s.rgb(v).hex() }

func (s Scale) rgb(v float64) rgb {
	t := (v - s.Lo) / (s.Hi - s.Lo)
	if s.Map == Sequential {
		return ramp(viridis, t)
	}
	return ramp(rdbu, t)
}

func (s Scale) stops() []rgb {
	if s.Map == Sequential {
		return viridis
	}
	return rdbu
}

// Glyphs of the pieces; both colours use the filled glyphs, told apart by fill, so they read the same on
// any square colour. U+FE0E asks for text rather than emoji presentation of the pawn.
var glyphs = map[board.PieceType]string{board.King: "\u265a", board.Queen: "\u265b", board.Rook: "\u265c",
	board.Bishop: "\u265d", board.Knight: "\u265e", board.Pawn: "\u265f\ufe0e"}

// SVG writes the board picture.
func SVG(w io.Writer, o Options) error {
	if o.Heat != nil && len(o.Heat) != 64 {
		return fmt.Errorf("render: heatmap has %d values, want 64 (an [8,8] map, a1 first)", len(o.Heat))
	}
	switch o.Colormap {
	case "", Diverging, Sequential:
	default:
		return fmt.Errorf("render: colour map %q: want %s", o.Colormap, strings.Join(Colormaps(), " or "))
	}
	for _, a := range o.Arrows {
		if a.From < 0 || a.From > 63 || a.To < 0 || a.To > 63 {
			return errors.New("render: arrow with a square off the board")
		}
	}
	S := o.SquareSize
	if S <= 0 {
		S = 60
	}
	const margin = 22
	top := margin
	if o.Title != "" {
		top += 26
	}
	bx, by := margin, top // board's top-left corner
	bw := 8 * S
	barX, barW := bx+bw+24, 16
	width := barX + barW + 80
	if o.Heat == nil {
		width = bx + bw + margin
	}
	height := by + bw + margin + 4

	bw2 := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw2, format, args...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Noto Sans Symbols2, Segoe UI Symbol, sans-serif">`+"\n", width, height, width, height)
	p(`<defs>` + "\n")
	p(`<pattern id="nan" patternUnits="userSpaceOnUse" width="8" height="8"><rect width="8" height="8" fill="#c8c8c8"/><path d="M0,8 L8,0" stroke="#888" stroke-width="1.5"/></pattern>` + "\n")
	p(`<marker id="arrowhead" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="3.2" markerHeight="3.2" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#15781b"/></marker>` + "\n")
	var sc Scale
	if o.Heat != nil {
		sc = NewScale(o.Colormap, o.Heat)
		p(`<linearGradient id="colorbar" x1="0" y1="1" x2="0" y2="0">` + "\n")
		stops := sc.stops()
		for i, c := range stops {
			p(`<stop offset="%s" stop-color="%s"/>`+"\n", num(float64(i)/float64(len(stops)-1)), c.hex())
		}
		p(`</linearGradient>` + "\n")
	}
	p(`</defs>` + "\n")
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	if o.Title != "" {
		p(`<text class="title" x="%d" y="%d" font-size="16">%s</text>`+"\n", bx, top-10, escape(o.Title))
	}

	// at returns the top-left corner of a square's cell.
	at := func(sq int) (int, int) {
		file, rank := sq%8, sq/8
		col, row := file, 7-rank
		if o.BlackBottom {
			col, row = 7-file, rank
		}
		return bx + col*S, by + row*S
	}
	p(`<g class="board">` + "\n")
	for sq := range 64 {
		x, y := at(sq)
		dark := (sq/8+sq%8)%2 == 0 // a1 is dark
		fill := "#f0d9b5"
		if dark {
			fill = "#b58863"
		}
		title := ""
		if o.Heat != nil {
			v := float64(o.Heat[sq])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				fill = "url(#nan)"
				title = "no value"
			} else {
				fill = sc.Color(v)
				title = strconv.FormatFloat(v, 'g', 4, 32)
			}
		}
		name := board.Square(sq).String()
		p(`<rect class="square" data-square="%s" x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s</title></rect>`+"\n", name, x, y, S, S, fill, name, escape(title))
		if o.Heat != nil && dark {
			// Keep the chequer visible under the heat colours.
			p(`<rect class="shade" x="%d" y="%d" width="%d" height="%d" fill="#000" fill-opacity="0.10" pointer-events="none"/>`+"\n", x, y, S, S)
		}
	}
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333" stroke-width="1"/>`+"\n", bx, by, bw, bw)
	p(`</g>` + "\n")

	// Coordinates: files under the board, ranks on its left.
	p(`<g class="coords" font-size="%d" fill="#333" text-anchor="middle">`+"\n", max(10, S/5))
	for i := range 8 {
		file, rank := i, 7-i
		if o.BlackBottom {
			file, rank = 7-i, i
		}
		p(`<text x="%d" y="%d">%c</text>`+"\n", bx+i*S+S/2, by+bw+margin-6, 'a'+file)
		p(`<text x="%d" y="%d" dominant-baseline="central">%d</text>`+"\n", bx-margin/2, by+i*S+S/2, rank+1)
	}
	p(`</g>` + "\n")

	if o.Position != nil {
		p(`<g class="pieces" font-size="%d" text-anchor="middle">`+"\n", S*4/5)
		for sq := range 64 {
			c, pt, ok := o.Position.PieceAt(board.Square(sq))
			if !ok {
				continue
			}
			x, y := at(sq)
			style := `fill="#111" stroke="#eee" stroke-width="0.8"`
			if c == board.White {
				style = `fill="#fff" stroke="#111" stroke-width="1.6"`
			}
			p(`<text class="piece" data-square="%s" x="%d" y="%d" dominant-baseline="central" %s paint-order="stroke">%s</text>`+"\n",
				board.Square(sq), x+S/2, y+S/2+S/20, style, glyphs[pt])
		}
		p(`</g>` + "\n")
	}

	if len(o.Arrows) > 0 {
		p(`<g class="arrows" stroke="#15781b" stroke-linecap="round" fill="none">` + "\n")
		for i, a := range o.Arrows {
			x1, y1 := at(int(a.From))
			x2, y2 := at(int(a.To))
			cx1, cy1, cx2, cy2 := float64(x1+S/2), float64(y1+S/2), float64(x2+S/2), float64(y2+S/2)
			// Stop short of the centre so the head sits on the target square.
			dx, dy := cx2-cx1, cy2-cy1
			l := math.Hypot(dx, dy)
			if l == 0 {
				continue
			}
			sw := math.Max(3, float64(S)/6-float64(i)*float64(S)/40)
			cut := sw * 1.6
			ex, ey := cx2-dx/l*cut, cy2-dy/l*cut
			op := math.Max(0.45, 0.85-0.12*float64(i))
			p(`<line class="arrow" data-move="%s" x1="%s" y1="%s" x2="%s" y2="%s" stroke-width="%s" stroke-opacity="%s" marker-end="url(#arrowhead)"/>`+"\n",
				a.UCI(), num(cx1), num(cy1), num(ex), num(ey), num(sw), num(op))
		}
		p(`</g>` + "\n")
	}

	if o.Heat != nil {
		p(`<g class="colorbar" font-size="12" fill="#333">` + "\n")
		p(`<rect class="colorbar-bar" x="%d" y="%d" width="%d" height="%d" fill="url(#colorbar)" stroke="#333" stroke-width="0.5"/>`+"\n", barX, by, barW, bw)
		lx := barX + barW + 5
		p(`<text class="colorbar-label" data-value="%s" x="%d" y="%d" dominant-baseline="hanging">%s</text>`+"\n", num(sc.Hi), lx, by, label(sc.Hi))
		if sc.Map == Diverging {
			p(`<text class="colorbar-label" data-value="0" x="%d" y="%d" dominant-baseline="central">0</text>`+"\n", lx, by+bw/2)
		}
		p(`<text class="colorbar-label" data-value="%s" x="%d" y="%d">%s</text>`+"\n", num(sc.Lo), lx, by+bw, label(sc.Lo))
		if !math.IsNaN(sc.DataMin) {
			p(`<text class="colorbar-range" x="%d" y="%d" font-size="10">min %s</text>`+"\n", barX-4, by+bw+margin-6, label(sc.DataMin))
			p(`<text class="colorbar-range" x="%d" y="%d" font-size="10">max %s</text>`+"\n", barX-4, by-4, label(sc.DataMax))
		}
		p(`</g>` + "\n")
	}
	p(`</svg>` + "\n")
	if err := bw2.Flush(); err != nil {
		return fmt.Errorf("render: write svg: %w", err)
	}
	return nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func label(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder never fail
	return b.String()
}
