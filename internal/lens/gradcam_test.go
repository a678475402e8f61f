package lens

import (
	"math"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestGradCAMEqualsFormula runs activation, gradient and gradcam in one pass and applies Grad-CAM's
// formula to the first two lenses' outputs: ReLU(sum_c mean_squares(grad_c) * act_c), squares mapped to
// the absolute frame (classical planes: ranks mirrored when black is to move).
func TestGradCAMEqualsFormula(t *testing.T) {
	r := runtimeFor(t)
	for _, c := range []struct{ net, pattern, target string }{
		{"maia-1100", `^block[05]/conv2/relu$`, "value"},
		{"maia-1100", `^block3/conv2/relu$`, "policy:best"},
		{"synthetic/ab_pemap_classical", "", "wdl:w"}, // encoder outputs, [batch*64,C]
	} {
		t.Run(c.net+"/"+c.target, func(t *testing.T) {
			n, err := model.Load(testutil.Shared(t, "models/"+c.net+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			pattern := c.pattern
			if pattern == "" {
				pattern = DefaultActivationPattern
			}
			av, _ := Activation.Resolve(map[string]string{"pattern": pattern})
			gv, _ := Gradient.Resolve(map[string]string{"pattern": pattern, "target": c.target})
			cv, _ := GradCAM.Resolve(map[string]string{"pattern": c.pattern, "target": c.target})
			b := batchOf(t, board.FillFENOnly)
			res := runSpecs(t, r, n, b, []Spec{{Activation, av}, {Gradient, gv}, {GradCAM, cv}})
			maps := 0
			for key, cam := range res {
				mod, ok := strings.CutSuffix(key, "_gradcam")
				if !ok {
					continue
				}
				maps++
				act, grad := res[mod+"_output"], res[mod+"_output_grad"]
				chw := len(act.Shape) == 3 && act.Shape[1] == 8 // [C,8,8]; else [64,C]
				rowLen := act.RowSize()
				C := rowLen / 64
				var worst, scale float64
				for i := 0; i < b.Len(); i++ {
					a, g := act.Row(i), grad.Row(i)
					val := func(x []float32, ch, sq int) float64 {
						if chw {
							return float64(x[ch*64+sq])
						}
						return float64(x[sq*C+ch])
					}
					for sq := 0; sq < 64; sq++ {
						var s float64
						for ch := 0; ch < C; ch++ {
							var mean float64
							for q := 0; q < 64; q++ {
								mean += val(g, ch, q)
							}
							s += mean / 64 * val(a, ch, sq)
						}
						want := math.Max(s, 0)
						abs := sq
						if b.Positions[i].SideToMove() == board.Black {
							abs = (7-sq/8)*8 + sq%8
						}
						got := float64(cam.Row(i)[abs])
						worst, scale = math.Max(worst, math.Abs(got-want)), math.Max(scale, math.Abs(want))
					}
				}
				if scale == 0 {
					t.Errorf("%s: every map is 0", key)
				}
				if worst > 1e-5*scale {
					t.Errorf("%s: differs from the formula by %.3g (max %.3g)", key, worst, scale)
				}
				t.Logf("%s: max |gradcam - formula| %.2g, max map %.2g", key, worst, scale)
			}
			if maps == 0 {
				t.Fatal("no gradcam result")
			}
		})
	}
}

// TestGradCAMRefusesFlatModules checks that a module without a square axis is refused by name.
func TestGradCAMRefusesFlatModules(t *testing.T) {
	n, err := model.Load(testutil.Shared(t, "models/maia-1100.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var flat string
	for _, m := range n.Modules {
		if m.Shape != nil && squareLayout(m.Shape, 1) == layoutNone && len(m.Shape) == 2 {
			flat = m.Name
			break
		}
	}
	if flat == "" {
		t.Skip("maia-1100 has no module without a square axis")
	}
	v, _ := GradCAM.Resolve(map[string]string{"pattern": "^" + flat + "$"})
	if err := GradCAM.Compatible(n, v); err == nil || !strings.Contains(err.Error(), flat) {
		t.Errorf("module %s: %v", flat, err)
	}
}
