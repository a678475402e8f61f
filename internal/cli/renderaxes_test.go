package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/demonet"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// squareValues reads the value of every square of every board of a rendered picture, from the squares'
// tooltips, board by board.
func squareValues(t *testing.T, svg string) [][64]float64 {
	t.Helper()
	var out [][64]float64
	for _, panel := range strings.Split(svg, `<g class="board-panel">`)[1:] {
		var v [64]float64
		n := 0
		for _, m := range regexp.MustCompile(`<title>([a-h][1-8]) ([^<]*)</title>`).FindAllStringSubmatch(panel, -1) {
			sq, err := board.ParseSquare(m[1])
			if err != nil {
				t.Fatal(err)
			}
			if v[sq], err = strconv.ParseFloat(m[2], 64); err != nil {
				t.Fatalf("square %s: %q", m[1], m[2])
			}
			n++
		}
		if n != 64 {
			t.Fatalf("a board with %d valued squares", n)
		}
		out = append(out, v)
	}
	return out
}

// TestRenderBoardAxes draws boards out of results that are more than a board, on the demo network with
// black to move (so that the planes' frame, ranks mirrored, must be mapped back to the board), and checks
// the squares against closed forms: the block output's channels 0 and 1 hold our and their material (the
// input convolution's bias 1 plus the piece's value, doubled by the block's skip connection), every
// square of input gradient plane p holds d(W-L)/d(plane p); per-square patching rows are chosen by module
// name; attention weights [heads,64,64] by head and query square (a synthetic NPY).
func TestRenderBoardAxes(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	const fen = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"
	pos, err := board.ParseFEN(fen)
	if err != nil {
		t.Fatal(err)
	}
	act := filepath.Join(dir, "act")
	if code, _, stderr := runCLI(t, env, "analyse", "--lens", "activation,gradient", "--fen", fen, "--format", "npy", "-o", act); code != 0 {
		t.Fatalf("analyse: %d %s", code, stderr)
	}
	render := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, env, append([]string{"render"}, args...)...)
	}

	code, svg, stderr := render("--from", act, "--key", "block0/conv2/relu_output", "--channel", "0,1")
	if code != 0 {
		t.Fatalf("render channels: %d %s", code, stderr)
	}
	boards := squareValues(t, svg)
	if len(boards) != 2 || strings.Count(svg, `class="piece"`) != 64 || !strings.Contains(svg, ">channel 1<") {
		t.Fatalf("%d boards, want 2 labelled ones with pieces", len(boards))
	}
	for sq := range 64 {
		c, pt, ok := pos.PieceAt(board.Square(sq))
		for ch, side := range []board.Color{board.Black, board.White} { // black to move: "our" is black
			want := 2.0
			if ok && c == side {
				want = 2 * (1 + demonet.PieceValues[pt-board.Pawn])
			}
			if got := boards[ch][sq]; got != want {
				t.Errorf("channel %d at %s = %g, want %g", ch, board.Square(sq), got, want)
			}
		}
	}

	code, svg, stderr = render("--from", act, "--key", "block0/conv2/relu_output", "--grid", "--columns", "2")
	if code != 0 || len(squareValues(t, svg)) != 4 {
		t.Fatalf("--grid over the 4 channels: %d %s", code, stderr)
	}

	planes := make([]float32, board.NumPlanes*64)
	board.NewGame(pos).Encode(board.FillFENOnly, planes)
	grad := demonet.ForceValueGrad(planes)
	code, svg, stderr = render("--from", act, "--key", "input_grad", "--plane", "0,4,6")
	if code != 0 {
		t.Fatalf("render planes: %d %s", code, stderr)
	}
	for k, p := range []int{0, 4, 6} {
		for sq, got := range squareValues(t, svg)[k] {
			if want := grad[p*64+(sq^56)]; !closeTo(got, want, 1e-3) {
				t.Errorf("plane %d at %s = %g, closed form %g", p, board.Square(sq), got, want)
			}
		}
	}

	// Per-square patching: the module's row, chosen by name, in the absolute frame as stored.
	patch := filepath.Join(dir, "patch")
	if code, _, stderr := runCLI(t, env, "analyse", "--lens", "patching", "--per-square", "--fen", fen, "--corrupt-moves", "d7d5", "--format", "npy", "-o", patch); code != 0 {
		t.Fatalf("analyse patching: %d %s", code, stderr)
	}
	effects := readNPY(t, filepath.Join(patch, "effects.npy"))
	code, svg, stderr = render("--from", patch, "--key", "effects", "--module", "block0/conv2/relu")
	if code != 0 {
		t.Fatalf("render effects: %d %s", code, stderr)
	}
	for sq, got := range squareValues(t, svg)[0] {
		if want := float64(effects[sq]); !closeTo(got, want, 1e-3) {
			t.Errorf("effects at %s = %g, stored %g", board.Square(sq), got, want)
		}
	}

	// Attention weights [heads,64,64]: value = 1000*head + 64*query + key, in the planes' frame.
	att := make([]float32, 2*64*64)
	for i := range att {
		att[i] = float32(1000*(i/4096) + i%4096)
	}
	attFile := filepath.Join(dir, "att.npy")
	w, err := os.Create(attFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.Write(w, []int{1, 2, 64, 64}, att); err != nil {
		t.Fatal(err)
	}
	w.Close()
	code, svg, stderr = render("--npy", attFile, "--fen", fen, "--head", "1", "--query", "e4")
	if code != 0 {
		t.Fatalf("render attention: %d %s", code, stderr)
	}
	q := int(board.NewSquare(4, 3)) ^ 56 // e4 in the black-to-move planes' frame
	for sq, got := range squareValues(t, svg)[0] {
		if want := float64(1000 + 64*q + (sq ^ 56)); got != want {
			t.Errorf("attention head 1, query e4, key %s = %g, want %g", board.Square(sq), got, want)
		}
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", act, "--key", "input_grad"}, "--plane N (0..111)"},
		{[]string{"--from", act, "--key", "input_grad", "--plane", "112"}, "112 entries"},
		{[]string{"--npy", attFile, "--head", "0"}, "--query"},
		{[]string{"--from", patch, "--key", "effects", "--module", "nosuch"}, "--module"},
	} {
		if code, _, stderr := render(bad.args...); code != ExitUsage || !strings.Contains(stderr, bad.want) {
			t.Errorf("render %v: exit %d %q, want exit 2 naming %q", bad.args, code, stderr, bad.want)
		}
	}
}

