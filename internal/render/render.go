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

// Options say what to draw on one board.
type Options struct {
	// Heat holds 64 values, a1 first (index = rank*8 + file); nil draws a plain board. NaN squares are
	// hatched grey (no value).
	Heat []float32
	// NoValue marks squares that have no value although Heat holds a number there (occlusion's king
	// squares, never edited, hold 0): they are hatched like NaN rather than coloured as "no effect".
	NoValue []bool
	// Position gives the pieces; nil draws none.
	Position *board.Position
	// BlackBottom draws the board from black's side: a1 at the top right.
	BlackBottom bool
	// Arrows are drawn from the centre of From to the centre of To, in order (the first drawn thickest).
	Arrows []board.Move
	// Title is printed above the picture ("" for none); Caption lines under it say what the picture is
	// (lens, target, model, FEN). Both are shortened in the middle to the picture's width.
	Title    string
	Caption  []string
	Colormap Colormap // "" means Diverging
	// SquareSize is a square's side in SVG units (0 means 60).
	SquareSize int
	// Label names one board of a grid (a module, a channel), printed above it.
	Label string
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

// Glyphs of the pieces; both colours use the filled glyphs, told apart by fill and a contrasting outline, so
// they read the same on any square colour. U+FE0E asks for text rather than emoji presentation of the pawn.
var glyphs = map[board.PieceType]string{board.King: "\u265a", board.Queen: "\u265b", board.Rook: "\u265c",
	board.Bishop: "\u265d", board.Knight: "\u265e", board.Pawn: "\u265f\ufe0e"}

// TextWidthEm is the width the layout reserves per character of text, in ems: above the average advance
// of the sans-serif fonts asked for (DejaVu Sans digits are 0.64 em, capitals up to 0.8), so that labels laid out apart stay
// apart in any of them.
const TextWidthEm = 0.75

// GridOptions say how to lay several boards out in one picture.
type GridOptions struct {
	Title    string
	Caption  []string
	Colormap Colormap // "" means Diverging; one scale for every board, so that colours compare
	// SquareSize is a square's side (0 means 60 for one board, 36 for several).
	SquareSize int
	// Columns is the number of boards per row (0 means up to 4, or 8 for more than 16 boards).
	Columns int
}

// SVG writes the picture of one board.
func SVG(w io.Writer, o Options) error {
	return Grid(w, GridOptions{Title: o.Title, Caption: o.Caption, Colormap: o.Colormap, SquareSize: o.SquareSize}, []Options{o})
}

// layout holds the positions of a picture's parts, computed once so that they cannot overlap.
type layout struct {
	S, M             int // square side, outer margin
	coordFS, labelFS int // font sizes: coordinates, board labels
	rankW, fileH     int // the rank-number column left of a board, the file-letter row under it
	labelH           int // the board label row above a board (0 without labels)
	panelW, panelH   int // one board with its labels and the gap to the next
	gridTop          int
	cols, rows       int
	barX, barW       int // colour bar (barW 0: none)
	width, height    int
}

const (
	titleFS   = 16
	captionFS = 12
	barFS     = 12
	legendFS  = 11
)

func newLayout(g GridOptions, n int, heat, labels, noValue bool) layout {
	l := layout{S: g.SquareSize, M: 12}
	if l.S <= 0 {
		l.S = 60
		if n > 1 {
			l.S = 36
		}
	}
	l.coordFS = max(10, l.S/5)
	l.labelFS = 13
	l.rankW = l.coordFS + 8
	l.fileH = l.coordFS + 8
	if labels {
		l.labelH = l.labelFS + 6
	}
	l.cols = g.Columns
	if l.cols <= 0 {
		l.cols = min(n, 4)
		if n > 16 {
			l.cols = 8 // a block's 64 channels in 8 rows of 8 rather than 16 of 4
		}
	}
	l.cols = max(1, min(l.cols, n))
	l.rows = (n + l.cols - 1) / l.cols
	l.panelW = l.rankW + 8*l.S + 14
	l.panelH = l.labelH + 8*l.S + l.fileH + 8
	top := l.M
	if g.Title != "" {
		top += titleFS + 6
	}
	top += len(g.Caption) * (captionFS + 4)
	l.gridTop = top + 6
	l.width = l.M + l.cols*l.panelW + l.M
	if heat {
		l.barX, l.barW = l.M+l.cols*l.panelW, 16
		// The labels right of the bar: up to 9 characters (-7.78e+06).
		l.width = l.barX + l.barW + 6 + int(math.Ceil(9*TextWidthEm*barFS)) + l.M
	}
	l.height = l.gridTop + l.rows*l.panelH + l.M
	if noValue {
		l.height = max(l.height, l.legendY()+legendFS+l.M)
	}
	return l
}

// board returns the top-left corner of board i's squares.
func (l layout) board(i int) (int, int) {
	c, r := i%l.cols, i/l.cols
	return l.M + c*l.panelW + l.rankW, l.gridTop + r*l.panelH + l.labelH
}

// legendY is the top of the no-value legend, under the colour bar.
func (l layout) legendY() int { return l.gridTop + l.labelH + 8*l.S + 10 }

// fit shortens s in the middle to what fits width units at font size fs.
func fit(s string, width, fs int) string {
	n := int(float64(width) / (TextWidthEm * float64(fs)))
	r := []rune(s)
	if len(r) <= n || n < 5 {
		return s
	}
	head := (n - 1) / 2
	return string(r[:head]) + "…" + string(r[len(r)-(n-1-head):])
}

// Grid writes several boards in one picture, in rows of g.Columns, with one title, caption and colour bar.
func Grid(w io.Writer, g GridOptions, boards []Options) error {
	if len(boards) == 0 {
		return errors.New("render: no board to draw")
	}
	switch g.Colormap {
	case "", Diverging, Sequential:
	default:
		return fmt.Errorf("render: colour map %q: want %s", g.Colormap, strings.Join(Colormaps(), " or "))
	}
	var all []float32
	heat, labels, noValue := false, false, false
	for _, o := range boards {
		if o.Heat != nil && len(o.Heat) != 64 {
			return fmt.Errorf("render: heatmap has %d values, want 64 (an [8,8] map, a1 first)", len(o.Heat))
		}
		if o.NoValue != nil && len(o.NoValue) != 64 {
			return fmt.Errorf("render: no-value mask has %d squares, want 64", len(o.NoValue))
		}
		for _, a := range o.Arrows {
			if a.From < 0 || a.From > 63 || a.To < 0 || a.To > 63 {
				return errors.New("render: arrow with a square off the board")
			}
		}
		if o.Heat != nil {
			heat = true
			for sq, v := range o.Heat {
				if o.NoValue != nil && o.NoValue[sq] {
					noValue = true
					continue
				}
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					noValue = true
				}
				all = append(all, v)
			}
		}
		labels = labels || o.Label != ""
	}
	l := newLayout(g, len(boards), heat, labels, noValue)
	var sc Scale
	if heat {
		sc = NewScale(g.Colormap, all)
	}

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Noto Sans Symbols2, Segoe UI Symbol, sans-serif">`+"\n", l.width, l.height, l.width, l.height)
	p(`<defs>` + "\n")
	p(`<pattern id="nan" patternUnits="userSpaceOnUse" width="8" height="8"><rect width="8" height="8" fill="#d0d0d0"/><path d="M0,8 L8,0 M-2,2 L2,-2 M6,10 L10,6" stroke="#707070" stroke-width="1.5"/></pattern>` + "\n")
	p(`<marker id="arrowhead" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="3.2" markerHeight="3.2" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#15781b"/></marker>` + "\n")
	if heat {
		p(`<linearGradient id="colorbar" x1="0" y1="1" x2="0" y2="0">` + "\n")
		stops := sc.stops()
		for i, c := range stops {
			p(`<stop offset="%s" stop-color="%s"/>`+"\n", num(float64(i)/float64(len(stops)-1)), c.hex())
		}
		p(`</linearGradient>` + "\n")
	}
	p(`</defs>` + "\n")
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	// Alphabetic baselines throughout: a line of font size fs at baseline y takes y-0.8fs .. y+0.2fs.
	y := l.M
	inner := l.width - 2*l.M
	if g.Title != "" {
		p(`<text class="title" x="%d" y="%s" font-size="%d" font-weight="bold">%s</text>`+"\n", l.M, num(float64(y)+0.8*titleFS), titleFS, escape(fit(g.Title, inner, titleFS)))
		y += titleFS + 6
	}
	for _, c := range g.Caption {
		p(`<text class="caption" x="%d" y="%s" font-size="%d" fill="#333">%s</text>`+"\n", l.M, num(float64(y)+0.8*captionFS), captionFS, escape(fit(c, inner, captionFS)))
		y += captionFS + 4
	}
	for i, o := range boards {
		bx, by := l.board(i)
		drawBoard(p, l, o, sc, bx, by)
	}
	if heat {
		by := l.gridTop + l.labelH
		bh := 8 * l.S
		p(`<g class="colorbar" font-size="%d" fill="#333">`+"\n", barFS)
		p(`<rect class="colorbar-bar" x="%d" y="%d" width="%d" height="%d" fill="url(#colorbar)" stroke="#333" stroke-width="0.5"/>`+"\n", l.barX, by, l.barW, bh)
		lx := l.barX + l.barW + 6
		p(`<text class="colorbar-label" data-value="%s" x="%d" y="%s">%s</text>`+"\n", num(sc.Hi), lx, num(float64(by)+0.8*barFS), label(sc.Hi))
		if sc.Map == Diverging {
			p(`<text class="colorbar-label" data-value="0" x="%d" y="%s">0</text>`+"\n", lx, num(float64(by+bh/2)+0.3*barFS))
		}
		p(`<text class="colorbar-label" data-value="%s" x="%d" y="%s">%s</text>`+"\n", num(sc.Lo), lx, num(float64(by+bh)-0.2*barFS), label(sc.Lo))
		p(`</g>` + "\n")
		if noValue {
			ly := l.legendY()
			p(`<g class="legend"><rect class="legend-swatch" x="%d" y="%d" width="%d" height="%d" fill="url(#nan)" stroke="#333" stroke-width="0.5"/>`, l.barX, ly, legendFS, legendFS)
			p(`<text class="legend-label" x="%d" y="%s" font-size="%d" fill="#333">no value</text></g>`+"\n", l.barX+legendFS+4, num(float64(ly)+0.8*legendFS), legendFS)
		}
	}
	p(`</svg>` + "\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render: write svg: %w", err)
	}
	return nil
}

