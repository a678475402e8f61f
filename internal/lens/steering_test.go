package lens

import (
	"math"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
)

func steeringValues(t *testing.T, raw map[string]string, dir []float32) Values {
	t.Helper()
	raw["direction"] = "dir.npy"
	v, err := Steering.Resolve(raw)
	if err != nil {
		t.Fatal(err)
	}
	WithDirection(v, dir, nil)
	return v
}

// TestSteeringAlphaZeroChangesNothing steers with a random direction times zero: the heads are the
// network's own; and with alpha 3 they move.
func TestSteeringAlphaZeroChangesNothing(t *testing.T) {
	r := runtimeFor(t)
	b := batchOf(t, board.FillFENOnly)
	for _, n := range patchNetworks(t)[1:] {
		mods, _ := n.Select(DefaultActivationPattern)
		m := mods[len(mods)/2]
		row := 1
		for _, d := range m.Shape {
			row *= int(d)
		}
		dir := make([]float32, row)
		for k := range dir {
			dir[k] = float32(math.Sin(float64(k)))
		}
		zero := runSpecs(t, r, n, b, []Spec{{Steering, steeringValues(t, map[string]string{"module": m.Name, "alpha": "0"}, dir)}})
		for i := range b.Positions {
			if dv, kl := zero["delta_value"].Data[i], zero["kl"].Data[i]; math.Abs(float64(dv)) > 1e-6 || math.Abs(float64(kl)) > 1e-6 {
				t.Errorf("%s position %d: alpha 0 moved the value by %g, the policy by KL %g", n.Path, i, dv, kl)
			}
		}
		three := runSpecs(t, r, n, b, []Spec{{Steering, steeringValues(t, map[string]string{"module": m.Name, "alpha": "3"}, dir)}})
		if three["kl"].Data[0] < 1e-4 {
			t.Errorf("%s: alpha 3 left the policy as it was (KL %g)", n.Path, three["kl"].Data[0])
		}
	}
}

// TestSteeringByCorruptMinusCleanIsPatching steers each clean position by its corrupted counterpart's
// activation minus its own at one module, alpha 1: the value moves by the patching lens's effect there;
// with --squares (the removed piece's square) by per-square patching's effect at that square.
func TestSteeringByCorruptMinusCleanIsPatching(t *testing.T) {
	r := runtimeFor(t)
	full := patchBatch(t, false)
	plane := board.NumPlanes * 64
	for _, n := range patchNetworks(t) {
		mods, _ := n.Select(DefaultActivationPattern)
		k := len(mods) / 2
		m := mods[k]
		for i := range full.Positions {
			b := &Batch{Positions: full.Positions[i : i+1], Planes: full.Planes[i*plane : (i+1)*plane],
				CorruptPositions: full.CorruptPositions[i : i+1], CorruptPlanes: full.CorruptPlanes[i*plane : (i+1)*plane]}
			want := runLens(t, r, n, b, Patching, map[string]string{"per-square": "true"})["effects"].Row(0)
			clean := runLens(t, r, n, b, Activation, nil)[moduleKey(m.Tensor)+"_output"].Data
			cb := &Batch{Positions: b.CorruptPositions, Planes: b.CorruptPlanes}
			corrupt := runLens(t, r, n, cb, Activation, nil)[moduleKey(m.Tensor)+"_output"].Data
			dir := make([]float32, len(clean))
			for j := range dir {
				dir[j] = corrupt[j] - clean[j]
			}
			whole := runLens(t, r, n, b, Patching, nil)["effects"].Data[k]
			got := runSpecs(t, r, n, b, []Spec{{Steering, steeringValues(t, map[string]string{"module": m.Name}, dir)}})["delta_value"].Data[0]
			if math.Abs(float64(got-whole)) > 1e-5 {
				t.Errorf("%s pair %d %s: steering moved the value by %g, patching %g", n.Path, i, m.Name, got, whole)
			}
			sq := removedSquare(t, b.Positions[0], b.CorruptPositions[0])
			got = runSpecs(t, r, n, b, []Spec{{Steering, steeringValues(t, map[string]string{"module": m.Name, "squares": sq.String()}, dir)}})["delta_value"].Data[0]
			if w := want[k*64+int(sq)]; math.Abs(float64(got-w)) > 1e-5 {
				t.Errorf("%s pair %d %s on %s: steering moved the value by %g, per-square patching %g", n.Path, i, m.Name, sq, got, w)
			}
		}
	}
}
