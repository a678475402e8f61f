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

// element is a parsed SVG element: its name, attributes and character data.
type element struct {
	name  string
	attr  map[string]string
	text  string
	depth int
}

// parse checks that the document is well-formed XML with an <svg> root in the SVG namespace and returns
// its elements in document order.
func parse(t *testing.T, doc []byte) []element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var out []element
	var stack []int
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			e := element{name: x.Name.Local, attr: map[string]string{}, depth: len(stack)}
			for _, a := range x.Attr {
				e.attr[a.Name.Local] = a.Value
			}
			if len(out) == 0 && (x.Name.Local != "svg" || x.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root is %v, want svg in the SVG namespace", x.Name)
			}
			stack = append(stack, len(out))
			out = append(out, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				out[stack[len(stack)-1]].text += string(x)
			}
		}
	}
	return out
}

func withClass(es []element, class string) []element {
	var out []element
	for _, e := range es {
		if e.attr["class"] == class {
			out = append(out, e)
		}
	}
	return out
}

func bySquare(es []element) map[string]element {
	m := map[string]element{}
	for _, e := range es {
		m[e.attr["data-square"]] = e
	}
	return m
}

func render(t *testing.T, o Options) []element {
	t.Helper()
	var buf bytes.Buffer
	if err := SVG(&buf, o); err != nil {
		t.Fatal(err)
	}
	return parse(t, buf.Bytes())
}

func TestSVGStructure(t *testing.T) {
	pos, err := board.ParseFEN("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
	if err != nil {
		t.Fatal(err)
	}
	heat := make([]float32, 64)
	for i := range heat {
		heat[i] = float32(i-32) / 10 // -3.2 .. 3.1
	}
	e2, e4, f3 := board.NewSquare(4, 1), board.NewSquare(4, 3), board.NewSquare(5, 2)
	heat[e4] = float32(math.NaN())
	e2e4 := board.Move{From: e2, To: e4}
	g1f3 := board.Move{From: board.G1, To: f3}
	tests := []struct {
		name        string
		o           Options
		pieces      int
		arrows      int
		bar         bool
		bottomLeft  string // the square drawn at the bottom left
		topRight    string
		labels      []string
		nanSquares  []string
		titleSubstr string
	}{
		{"heatmap white", Options{Heat: heat, Position: pos, Arrows: []board.Move{e2e4, g1f3}, Title: "saliency <value>"}, 32, 2, true, "a1", "h8", []string{"3.2", "0", "-3.2"}, []string{"e4"}, "saliency <value>"},
		{"black bottom", Options{Heat: heat, Position: pos, BlackBottom: true}, 32, 0, true, "h8", "a1", []string{"3.2", "0", "-3.2"}, []string{"e4"}, ""},
		{"sequential", Options{Heat: heat, Colormap: Sequential}, 0, 0, true, "a1", "h8", []string{"3.1", "-3.2"}, []string{"e4"}, ""},
		{"plain board", Options{Position: pos}, 32, 0, false, "a1", "h8", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := render(t, tt.o)
			squares := withClass(es, "square")
			if len(squares) != 64 {
				t.Fatalf("%d squares, want 64", len(squares))
			}
			sq := bySquare(squares)
			if len(sq) != 64 {
				t.Fatalf("%d distinct squares, want 64", len(sq))
			}
			if n := len(withClass(es, "piece")); n != tt.pieces {
				t.Errorf("%d pieces, want %d", n, tt.pieces)
			}
			if n := len(withClass(es, "arrow")); n != tt.arrows {
				t.Errorf("%d arrows, want %d", n, tt.arrows)
			}
			bars := withClass(es, "colorbar-bar")
			if (len(bars) == 1) != tt.bar {
				t.Fatalf("%d colour bars, want bar=%v", len(bars), tt.bar)
			}
			var labels []string
			for _, l := range withClass(es, "colorbar-label") {
				labels = append(labels, strings.TrimSpace(l.text))
			}
			if strings.Join(labels, ",") != strings.Join(tt.labels, ",") {
				t.Errorf("colour bar labels %v, want %v", labels, tt.labels)
			}
			xy := func(name string) (float64, float64) {
				x, _ := strconv.ParseFloat(sq[name].attr["x"], 64)
				y, _ := strconv.ParseFloat(sq[name].attr["y"], 64)
				return x, y
			}
			blx, bly := xy(tt.bottomLeft)
			trx, try := xy(tt.topRight)
			for name := range sq {
				x, y := xy(name)
				if x < blx || y > bly || x > trx || y < try {
					t.Errorf("square %s at (%g,%g) outside the corners %s (%g,%g) and %s (%g,%g)", name, x, y, tt.bottomLeft, blx, bly, tt.topRight, trx, try)
				}
			}
			for _, n := range tt.nanSquares {
				if f := sq[n].attr["fill"]; f != "url(#nan)" {
					t.Errorf("NaN square %s filled %q", n, f)
				}
			}
			if tt.titleSubstr != "" {
				found := false
				for _, e := range withClass(es, "title") {
					found = found || strings.Contains(e.text, tt.titleSubstr)
				}
				if !found {
					t.Errorf("no title containing %q", tt.titleSubstr)
				}
			}
		})
	}
}

// TestScale checks the colour maps' anchors: a diverging map is white at 0 and saturated at +-max|v|,
// whatever the data's asymmetry; a sequential map spans min..max.
func TestScale(t *testing.T) {
	s := NewScale(Diverging, []float32{-1, 0.5, 4, float32(math.NaN())})
	if s.Lo != -4 || s.Hi != 4 || s.DataMin != -1 || s.DataMax != 4 {
		t.Errorf("diverging scale %+v, want [-4,4] with data [-1,4]", s)
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{0, "#f7f7f7"}, {4, "#67001f"}, {-4, "#053061"}, {100, "#67001f"}} {
		if got := s.Color(c.v); got != c.want {
			t.Errorf("Color(%g) = %s, want %s", c.v, got, c.want)
		}
	}
	q := NewScale(Sequential, []float32{2, 3})
	if q.Color(2) != "#440154" || q.Color(3) != "#fde725" {
		t.Errorf("sequential ends %s %s", q.Color(2), q.Color(3))
	}
	flat := NewScale(Diverging, []float32{0, 0})
	if flat.Lo != -1 || flat.Hi != 1 {
		t.Errorf("flat map scale %+v, want [-1,1]", flat)
	}
}

func TestSVGErrors(t *testing.T) {
	for _, o := range []Options{
		{Heat: make([]float32, 63)},
		{Colormap: "rainbow"},
		{Arrows: []board.Move{{From: -1, To: 3}}},
	} {
		if err := SVG(io.Discard, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