// drawBoard draws one board with its top-left square corner at (bx, by).
func drawBoard(p func(string, ...any), l layout, o Options, sc Scale, bx, by int) {
	S := l.S
	bw := 8 * S
	// at returns the top-left corner of a square's cell.
	at := func(sq int) (int, int) {
		file, rank := sq%8, sq/8
		col, row := file, 7-rank
		if o.BlackBottom {
			col, row = 7-file, rank
		}
		return bx + col*S, by + row*S
	}
	p(`<g class="board-panel">` + "\n")
	if o.Label != "" {
		p(`<text class="board-label" x="%d" y="%s" font-size="%d" fill="#222">%s</text>`+"\n", bx, num(float64(by-l.labelH)+0.8*float64(l.labelFS)), l.labelFS, escape(fit(o.Label, bw, l.labelFS)))
	}
	p(`<g class="board">` + "\n")
	for sq := range 64 {
		x, y := at(sq)
		dark := (sq/8+sq%8)%2 == 0 // a1 is dark
		fill := "#f0d9b5"
		if dark {
			fill = "#b58863"
		}
		title, extra := "", ""
		if o.Heat != nil {
			v := float64(o.Heat[sq])
			if math.IsNaN(v) || math.IsInf(v, 0) || (o.NoValue != nil && o.NoValue[sq]) {
				fill, title, extra = "url(#nan)", "no value", ` data-novalue="true"`
			} else {
				fill = sc.Color(v)
				title = strconv.FormatFloat(v, 'g', 4, 32)
			}
		}
		name := board.Square(sq).String()
		p(`<rect class="square" data-square="%s"%s x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s</title></rect>`+"\n", name, extra, x, y, S, S, fill, name, escape(title))
		if o.Heat != nil && dark && extra == "" {
			// Keep the chequer visible under the heat colours.
			p(`<rect class="shade" x="%d" y="%d" width="%d" height="%d" fill="#000" fill-opacity="0.10" pointer-events="none"/>`+"\n", x, y, S, S)
		}
	}
	p(`<rect class="frame" x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333" stroke-width="1"/>`+"\n", bx, by, bw, bw)
	p(`</g>` + "\n")

	// Coordinates: files under the board, ranks on its left, centred in their cells.
	fs := float64(l.coordFS)
	p(`<g class="coords" font-size="%d" fill="#333" text-anchor="middle">`+"\n", l.coordFS)
	for i := range 8 {
		file, rank := i, 7-i
		if o.BlackBottom {
			file, rank = 7-i, i
		}
		p(`<text class="coord" x="%d" y="%s">%c</text>`+"\n", bx+i*S+S/2, num(float64(by+bw+l.fileH/2)+0.3*fs), 'a'+file)
		p(`<text class="coord" x="%d" y="%s">%d</text>`+"\n", bx-l.rankW/2, num(float64(by+i*S+S/2)+0.3*fs), rank+1)
	}
	p(`</g>` + "\n")

	if o.Position != nil {
		// Glyphs of 0.72 of a square, centred (baseline 0.3 em below the centre): with the 1-em line box they
		// stay inside their square, rank 8 inside the frame.
		pfs := 0.72 * float64(S)
		sw := math.Max(1.2, float64(S)/24)
		p(`<g class="pieces" font-size="%s" text-anchor="middle" stroke-linejoin="round" paint-order="stroke">`+"\n", num(pfs))
		for sq := range 64 {
			c, pt, ok := o.Position.PieceAt(board.Square(sq))
			if !ok {
				continue
			}
			x, y := at(sq)
			// An outline of the other colour keeps both colours legible on light, dark and saturated squares.
			style := fmt.Sprintf(`fill="#000" stroke="#fff" stroke-width="%s"`, num(sw))
			if c == board.White {
				style = fmt.Sprintf(`fill="#fff" stroke="#000" stroke-width="%s"`, num(sw))
			}
			p(`<text class="piece" data-square="%s" x="%d" y="%s" %s>%s</text>`+"\n",
				board.Square(sq), x+S/2, num(float64(y)+float64(S)/2+0.3*pfs), style, glyphs[pt])
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
			d := math.Hypot(dx, dy)
			if d == 0 {
				continue
			}
			sw := math.Max(3, float64(S)/6-float64(i)*float64(S)/40)
			cut := sw * 1.6
			ex, ey := cx2-dx/d*cut, cy2-dy/d*cut
			op := math.Max(0.45, 0.85-0.12*float64(i))
			p(`<line class="arrow" data-move="%s" x1="%s" y1="%s" x2="%s" y2="%s" stroke-width="%s" stroke-opacity="%s" marker-end="url(#arrowhead)"/>`+"\n",
				a.UCI(), num(cx1), num(cy1), num(ex), num(ey), num(sw), num(op))
		}
		p(`</g>` + "\n")
	}
	p(`</g>` + "\n")
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func label(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder never fail
	return b.String()
}
