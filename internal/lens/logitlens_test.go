package lens

import (
	"math"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestLogitLensLastLayerIsPredict checks the logit lens's last layer against a plain forward pass of the
// network (what `predict` reports): the same value, the final move's probability and no divergence; and
// that the readings differ between layers, so the decoding really reads each layer.
func TestLogitLensLastLayerIsPredict(t *testing.T) {
	r := runtimeFor(t)
	nets := []*model.Network{model.Demo()}
	for _, name := range []string{"maia-1100", "synthetic/ab_pemap_classical"} {
		n, err := model.Load(testutil.Shared(t, "models/"+name+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	b := batchOf(t, board.FillFENOnly)
	for _, n := range nets {
		got := runLens(t, r, n, b, LogitLens, nil)
		fwd, err := n.Forward(r, b.Planes, b.Len())
		if err != nil {
			t.Fatal(err)
		}
		L := got["layer_value"].Shape[0]
		mods, _ := n.Select(DefaultActivationPattern)
		if L != len(mods) {
			t.Fatalf("%s: %d layers, want %d", n.Path, L, len(mods))
		}
		differ := L == 1
		for i, pos := range b.Positions {
			moves, legal := board.LegalIndices(pos)
			p := model.LegalSoftmax(fwd.PolicyRow(i), legal)
			best := argmax(p)
			v := got["layer_value"].Row(i)
			fp := got["layer_final_move_p"].Row(i)
			kl := got["layer_kl"].Row(i)
			if d := math.Abs(float64(v[L-1] - fwd.ForceValue(i))); d > 1e-5 {
				t.Errorf("%s position %d: last-layer value %g, forward %g", n.Path, i, v[L-1], fwd.ForceValue(i))
			}
			if d := math.Abs(float64(fp[L-1] - p[best])); d > 1e-5 {
				t.Errorf("%s position %d: last-layer p(final move) %g, forward %g", n.Path, i, fp[L-1], p[best])
			}
			if math.Abs(float64(kl[L-1])) > 1e-5 {
				t.Errorf("%s position %d: last-layer KL %g, want 0", n.Path, i, kl[L-1])
			}
			layers := got["layers"].JSON[i].([]LayerReading)
			if top := layers[L-1].TopMove; top != moves[best].UCI() {
				t.Errorf("%s position %d: last-layer top move %s, forward %s", n.Path, i, top, moves[best].UCI())
			}
			for k := 0; k < L-1; k++ {
				if kl[k] > 1e-3 && math.Abs(float64(v[k]-v[L-1])) > 1e-4 {
					differ = true
				}
			}
		}
		if !differ {
			t.Errorf("%s: every layer reads like the last: the lens does not decode the layers", n.Path)
		}
	}
}
