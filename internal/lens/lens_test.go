package lens

import (
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/demonet"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

var (
	rtOnce sync.Once
	rt     *model.SessionCache
	rtErr  error
)

// runtimeFor starts ONNX Runtime once for the package's tests, skipping when the library is missing.
func runtimeFor(t testing.TB) *model.SessionCache {
	t.Helper()
	lib := testutil.ORTLib(t)
	rtOnce.Do(func() {
		if _, rtErr = model.InitRuntime([]string{lib}); rtErr == nil {
			rt, rtErr = model.NewSessionCache(model.SessionOptions{Device: "cpu", Threads: 1})
		}
	})
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

// testPositions are varied positions: both sides to move, castling, en passant, promotion chances.
var testPositions = []struct{ fen, moves string }{
	{"startpos", ""},
	{"startpos", "e2e4 e7e5 g1f3 b8c6 f1b5"},
	{"r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4", ""},
	{"8/2k5/8/3Pp3/8/8/5K2/8 w - e6 0 40", ""},
	{"r3k2r/1P6/8/8/8/8/6p1/R3K2R b KQkq - 0 30", ""},
}

func batchOf(t testing.TB, fill board.HistoryFill) *Batch {
	t.Helper()
	b := &Batch{}
	for _, p := range testPositions {
		g, err := board.ParseGame(p.fen, p.moves)
		if err != nil {
			t.Fatal(err)
		}
		planes := make([]float32, board.NumPlanes*64)
		g.Encode(fill, planes)
		b.Planes = append(b.Planes, planes...)
		b.Positions = append(b.Positions, g.Current())
	}
	return b
}

func TestRegistryValid(t *testing.T) {
	if err := Lenses.Validate(); err != nil {
		t.Fatal(err)
	}
	// The validation can fail: a duplicate, a missing doc and a kind clash are each rejected.
	dup := Registry{Activation, Activation}
	noDoc := Registry{&Lens{Name: "x", Prepare: prepareActivation}}
	clash := Registry{Activation, &Lens{Name: "y", Doc: "d", Prepare: prepareActivation, Options: []Option{{Name: "pattern", Kind: Bool, Default: "false", Help: "h"}}}}
	for name, r := range map[string]Registry{"duplicate": dup, "no doc": noDoc, "kind clash": clash} {
		if r.Validate() == nil {
			t.Errorf("%s: Validate accepted an invalid registry", name)
		}
	}
	if _, err := Lenses.Get("nosuch"); err == nil || !strings.Contains(err.Error(), "activation") {
		t.Errorf("unknown lens error should list known lenses: %v", err)
	}
}

// TestEveryLensRunsOnDemo runs each registered lens with its defaults on the demo network.
func TestEveryLensRunsOnDemo(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	b := withCorrupt(batchOf(t, board.FillFENOnly))
	for _, l := range Lenses {
		t.Run(l.Name, func(t *testing.T) {
			n := n
			if l == Attention { // the demo net has no attention; the smallest synthetic one has
				n = attentionNet(t, "ab_pemap_classical")
			}
			v, err := demoLensValues(t, l)
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewEngine(r, n, []Spec{{l, v}}, EngineOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, res, err := e.Run(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) == 0 {
				t.Fatal("no results")
			}
			for _, x := range res {
				if x.JSONOnly() {
					if len(x.JSON) != b.Len() || len(x.Data) != 0 {
						t.Errorf("%s: %d JSON values and %d tensor values for %d rows", x.Key, len(x.JSON), len(x.Data), b.Len())
					}
					continue
				}
				if len(x.Data) != b.Len()*x.RowSize() {
					t.Errorf("%s: %d values for %d rows of %v", x.Key, len(x.Data), b.Len(), x.Shape)
				}
			}
		})
	}
}

// runSpecs runs lenses in one engine over a batch and returns the results by key.
func runSpecs(t testing.TB, r *model.SessionCache, n *model.Network, b *Batch, specs []Spec) map[string]BatchResult {
	t.Helper()
	e, err := NewEngine(r, n, specs, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]BatchResult{}
	for _, x := range res {
		out[x.Key] = x
	}
	return out
}

// runLens runs one lens with the given raw options (unset ones take the lens defaults).
func runLens(t testing.TB, r *model.SessionCache, n *model.Network, b *Batch, l *Lens, raw map[string]string) map[string]BatchResult {
	t.Helper()
	v, err := l.Resolve(raw)
	if err != nil {
		t.Fatal(err)
	}
	return runSpecs(t, r, n, b, []Spec{{l, v}})
}

// TestSaliencyDemoClosedForm checks input_grad and the heatmap against the demo net's analytic gradient,
// with the expected heatmap built square by square from the board (absolute frame), not from the planes.
func TestSaliencyDemoClosedForm(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	b := batchOf(t, board.FillFENOnly)
	got := runLens(t, r, n, b, Saliency, nil) // grad-x-input, current planes, no normalisation
	for i, pos := range b.Positions {
		planes := b.Planes[i*board.NumPlanes*64 : (i+1)*board.NumPlanes*64]
		want := demonet.ForceValueGrad(planes)
		g := got["input_grad"].Row(i)
		for k := range want {
			if math.Abs(float64(g[k])-want[k]) > 1e-5+1e-4*math.Abs(want[k]) {
				t.Fatalf("position %d: input_grad[%d] = %g, closed form %g", i, k, g[k], want[k])
			}
		}
		heat := got["saliency"].Row(i)
		for sq := board.Square(0); sq < 64; sq++ {
			expect := 0.0
			if c, pt, ok := pos.PieceAt(sq); ok {
				frameSq := int(sq)
				if pos.SideToMove() == board.Black {
					frameSq ^= 56
				}
				plane := int(pt) - 1
				if c != pos.SideToMove() {
					plane += 6
				}
				expect = want[plane*64+frameSq] // grad x input with input 1
			}
			if math.Abs(float64(heat[sq])-expect) > 1e-5 {
				t.Fatalf("position %d (%s): saliency at %v = %g, want %g", i, pos.FEN(), sq, heat[sq], expect)
			}
		}
	}
}

// TestActivationMaiaMatchesDirectConv recomputes inputconv/relu and block0/conv1/relu of maia-1100 with a
// plain Go convolution of the planes with the graph's weights.
func TestActivationMaiaMatchesDirectConv(t *testing.T) {
	r := runtimeFor(t)
	n, err := model.Load(testutil.Shared(t, "models/maia-1100.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b := refBatch(t, testutil.Shared(t, "reference/lc0/maia-1100.refdump.jsonl"))
	got := runLens(t, r, n, b, Activation, map[string]string{"pattern": "^inputconv/relu$|^block0/conv1/relu$"})
	if len(got) != 2 {
		t.Fatalf("got keys %v, want inputconv/relu_output and block0/conv1/relu_output", got)
	}
	ix := onnxgraph.NewIndex(n.Proto.GetGraph())
	convWeights := func(node string) ([]float32, []float32, []int64) {
		nd := ix.Producer[node]
		w, err := onnxgraph.Float32s(ix.Initializers[nd.GetInput()[1]])
		if err != nil {
			t.Fatal(err)
		}
		bias, err := onnxgraph.Float32s(ix.Initializers[nd.GetInput()[2]])
		if err != nil {
			t.Fatal(err)
		}
		return w, bias, ix.Initializers[nd.GetInput()[1]].GetDims()
	}
	w0, b0, d0 := convWeights("/inputconv")
	w1, b1, d1 := convWeights("/block0/conv1")
	for i := 0; i < b.Len(); i++ {
		x := b.Planes[i*board.NumPlanes*64 : (i+1)*board.NumPlanes*64]
		a0 := conv3x3Relu(x, w0, b0, d0)
		a1 := conv3x3Relu(a0, w1, b1, d1)
		compareAct(t, i, "inputconv/relu", got["inputconv/relu_output"].Row(i), a0)
		compareAct(t, i, "block0/conv1/relu", got["block0/conv1/relu_output"].Row(i), a1)
	}
}

func compareAct(t *testing.T, i int, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("position %d %s: %d values, want %d", i, name, len(got), len(want))
	}
	for k := range want {
		if math.Abs(float64(got[k]-want[k])) > 1e-4*(1+math.Abs(float64(want[k]))) {
			t.Fatalf("position %d %s[%d] = %g, direct conv %g", i, name, k, got[k], want[k])
		}
	}
}

// conv3x3Relu is a direct NCHW 3x3 convolution with padding 1 on one 8x8 sample, plus bias and ReLU.
func conv3x3Relu(x, w, bias []float32, dims []int64) []float32 {
	cout, cin, kh := int(dims[0]), int(dims[1]), int(dims[2])
	pad := kh / 2
	out := make([]float32, cout*64)
	for o := 0; o < cout; o++ {
		for r := 0; r < 8; r++ {
			for c := 0; c < 8; c++ {
				s := float64(bias[o])
				for i := 0; i < cin; i++ {
					for dr := 0; dr < kh; dr++ {
						for dc := 0; dc < kh; dc++ {
							rr, cc := r+dr-pad, c+dc-pad
							if rr < 0 || rr > 7 || cc < 0 || cc > 7 {
								continue
							}
							s += float64(w[((o*cin+i)*kh+dr)*kh+dc]) * float64(x[i*64+rr*8+cc])
						}
					}
				}
				out[o*64+r*8+c] = float32(math.Max(s, 0))
			}
		}
	}
	return out
}

// refBatch encodes the reference positions with our encoder (checked bit for bit against lc0 in board).
func refBatch(t testing.TB, path string) *Batch {
	t.Helper()
	var games []*board.Game
	for _, rec := range testutil.ReadRefdump(t, path) {
		g, err := board.ParseGame(rec.FENStart, strings.Join(rec.MovesFromFEN, " "))
		if err != nil {
			t.Fatal(err)
		}
		games = append(games, g)
	}
	return encodeGames(games)
}

// gamesBatch encodes positions given as FENs (fen-only history).
func gamesBatch(t testing.TB, fens ...string) *Batch {
	t.Helper()
	var games []*board.Game
	for _, fen := range fens {
		g, err := board.ParseGame(fen, "")
		if err != nil {
			t.Fatal(err)
		}
		games = append(games, g)
	}
	return encodeGames(games)
}

// encodeGames encodes each game's current position, fen-only history, into one batch.
func encodeGames(games []*board.Game) *Batch {
	b := &Batch{}
	for _, g := range games {
		planes := make([]float32, board.NumPlanes*64)
		g.Encode(board.FillFENOnly, planes)
		b.Planes = append(b.Planes, planes...)
		b.Positions = append(b.Positions, g.Current())
	}
	return b
}

// TestCompositePrefixesSharedKeys runs gradient and saliency in one pass: both return input_grad, so both
// are kept under prefixed keys, and they agree.
func TestCompositePrefixesSharedKeys(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	b := batchOf(t, board.FillFENOnly)
	gv, _ := Gradient.Resolve(nil)
	sv, _ := Saliency.Resolve(nil)
	e, err := NewEngine(r, n, []Spec{{Gradient, gv}, {Saliency, sv}}, EngineOptions{SavePlanes: true})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	got := map[string]BatchResult{}
	for _, x := range res {
		keys = append(keys, x.Key)
		got[x.Key] = x
	}
	if strings.Join(keys, " ") != "planes gradient.input_grad saliency saliency.input_grad" {
		t.Fatalf("keys %v", keys)
	}
	a, c := got["gradient.input_grad"].Data, got["saliency.input_grad"].Data
	for k := range a {
		if a[k] != c[k] {
			t.Fatalf("input_grad differs between lenses at %d: %g vs %g", k, a[k], c[k])
		}
	}
	// Different targets cannot share one backward pass.
	pv, _ := Saliency.Resolve(map[string]string{"target": "policy:best"})
	if _, err := NewEngine(r, n, []Spec{{Gradient, gv}, {Saliency, pv}}, EngineOptions{}); err == nil {
		t.Error("lenses with different targets were accepted in one pass")
	}
}

func TestParseTarget(t *testing.T) {
	for _, s := range []string{"value", "wdl:w", "wdl:d", "wdl:l", "policy:e2e4", "policy:e7e8q", "policy:best", "mlh"} {
		tg, err := ParseTarget(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if tg.String() != s {
			t.Errorf("round trip %q -> %q", s, tg.String())
		}
	}
	for _, s := range []string{"", "wdl", "wdl:x", "policy:", "policy:e2", "q"} {
		if _, err := ParseTarget(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestActivationDemoClosedForm checks the demo net's block output, the activation lens's default, against
// its closed form built from the board: 2*(map+1) for the maps our material, their material, our
// occupancy, their occupancy, per square in the side-to-move frame.
func TestActivationDemoClosedForm(t *testing.T) {
	r := runtimeFor(t)
	b := batchOf(t, board.FillFENOnly)
	v, err := Activation.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(r, model.Demo(), []Spec{{Activation, v}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Key != "block0/conv2/relu_output" || len(res[0].Shape) != 3 || res[0].Shape[0] != 4 {
		t.Fatalf("results %v", res)
	}
	for i, pos := range b.Positions {
		var want [4 * 64]float64
		for sq := board.Square(0); sq < 64; sq++ {
			c, pt, ok := pos.PieceAt(sq)
			if !ok {
				continue
			}
			frame := int(sq)
			if pos.SideToMove() == board.Black {
				frame ^= 56
			}
			side := 0
			if c != pos.SideToMove() {
				side = 1
			}
			want[side*64+frame] += demonet.PieceValues[pt-1]
			want[(2+side)*64+frame]++
		}
		got := res[0].Row(i)
		for k := range want {
			if math.Abs(float64(got[k])-2*(want[k]+1)) > 1e-5 {
				t.Fatalf("position %d (%s): channel %d square %d = %g, closed form %g", i, pos.FEN(), k/64, k%64, got[k], 2*(want[k]+1))
			}
		}
	}
}
