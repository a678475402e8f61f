package lens

import (
	"math"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// patchedValue runs n with module m's batch activation replaced by act, directly through the patch plan,
// and returns the force value per position: the patching computation, written out independently.
func patchedValue(t *testing.T, r *model.SessionCache, n *model.Network, b *Batch, m string, act model.Tensor) []float32 {
	t.Helper()
	p, input, err := n.PatchPlan(m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(p, map[string]model.Tensor{n.Input: planesTensor(b.Planes, b.Len()), input: act}, headTensors(n))
	if err != nil {
		t.Fatal(err)
	}
	h, err := n.DecodeHeads(res, b.Len())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, b.Len())
	for i := range out {
		out[i] = h.ForceValue(i)
	}
	return out
}

// TestAblationZeroIsPatchingWithZeros checks zero ablation (whole modules, then channels 1-2 on e4 and d5)
// against running the patch plan on the clean activation with those values set to zero by hand.
func TestAblationZeroIsPatchingWithZeros(t *testing.T) {
	r := runtimeFor(t)
	b := patchBatch(t, true)
	moved := map[bool]bool{} // by whether a selection was given, over all networks
	for _, n := range patchNetworks(t) {
		mods, err := n.Select(DefaultActivationPattern)
		if err != nil {
			t.Fatal(err)
		}
		acts := runLens(t, r, n, b, Activation, nil)
		fwd, err := n.Forward(r, b.Planes, b.Len())
		if err != nil {
			t.Fatal(err)
		}
		for _, sel := range []map[string]string{nil, {"channels": "1-2", "squares": "e4,d5"}} {
			got := runLens(t, r, n, b, Ablation, sel)["effects"]
			for k, m := range mods {
				a := acts[moduleKey(m.Tensor)+"_output"]
				zero := model.Tensor{Shape: append([]int64{int64(b.Len())}, int64sOf(a.Shape)...), Data: make([]float32, len(a.Data))}
				if len(a.Shape) == 2 && a.Shape[0] == 64 { // folded [batch*64,C]
					zero.Shape = []int64{int64(b.Len() * 64), int64(a.Shape[1])}
				}
				if sel != nil {
					copy(zero.Data, a.Data)
					for i, pos := range b.Positions {
						for _, name := range []string{"e4", "d5"} {
							sq, _ := board.ParseSquare(name)
							if pos.SideToMove() == board.Black {
								sq ^= 56 // the planes' frame (no canonical transform here)
							}
							for _, c := range []int{1, 2} {
								row := a.Row(i)
								idx := c*64 + int(sq) // [C,8,8]
								if len(a.Shape) != 3 || a.Shape[1] != 8 {
									idx = int(sq)*(len(row)/64) + c // [64,C]
								}
								zero.Data[i*len(row)+idx] = 0
							}
						}
					}
				}
				want := patchedValue(t, r, n, b, m.Tensor, zero)
				for i := range b.Positions {
					w := want[i] - fwd.ForceValue(i)
					if math.Abs(float64(w)) > 1e-4 {
						moved[sel != nil] = true
					}
					if g := got.Row(i)[k]; math.Abs(float64(g-w)) > 1e-5 {
						t.Errorf("%s %v %s position %d: effect %g, patching with zeros %g", n.Path, sel, m.Name, i, g, w)
					}
				}
			}
		}
	}
	if !moved[false] || !moved[true] {
		t.Errorf("no ablation moved the value (whole modules %v, selections %v): the test proves nothing", moved[false], moved[true])
	}
}

func int64sOf(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

// TestAblationMeanOfOnePositionIsPatching checks mean ablation over a one-position reference set, and
// resampling that position, against the patching lens with that position as every corrupted counterpart.
func TestAblationMeanOfOnePositionIsPatching(t *testing.T) {
	r := runtimeFor(t)
	const refFEN = "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2"
	for _, n := range patchNetworks(t) {
		b := patchBatch(t, true)
		ref := &Batch{}
		g, err := board.ParseGame(refFEN, "")
		if err != nil {
			t.Fatal(err)
		}
		planes := make([]float32, board.NumPlanes*64)
		g.Encode(board.FillFENOnly, planes)
		ref.Positions, ref.Planes = []*board.Position{g.Current()}, planes
		b.CorruptPositions, b.CorruptPlanes = nil, nil
		for range b.Positions {
			b.CorruptPositions = append(b.CorruptPositions, g.Current())
			b.CorruptPlanes = append(b.CorruptPlanes, planes...)
		}
		want := runLens(t, r, n, b, Patching, nil)["effects"]

		v, err := Ablation.Resolve(map[string]string{"mean-from": "one.fen"})
		if err != nil {
			t.Fatal(err)
		}
		mods, err := AblationModules(n, v)
		if err != nil {
			t.Fatal(err)
		}
		acts := runLens(t, r, n, ref, Activation, nil)
		means := map[string][]float32{}
		for _, m := range mods {
			means[m.Tensor] = acts[moduleKey(m.Tensor)+"_output"].Data
		}
		WithAblationMeans(v, means)
		mean := runSpecs(t, r, n, b, []Spec{{Ablation, v}})["effects"]
		resample := runLens(t, r, n, b, Ablation, map[string]string{"resample-fen": refFEN})["effects"]
		for k := range want.Data {
			if math.Abs(float64(mean.Data[k]-want.Data[k])) > 1e-5 || math.Abs(float64(resample.Data[k]-want.Data[k])) > 1e-5 {
				t.Fatalf("%s effect %d: mean %g, resample %g, patching %g", n.Path, k, mean.Data[k], resample.Data[k], want.Data[k])
			}
		}
	}
}
