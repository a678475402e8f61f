package demonet_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/demonet"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

var rt struct {
	once sync.Once
	r    *model.SessionCache
	err  error
}

func runtimeForTest(t *testing.T) *model.SessionCache {
	t.Helper()
	lib := testutil.ORTLib(t)
	rt.once.Do(func() {
		if _, rt.err = model.InitRuntime([]string{lib}); rt.err == nil {
			rt.r, rt.err = model.NewSessionCache(model.SessionOptions{Device: model.DeviceCPU})
		}
	})
	if rt.err != nil {
		t.Fatal(rt.err)
	}
	return rt.r
}

// fens cover both sides to move, captures of every piece type, promotions and castling rights.
var fens = []string{
	"startpos",
	"rnb1kbnr/pppp1ppp/8/4p1q1/3PP3/8/PPP2PPP/RNBQKBNR b KQkq - 0 3",
	"r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4",
	"4k3/1P6/8/3q4/4P3/8/8/4K2R w K - 0 1",
	"8/8/3k4/2n5/4R3/8/8/4K3 b - - 0 1",
	"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1",
}

func encode(t *testing.T, fen string) []float32 {
	t.Helper()
	var p *board.Position
	if fen == "startpos" {
		p = board.StartPosition()
	} else {
		var err error
		if p, err = board.ParseFEN(fen); err != nil {
			t.Fatal(err)
		}
	}
	planes := make([]float32, 112*64)
	board.NewGame(p).Encode(board.FillFENOnly, planes)
	return planes
}

// TestEmbeddedUpToDate fails when demo.onnx in internal/model and Build disagree: run `make demo`.
func TestEmbeddedUpToDate(t *testing.T) {
	want, err := demonet.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(model.DemoBytes(), want) {
		t.Fatal("internal/model/demo.onnx is stale: run `make demo`")
	}
	again, _ := demonet.Bytes()
	if !bytes.Equal(again, want) {
		t.Fatal("Bytes is not deterministic")
	}
}

// TestLayout checks the demo speaks lc0's interface and naming.
func TestLayout(t *testing.T) {
	n := model.Demo()
	if n.Input != "/input/planes" || n.Heads != (model.Heads{Policy: "/output/policy", WDL: "/output/wdl"}) {
		t.Errorf("input %q heads %+v", n.Input, n.Heads)
	}
	for _, name := range []string{"inputconv", "inputconv/relu", "block0/conv1", "block0/conv1/relu", "block0/conv2",
		"block0/conv2/mixin", "block0/conv2/relu", "value/conv", "value/dense2/add", "policy/flatten", "output/wdl", "output/policy"} {
		if _, ok := n.Module(name); !ok {
			t.Errorf("no module %s", name)
		}
	}
	in := n.Info()
	if in.Opset != 17 || in.Body != "residual" || in.Blocks != 1 || in.Filters != 4 {
		t.Errorf("info %+v", in)
	}
}

// TestORTMatchesClosedForms runs the embedded network through ONNX Runtime, as one batch, and compares every
// policy logit and W/D/L with the closed forms.
func TestORTMatchesClosedForms(t *testing.T) {
	r := runtimeForTest(t)
	var all [][]float32
	for _, f := range fens {
		all = append(all, encode(t, f))
	}
	all = append(all, referencePlanes(t)...)
	var batch []float32
	for _, p := range all {
		batch = append(batch, p...)
	}
	h, err := model.Demo().Forward(r, batch, len(all))
	if err != nil {
		t.Fatal(err)
	}
	for i, planes := range all {
		want := demonet.PolicyLogits(planes)
		for k, w := range want {
			if g := float64(h.PolicyRow(i)[k]); math.Abs(g-w) > 1e-5 {
				t.Fatalf("position %d: logit %d = %g, closed form %g", i, k, g, w)
			}
		}
		w, d, l := demonet.Value(planes)
		got := h.WDL[3*i : 3*i+3]
		if math.Abs(float64(got[0])-w) > 1e-5 || math.Abs(float64(got[1])-d) > 1e-5 || math.Abs(float64(got[2])-l) > 1e-5 {
			t.Errorf("position %d: wdl %v, closed form %v %v %v", i, got, w, d, l)
		}
	}
}