func closeTo(got, want, tol float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= tol*(1+abs(want))
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func readNPY(t *testing.T, path string) []float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, data, err := npy.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAnalyseSVGGridOfChannels: analyse --svg of a lens without an [8,8] map draws the first result that
// has few enough boards as a grid: the demo block's four channels, mapped from the planes' frame (black to
// move) to the board, channel 1 holding white's material.
func TestAnalyseSVGGridOfChannels(t *testing.T) {
	const fen = "4k3/8/8/8/8/8/3Q4/4K3 b - - 0 1"
	svg := filepath.Join(t.TempDir(), "a.svg")
	code, _, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}, "analyse", "--lens", "activation", "--fen", fen, "--svg", svg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	boards := squareValues(t, string(doc))
	if len(boards) != 4 || !strings.Contains(string(doc), ">channel 3<") {
		t.Fatalf("%d boards, want the 4 labelled channels", len(boards))
	}
	d2 := board.NewSquare(3, 1)
	for sq, got := range boards[1] {
		want := 2.0
		if board.Square(sq) == d2 {
			want = 2 * (1 + demonet.PieceValues[board.Queen-board.Pawn])
		}
		if got != want {
			t.Errorf("channel 1 (their material) at %s = %g, want %g", board.Square(sq), got, want)
		}
	}
}

