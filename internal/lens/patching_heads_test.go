package lens

import (
	"math"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// TestPatchingHeads patches one attention head (whole, then one query square of it) with the corrupted
// run's and checks the effect against the patch plan run on an activation assembled by hand: the clean
// softmax capture with that head's block (or that query row) copied from the corrupted capture.
func TestPatchingHeads(t *testing.T) {
	r := runtimeFor(t)
	n := attentionNet(t, "ab_pemap_classical")
	b := patchBatch(t, false)
	cb := &Batch{Positions: b.CorruptPositions, Planes: b.CorruptPlanes}
	const mod = "encoder1/mha/QK/softmax"
	m, _ := n.Module(mod)
	pattern := map[string]string{"pattern": "^" + mod + "$"}
	clean := runLens(t, r, n, b, Activation, pattern)[mod+"_output"]
	corrupt := runLens(t, r, n, cb, Activation, pattern)[mod+"_output"]
	fwd, err := n.Forward(r, b.Planes, b.Len())
	if err != nil {
		t.Fatal(err)
	}
	const head = 2
	whole := runLens(t, r, n, b, Patching, map[string]string{"pattern": "^" + mod + "$", "heads": "2"})["effects"]
	perSq := runLens(t, r, n, b, Patching, map[string]string{"pattern": "^" + mod + "$", "heads": "2", "per-square": "true"})["effects"]
	act := func(rows func(i int, dst, src []float32)) []float32 {
		data := append([]float32(nil), clean.Data...)
		for i := range b.Positions {
			rows(i, data[i*clean.RowSize():(i+1)*clean.RowSize()], corrupt.Row(i))
		}
		return data
	}
	shape := []int64{int64(b.Len()), 4, 64, 64}
	want := patchedValue(t, r, n, b, m.Tensor, tensorOf(shape, act(func(_ int, dst, src []float32) {
		copy(dst[head*4096:(head+1)*4096], src[head*4096:(head+1)*4096])
	})))
	moved := false
	for i := range b.Positions {
		w := want[i] - fwd.ForceValue(i)
		moved = moved || math.Abs(float64(w)) > 1e-5
		if g := whole.Row(i)[0]; math.Abs(float64(g-w)) > 1e-5 {
			t.Errorf("position %d: head %d patched: effect %g, by hand %g", i, head, g, w)
		}
	}
	if !moved {
		t.Error("patching the head moved nothing: the test proves nothing")
	}
	// One query square: the piece square the corrupted position lacks, in the planes' frame (no transform).
	want = patchedValue(t, r, n, b, m.Tensor, tensorOf(shape, act(func(i int, dst, src []float32) {
		q := planesOf(int(removedSquare(t, b.Positions[i], b.CorruptPositions[i])), b.Positions[i].SideToMove() == board.Black, 0)
		o := head*4096 + q*64
		copy(dst[o:o+64], src[o:o+64])
	})))
	for i := range b.Positions {
		sq := removedSquare(t, b.Positions[i], b.CorruptPositions[i])
		if g, w := perSq.Row(i)[int(sq)], want[i]-fwd.ForceValue(i); math.Abs(float64(g-w)) > 1e-5 {
			t.Errorf("position %d: head %d query %s patched: effect %g, by hand %g", i, head, sq, g, w)
		}
	}
}

func tensorOf(shape []int64, data []float32) model.Tensor {
	return model.Tensor{Shape: shape, Data: data}
}