// referencePlanes are lc0's own encodings of the 35 reference positions, when ../shared is present.
func referencePlanes(t *testing.T) [][]float32 {
	path := filepath.Join(testutil.Root(t), "..", "shared", "reference", "lc0", "maia-1100.refdump.jsonl")
	if _, err := os.Stat(path); err != nil {
		t.Logf("%s absent: checking board-encoded positions only", path)
		return nil
	}
	var out [][]float32
	for _, rec := range testutil.ReadRefdump(t, path) {
		out = append(out, testutil.DecodePlanes(t, rec))
	}
	if len(out) != 35 {
		t.Fatalf("%d reference positions, want 35", len(out))
	}
	return out
}

// TestForceValueGradFiniteDifferences checks the analytic gradient of W - L against central differences of
// Value on every one of the 112x64 inputs.
func TestForceValueGradFiniteDifferences(t *testing.T) {
	for _, f := range fens {
		planes := encode(t, f)
		grad := demonet.ForceValueGrad(planes)
		if len(grad) != 112*64 {
			t.Fatalf("gradient has %d entries", len(grad))
		}
		fv := func(p []float32) float64 { w, _, l := demonet.Value(p); return w - l }
		for i := range planes {
			orig := planes[i]
			planes[i] = orig + 1e-3
			up, hi := fv(planes), float64(planes[i])
			planes[i] = orig - 1e-3
			down, lo := fv(planes), float64(planes[i])
			planes[i] = orig
			if fd := (up - down) / (hi - lo); math.Abs(fd-grad[i]) > 1e-6 {
				t.Fatalf("%s: d(W-L)/d plane %d sq %d: analytic %g, finite difference %g", f, i/64, i%64, grad[i], fd)
			}
		}
	}
}

// TestMeaning checks hand-worked values: material balance, symmetric start, and capture logits.
func TestMeaning(t *testing.T) {
	start := encode(t, "startpos")
	if m := demonet.Material(start); m != 0 {
		t.Errorf("start material %g", m)
	}
	w, d, l := demonet.Value(start)
	e := math.E // z = [0, 1, 0]
	if math.Abs(w-1/(2+e)) > 1e-15 || math.Abs(l-w) > 1e-15 || math.Abs(d-e/(2+e)) > 1e-15 {
		t.Errorf("start wdl %g %g %g", w, d, l)
	}
	// White: K, R, P(b7), P(e4) = 0+5+1+1 = 7; black: K, Q = 9. Balance -2 for white to move.
	p := encode(t, "4k3/1P6/8/3q4/4P3/8/8/4K2R w K - 0 1")
	if m := demonet.Material(p); m != -2 {
		t.Errorf("material %g, want -2", m)
	}
	logits := demonet.PolicyLogits(p)
	pos, _ := board.ParseFEN("4k3/1P6/8/3q4/4P3/8/8/4K2R w K - 0 1")
	moves, idx := board.LegalIndices(pos)
	best, bestLogit := "", math.Inf(-1)
	for k, m := range moves {
		if logits[idx[k]] > bestLogit {
			best, bestLogit = m.UCI(), logits[idx[k]]
		}
	}
	// exd5 takes the queen (9) on d5, a centre square (centrality 6).
	if best != "e4d5" || math.Abs(bestLogit-(9+0.06)) > 1e-12 {
		t.Errorf("best capture %s (%g), want e4d5 (9.06)", best, bestLogit)
	}
	// Black to move: planes and policy are in black's frame; Nxe4 takes the rook (5) on e4, which is e5 in
	// that frame, a centre square too.
	const fenB = "8/8/3k4/2n5/4R3/8/8/4K3 b - - 0 1"
	q := encode(t, fenB)
	if m := demonet.Material(q); m != -2 {
		t.Errorf("black material %g, want -2 (knight vs rook)", m)
	}
	pos, _ = board.ParseFEN(fenB)
	moves, idx = board.LegalIndices(pos)
	logits = demonet.PolicyLogits(q)
	best, bestLogit = "", math.Inf(-1)
	for k, m := range moves {
		if logits[idx[k]] > bestLogit {
			best, bestLogit = m.UCI(), logits[idx[k]]
		}
	}
	if best != "c5e4" || math.Abs(bestLogit-(5+0.06)) > 1e-12 {
		t.Errorf("black's best capture %s (%g), want c5e4 (5.06)", best, bestLogit)
	}
}