// TestRenderOcclusionKings: render of an occlusion heatmap read back from NPY (which keeps no variants)
// still marks the kings' squares, never edited, as having no value, and only them.
func TestRenderOcclusionKings(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := filepath.Join(t.TempDir(), "occ")
	if code, _, stderr := runCLI(t, env, "analyse", "--lens", "occlusion", "--fen", viewFEN, "--format", "npy", "-o", dir); code != 0 {
		t.Fatalf("analyse: %d %s", code, stderr)
	}
	code, svg, stderr := runCLI(t, env, "render", "--from", dir, "--key", "heatmap")
	if code != 0 {
		t.Fatalf("render: %d %s", code, stderr)
	}
	var got []string
	for _, m := range regexp.MustCompile(`data-square="(\w\d)" data-novalue="true"`).FindAllStringSubmatch(svg, -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, ",") != "e1,e8" {
		t.Errorf("squares without a value %v, want the kings' e1,e8", got)
	}
}

// TestFindBoardAxes: where the board lies in each kind of result, and what is left to choose.
func TestFindBoardAxes(t *testing.T) {
	for _, tc := range []struct {
		key          string
		shape        []int
		board, other []int
		query        int
		ok           bool
	}{
		{"saliency", []int{8, 8}, []int{0, 1}, nil, -1, true},
		{"block3/conv2/relu_output", []int{64, 8, 8}, []int{1, 2}, []int{0}, -1, true},
		{"encoder0/ln2_output", []int{64, 256}, []int{0}, []int{1}, -1, true},
		{"encoder0/ln2_output", []int{64, 64}, []int{0}, []int{1}, -1, true},
		{"effects", []int{64, 64}, []int{1}, []int{0}, -1, true},
		{"effects", []int{6, 64}, []int{1}, []int{0}, -1, true},
		{"encoder0/mha/QK/softmax_output", []int{64, 64}, []int{1}, nil, 0, true},
		{"encoder0/mha/QK/softmax_output", []int{8, 64, 64}, []int{2}, []int{0}, 1, true},
		{"value/dense1/relu_output", []int{128}, nil, nil, -1, false},
	} {
		a, ok := findBoardAxes(tc.key, tc.shape)
		if ok != tc.ok || (ok && (!slices.Equal(a.board, tc.board) || !slices.Equal(a.other, tc.other) || a.query != tc.query)) {
			t.Errorf("%s %v: board %v other %v query %d ok %v; want %v %v %d %v", tc.key, tc.shape, a.board, a.other, a.query, ok, tc.board, tc.other, tc.query, tc.ok)
		}
	}
}

func TestShortKeys(t *testing.T) {
	for _, tc := range []struct {
		keys   []string
		short  string
		common string
	}{
		{[]string{"encoder0/mha/QK/softmax_attention", "encoder1/mha/QK/softmax_attention"}, "encoder0,encoder1", "mha/QK/softmax_attention"},
		{[]string{"block0/conv2/relu_output", "input_grad"}, "block0/conv2/relu_output,input_grad", ""},
		{[]string{"a/x_output", "b/y_output"}, "a/x_output,b/y_output", ""},
		{[]string{"saliency"}, "saliency", ""},
	} {
		short, common := shortKeys(tc.keys)
		if strings.Join(short, ",") != tc.short || common != tc.common {
			t.Errorf("%v: %v %q, want %s %q", tc.keys, short, common, tc.short, tc.common)
		}
	}
}

// TestParseIndexList: render's index selectors name indices below the axis length; a bad list and an
// index past the axis are usage errors, each with its own message.
func TestParseIndexList(t *testing.T) {
	got, err := parseIndexList("--channel", "0-2, 3", 4)
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("0-2, 3: %v %v", got, err)
	}
	for s, want := range map[string]string{"9": "the axis has 4 entries (0..3)", "1,4": "the axis has 4", "x": "want an index",
		"1-0": "want an index", "": "want an index", "-1": "want an index"} {
		_, err := parseIndexList("--channel", s, 4)
		if err == nil || !strings.Contains(err.Error(), want) || ExitCode(err) != ExitUsage {
			t.Errorf("%q: %v (exit %d), want a usage error with %q", s, err, ExitCode(err), want)
		}
	}
}
