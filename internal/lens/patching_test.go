package lens

import (
	"math"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// patchPairs are clean/corrupted pairs differing by one piece, with both sides to move.
var patchPairs = []struct{ clean, corrupt string }{
	{"r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4", "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/4P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"}, // no Bc4
	{"rnbqkbnr/pppp1ppp/8/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 1 2", "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKB1R b KQkq - 1 2"},           // no Nf3, black to move
	{"8/2k5/8/3Pp3/8/8/5K2/8 w - - 0 40", "8/2k5/8/3P4/8/8/5K2/8 w - - 0 40"},                                                                    // no e5 pawn
	{"r3k2r/1P6/8/8/8/8/6p1/R3K2R b KQkq - 0 30", "r3k2r/1P6/8/8/8/8/8/R3K2R b KQkq - 0 30"},                                                     // no g2 pawn
}

// removedSquare is the absolute square whose piece the corrupted position lacks.
func removedSquare(t testing.TB, clean, corrupt *board.Position) board.Square {
	t.Helper()
	for sq := board.Square(0); sq < 64; sq++ {
		_, _, a := clean.PieceAt(sq)
		_, _, b := corrupt.PieceAt(sq)
		if a != b {
			return sq
		}
	}
	t.Fatal("pair does not differ")
	return board.NoSquare
}

// patchBatch encodes the pairs; with same, the corrupted positions are the clean ones.
func patchBatch(t testing.TB, same bool) *Batch {
	t.Helper()
	b := &Batch{}
	enc := func(fen string) (*board.Position, []float32) {
		g, err := board.ParseGame(fen, "")
		if err != nil {
			t.Fatal(err)
		}
		planes := make([]float32, board.NumPlanes*64)
		g.Encode(board.FillFENOnly, planes)
		return g.Current(), planes
	}
	for _, p := range patchPairs {
		cp, cpl := enc(p.clean)
		xp, xpl := cp, cpl
		if !same {
			xp, xpl = enc(p.corrupt)
		}
		b.Positions = append(b.Positions, cp)
		b.Planes = append(b.Planes, cpl...)
		b.CorruptPositions = append(b.CorruptPositions, xp)
		b.CorruptPlanes = append(b.CorruptPlanes, xpl...)
	}
	return b
}

func patchNetworks(t *testing.T) []*model.Network {
	t.Helper()
	nets := []*model.Network{model.Demo()}
	// The synthetic attention body folds squares into the batch axis ([batch*64,C]).
	for _, name := range []string{"maia-1100", "tinygyal-8", "synthetic/ab_pemap_classical"} {
		n, err := model.Load(testutil.Shared(t, "models/"+name+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	return nets
}

// TestPatchingOwnActivationIsIdentity patches every block output (whole and per square) with the clean
// run's own activation: every effect is zero.
func TestPatchingOwnActivationIsIdentity(t *testing.T) {
	r := runtimeFor(t)
	b := patchBatch(t, true)
	for _, n := range patchNetworks(t) {
		for _, target := range []string{"value", "policy:best"} {
			for _, per := range []string{"false", "true"} {
				got := runLens(t, r, n, b, Patching, map[string]string{"target": target, "per-square": per})
				for k, e := range got["effects"].Data {
					if math.Abs(float64(e)) > 1e-6 {
						t.Fatalf("%s target %s per-square %s: effect[%d] = %g, want 0", n.Path, target, per, k, e)
					}
				}
			}
		}
	}
}

// TestPatchingLastBlockReproducesCorrupted patches the last block output with the corrupted activation:
// the heads are then the corrupted run's, so the effect is target(corrupted) - target(clean).
func TestPatchingLastBlockReproducesCorrupted(t *testing.T) {
	r := runtimeFor(t)
	b := patchBatch(t, false)
	for _, n := range patchNetworks(t) {
		mods, err := n.Select(DefaultActivationPattern)
		if err != nil {
			t.Fatal(err)
		}
		last := len(mods) - 1
		moved := false // for some target and position, else the test proves nothing
		for _, target := range []string{"value", "policy:best"} {
			got := runLens(t, r, n, b, Patching, map[string]string{"target": target})
			eff, clean, corrupt := got["effects"], got["target_clean"].Data, got["target_corrupted"].Data
			if eff.Shape[0] != len(mods) {
				t.Fatalf("effects shape %v for %d modules", eff.Shape, len(mods))
			}
			for i := range b.Positions {
				want := corrupt[i] - clean[i]
				if math.Abs(float64(want)) > 1e-3 {
					moved = true
				}
				if g := eff.Row(i)[last]; math.Abs(float64(g-want)) > 1e-4*(1+math.Abs(float64(want))) {
					t.Errorf("%s %s position %d: last-block effect %g, corrupted - clean %g", n.Path, target, i, g, want)
				}
			}
		}
		if !moved {
			t.Errorf("%s: no corruption changed a target: the test proves nothing", n.Path)
		}
	}
}

// TestPatchingPerSquareLocality patches the input convolution square by square: a 3x3 convolution of
// planes differing on one square differs only next to it, so only those squares (absolute frame, both
// sides to move) can have an effect, and the square itself must have one.
func TestPatchingPerSquareLocality(t *testing.T) {
	r := runtimeFor(t)
	b := patchBatch(t, false)
	n, err := model.Load(testutil.Shared(t, "models/maia-1100.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	got := runLens(t, r, n, b, Patching, map[string]string{"pattern": "^inputconv/relu$", "per-square": "true", "target": "value"})
	eff := got["effects"]
	if len(eff.Shape) != 2 || eff.Shape[0] != 1 || eff.Shape[1] != 64 {
		t.Fatalf("effects shape %v, want [1 64]", eff.Shape)
	}
	for i := range b.Positions {
		sq := removedSquare(t, b.Positions[i], b.CorruptPositions[i])
		row := eff.Row(i)
		if row[sq] == 0 {
			t.Errorf("position %d: no effect on the square that changed (%v)", i, sq)
		}
		for s := board.Square(0); s < 64; s++ {
			near := abs(s.File()-sq.File()) <= 1 && abs(s.Rank()-sq.Rank()) <= 1
			if !near && row[s] != 0 {
				t.Errorf("position %d: effect %g on %v, far from the changed square %v", i, row[s], s, sq)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestLogOdds(t *testing.T) {
	logits := []float32{0.5, -1, 2, 3, 0}
	legal := []int{0, 2, 3}
	p := model.LegalSoftmax(logits, legal)
	for k, idx := range legal {
		want := math.Log(float64(p[k]) / (1 - float64(p[k])))
		if got := LogOdds(logits, legal, idx); math.Abs(got-want) > 1e-6 {
			t.Errorf("index %d: %g, want log(p/(1-p)) = %g", idx, got, want)
		}
	}
	if got := LogOdds(logits, []int{3}, 3); !math.IsInf(got, 1) {
		t.Errorf("only legal move: %g, want +Inf", got)
	}
}

func TestPatchingNeedsCorrupted(t *testing.T) {
	r := runtimeFor(t)
	v, _ := Patching.Resolve(nil)
	e, err := NewEngine(r, model.Demo(), []Spec{{Patching, v}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !e.NeedsCorrupt() {
		t.Fatal("NeedsCorrupt is false for patching")
	}
	if _, _, err := e.Run(batchOf(t, board.FillFENOnly)); err == nil {
		t.Fatal("a batch without corrupted positions was accepted")
	}
	if mods, ok := e.Meta()["patching"].(map[string]any)["modules"].([]string); !ok || len(mods) == 0 {
		t.Fatalf("meta %v lacks the module order", e.Meta())
	}
}

// BenchmarkPatchingPerSquareMaia patches the six block outputs of maia-1100 square by square for the four
// test pairs: 6*64*4 patched rows per op.
func BenchmarkPatchingPerSquareMaia(b *testing.B) {
	r := runtimeFor(b)
	n, err := model.Load(testutil.Shared(b, "models/maia-1100.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	batch := patchBatch(b, false)
	v, _ := Patching.Resolve(map[string]string{"per-square": "true"})
	e, err := NewEngine(r, n, []Spec{{Patching, v}}, EngineOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, _, err := e.Run(batch); err != nil {
			b.Fatal(err)
		}
	}
}
