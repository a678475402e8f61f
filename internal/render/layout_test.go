package render

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
)

// box is an axis-aligned rectangle in SVG units.
type box struct{ x0, y0, x1, y1 float64 }

func (a box) overlaps(b box) bool {
	const eps = 1e-9
	return a.x0 < b.x1-eps && b.x0 < a.x1-eps && a.y0 < b.y1-eps && b.y0 < a.y1-eps
}

func (a box) inside(b box) bool {
	return a.x0 >= b.x0 && a.x1 <= b.x1 && a.y0 >= b.y0 && a.y1 <= b.y1
}

// laidOut is a drawn element with the attributes it inherits from its groups and its box.
type laidOut struct {
	name, class, text string
	attr              map[string]string
	box               box
}

// layoutOf parses an SVG and computes the box of every text and rect from its coordinates. A text's box
// is estimated generously, independently of the renderer's own constant: 0.75 em per character (1 em for
// a chess glyph), from 0.8 em above its baseline to 0.2 em below, placed by its text-anchor.
func layoutOf(t *testing.T, doc []byte) (items []laidOut, view box) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		attr map[string]string
		item int // index in items, -1 for a group
	}
	var stack []frame
	inherited := func(k string) string {
		for i := len(stack) - 1; i >= 0; i-- {
			if v, ok := stack[i].attr[k]; ok {
				return v
			}
		}
		return ""
	}
	f := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("bad number %q", s)
		}
		return v
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			a := map[string]string{}
			for _, at := range x.Attr {
				a[at.Name.Local] = at.Value
			}
			if x.Name.Local == "svg" {
				view = box{0, 0, f(a["width"]), f(a["height"])}
			}
			idx := -1
			if (x.Name.Local == "text" || x.Name.Local == "rect") && len(stack) > 0 && inherited("id") == "" {
				idx = len(items)
				items = append(items, laidOut{name: x.Name.Local, class: a["class"], attr: a})
			}
			stack = append(stack, frame{a, idx})
		case xml.CharData:
			if n := len(stack); n > 0 && stack[n-1].item >= 0 {
				items[stack[n-1].item].text += string(x)
			}
		case xml.EndElement:
			top := stack[len(stack)-1]
			if top.item >= 0 {
				it := &items[top.item]
				a := top.attr
				switch it.name {
				case "rect":
					if a["width"] == "100%" {
						it.box = view
					} else {
						it.box = box{f(a["x"]), f(a["y"]), f(a["x"]) + f(a["width"]), f(a["y"]) + f(a["height"])}
					}
				case "text":
					fs := f(inherited("font-size"))
					w := 0.0
					for _, r := range it.text {
						switch {
						case r >= 0x2654 && r <= 0x265f:
							w += fs
						case r == 0xfe0e:
						default:
							w += 0.75 * fs
						}
					}
					x, y := f(a["x"]), f(a["y"])
					x0 := x
					switch inherited("text-anchor") {
					case "middle":
						x0 = x - w/2
					case "end":
						x0 = x - w
					}
					if b := inherited("dominant-baseline"); b != "" {
						t.Fatalf("text %q uses dominant-baseline %s, whose box renderers disagree on", it.text, b)
					}
					it.box = box{x0, y - 0.8*fs, x0 + w, y + 0.2*fs}
					it.attr["_fill"], it.attr["_stroke"], it.attr["_stroke-width"] = inherited("fill"), inherited("stroke"), inherited("stroke-width")
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
	return items, view
}

// TestSVGLayout checks pictures by the coordinates they hold: no two text boxes overlap, no label runs into
// a board or the colour bar, everything lies in the picture, every piece lies inside its own square (and so
// inside the frame, rank 8 included) with an outline of the other colour, and squares without a value
// are hatched and marked.
func TestSVGLayout(t *testing.T) {
	start, _ := board.ParseFEN("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1")
	heat := make([]float32, 64)
	for i := range heat {
		heat[i] = float32(math.Sin(float64(i))) * 0.123456
	}
	heat[20] = float32(math.NaN())
	kings := make([]bool, 64)
	kings[4], kings[60] = true, true
	caption := []string{"lens occlusion, result heatmap, target value", "model " + strings.Repeat("/very/long/path", 12) + "/maia-1900.pb.gz",
		"FEN rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", "values min -0.1235, max 0.1235"}
	one := Options{Heat: heat, NoValue: kings, Position: start, Title: "occlusion: heatmap of value " + strings.Repeat("x", 80), Caption: caption,
		Arrows: []board.Move{{From: 12, To: 28}}}
	big := make([]float32, 64)
	for i := range big {
		big[i] = -123456.7 * float32(i)
	}
	var grid []Options
	for i := range 6 {
		grid = append(grid, Options{Heat: heat, Position: start, Label: "block" + strconv.Itoa(i) + "/conv2/relu channel 17 of 256, a long label", BlackBottom: i%2 == 1})
	}
	cases := []struct {
		name     string
		g        GridOptions
		boards   []Options
		noValue  int // squares marked without a value
		panels   int
		sequence bool
	}{
		{"one board", GridOptions{Title: one.Title, Caption: caption}, []Options{one}, 3, 1, false},
		{"wide labels", GridOptions{Title: "t"}, []Options{{Heat: big, Position: start}}, 0, 1, false},
		{"small squares", GridOptions{SquareSize: 20, Title: "small"}, []Options{{Heat: heat, Position: start, Label: "x"}}, 1, 1, false},
		{"plain", GridOptions{}, []Options{{Position: start}}, 0, 1, false},
		{"grid", GridOptions{Title: "grid", Caption: caption[:2], Columns: 3}, grid, 6, 6, false},
		{"sequential grid", GridOptions{Colormap: Sequential}, grid[:5], 5, 5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Grid(&buf, tc.g, tc.boards); err != nil {
				t.Fatal(err)
			}
			items, view := layoutOf(t, buf.Bytes())
			var texts, obstacles, frames, squares []laidOut
			for _, it := range items {
				switch {
				case it.name == "text":
					texts = append(texts, it)
				case it.class == "frame":
					frames = append(frames, it)
					obstacles = append(obstacles, it)
				case it.class == "colorbar-bar" || it.class == "legend-swatch":
					obstacles = append(obstacles, it)
				case it.class == "square":
					squares = append(squares, it)
				}
			}
			if len(frames) != tc.panels || len(squares) != 64*tc.panels {
				t.Fatalf("%d frames, %d squares; want %d boards", len(frames), len(squares), tc.panels)
			}
			for i, a := range texts {
				if !a.box.inside(view) {
					t.Errorf("%s %q at %+v outside the picture %+v", a.class, a.text, a.box, view)
				}
				for _, b := range texts[i+1:] {
					if a.box.overlaps(b.box) {
						t.Errorf("%s %q %+v overlaps %s %q %+v", a.class, a.text, a.box, b.class, b.text, b.box)
					}
				}
				if a.class == "piece" {
					continue
				}
				for _, o := range obstacles {
					if a.box.overlaps(o.box) {
						t.Errorf("%s %q %+v runs into the %s %+v", a.class, a.text, a.box, o.class, o.box)
					}
				}
			}
			// Pieces: inside their own square, outlined in the other colour.
			pieces := 0
			for _, p := range texts {
				if p.class != "piece" {
					continue
				}
				pieces++
				in := false
				for _, s := range squares {
					if s.attr["data-square"] == p.attr["data-square"] && p.box.inside(s.box) {
						in = true
					}
				}
				if !in {
					t.Errorf("piece on %s at %+v is not inside its square", p.attr["data-square"], p.box)
				}
				fill, stroke := p.attr["fill"], p.attr["stroke"]
				sw, _ := strconv.ParseFloat(p.attr["stroke-width"], 64)
				if fill == "" || stroke == "" || fill == stroke || sw < 1 {
					t.Errorf("piece on %s: fill %q stroke %q width %g, want an outline of another colour", p.attr["data-square"], fill, stroke, sw)
				}
			}
			want := 0
			for _, b := range tc.boards {
				if b.Position != nil {
					want += 32
				}
			}
			if pieces != want {
				t.Errorf("%d pieces, want %d", pieces, want)
			}
			marked := 0
			for _, s := range squares {
				if s.attr["data-novalue"] == "true" {
					marked++
					if s.attr["fill"] != "url(#nan)" {
						t.Errorf("no-value square %s filled %s", s.attr["data-square"], s.attr["fill"])
					}
				}
			}
			if marked != tc.noValue {
				t.Errorf("%d squares marked without a value, want %d", marked, tc.noValue)
			}
			legend := false
			for _, tx := range texts {
				legend = legend || tx.class == "legend-label"
			}
			if legend != (tc.noValue > 0) {
				t.Errorf("no-value legend shown %v, want %v", legend, tc.noValue > 0)
			}
		})
	}
}
