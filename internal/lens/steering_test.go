package lens

import (
	"math"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/sae"
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

// TestSteeringSAEFeatureIsItsScaledDecoderRow steers by an SAE feature and by the vector W_dec[i]/scale
// given as a direction: the same heads, on all squares and on one; the raw row (scale ignored) moves them
// otherwise. A feature out of range, another module and another network are refused.
func TestSteeringSAEFeatureIsItsScaledDecoderRow(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	f := demoSAE(t) // input scale 0.7
	s := f.SAE
	b := batchOf(t, board.FillFENOnly)
	const j = 5
	scaled, raw := make([]float32, s.C), make([]float32, s.C)
	for c := range s.C {
		raw[c] = s.WDec[j*s.C+c]
		scaled[c] = float32(float64(raw[c]) / 0.7)
	}
	bySAE := func(opts map[string]string) map[string]BatchResult {
		opts["sae"], opts["feature"] = "sae-dir", "5"
		v, err := Steering.Resolve(opts)
		if err != nil {
			t.Fatal(err)
		}
		WithSAE(v, f)
		return runSpecs(t, r, n, b, []Spec{{Steering, v}})
	}
	for _, sq := range []string{"", "e4,d5"} {
		opts := map[string]string{"module": f.Module, "alpha": "0.3", "squares": sq}
		got := bySAE(map[string]string{"alpha": "0.3", "squares": sq})
		want := runSpecs(t, r, n, b, []Spec{{Steering, steeringValues(t, opts, scaled)}})
		unscaled := runSpecs(t, r, n, b, []Spec{{Steering, steeringValues(t, map[string]string{"module": f.Module, "alpha": "0.3", "squares": sq}, raw)}})
		moved := false
		for _, key := range []string{"value_after", "delta_value", "kl"} {
			for i := range b.Positions {
				g, w, u := got[key].Data[i], want[key].Data[i], unscaled[key].Data[i]
				if math.Abs(float64(g-w)) > 1e-6 {
					t.Errorf("squares %q position %d: %s %g by the SAE feature, %g by W_dec[%d]/scale", sq, i, key, g, w, j)
				}
				moved = moved || math.Abs(float64(g-u)) > 1e-4
			}
		}
		if !moved {
			t.Errorf("squares %q: the raw decoder row steers as the scaled one: the test cannot see the scale", sq)
		}
	}
	other := *f
	other.Model.Graph = strings.Repeat("0", 64)
	for name, tc := range map[string]struct {
		f    *sae.File
		opts map[string]string
		want string
	}{
		"feature out of range": {f, map[string]string{"feature": "12"}, "has 12 features (0 to 11)"},
		"no feature":           {f, map[string]string{}, "no feature"},
		"other module":         {f, map[string]string{"feature": "1", "module": "block1/conv2/relu"}, "trained on module"},
		"other network":        {&other, map[string]string{"feature": "1"}, "trained on"},
	} {
		tc.opts["sae"] = "sae-dir"
		v, err := Steering.Resolve(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		WithSAE(v, tc.f)
		if err := Steering.Compatible(n, v); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Compatible said %v, want an error with %q", name, err, tc.want)
		}
	}
}
