package lens

import (
	"math"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestLRPLens runs lrp through the engine on the real nets, alone and in one pass with saliency, and checks
// what the lens adds to the relevance graph (tested in internal/model and autograd): the heatmap is the
// relevance of the current piece planes, laid out by the board (the square holding a piece, in the absolute
// frame, gets the relevance of that piece's plane), results do not depend on sharing the pass with a
// gradient lens, and the relevance is finite and not all zero (its sum is checked in internal/model).
func TestLRPLens(t *testing.T) {
	r := runtimeFor(t)
	for _, net := range []string{"tinygyal-8", "maia-1100"} {
		n, err := model.Load(testutil.Shared(t, "models/"+net+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		for _, rule := range []string{"epsilon", "zplus"} {
			t.Run(net+"/"+rule, func(t *testing.T) {
				b := batchOf(t, board.FillFENOnly)
				raw := map[string]string{"rule": rule, "target": "policy:best"}
				v, err := LRP.Resolve(raw)
				if err != nil {
					t.Fatal(err)
				}
				sv, err := Saliency.Resolve(map[string]string{"target": "value"})
				if err != nil {
					t.Fatal(err)
				}
				alone := runSpecs(t, r, n, b, []Spec{{LRP, v}})
				both := runSpecs(t, r, n, b, []Spec{{Saliency, sv}, {LRP, v}})
				sal := runSpecs(t, r, n, b, []Spec{{Saliency, sv}})
				for _, k := range []string{"relevance", "heatmap"} {
					if !close32(alone[k].Data, both[k].Data, 1e-5) {
						t.Errorf("%s differs when sharing the pass with saliency", k)
					}
				}
				if !close32(sal["saliency"].Data, both["saliency"].Data, 1e-6) {
					t.Error("saliency differs when sharing the pass with lrp")
				}
				rel, heat := alone["relevance"], alone["heatmap"]
				for i, pos := range b.Positions {
					row := rel.Row(i)
					nonzero := false
					for _, x := range row {
						if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
							t.Fatalf("position %d: relevance %g", i, x)
						}
						nonzero = nonzero || x != 0
					}
					if !nonzero {
						t.Errorf("position %d: all relevance zero", i)
					}
					us := pos.SideToMove()
					for s := board.Square(0); s < 64; s++ {
						want := 0.0
						if c, pt, ok := pos.PieceAt(s); ok {
							plane := int(pt) - 1
							if c != us {
								plane += 6
							}
							fs := int(s)
							if us == board.Black {
								fs ^= 56
							}
							want = float64(row[plane*64+fs])
						}
						if got := float64(heat.Row(i)[s]); math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
							t.Errorf("position %d %s: heatmap %g, relevance of its piece plane %g", i, s, got, want)
						}
					}
				}
			})
		}
	}
}

func TestLRPOptions(t *testing.T) {
	r := runtimeFor(t)
	for _, eps := range []string{"0", "-1", "NaN", "+Inf"} {
		v, err := LRP.Resolve(map[string]string{"epsilon": eps})
		if err != nil {
			continue // refused when parsed: fine too
		}
		if _, err := NewEngine(r, model.Demo(), []Spec{{LRP, v}}, EngineOptions{}); err == nil || !strings.Contains(err.Error(), "epsilon") {
			t.Errorf("epsilon %s: got %v, want an error naming epsilon", eps, err)
		}
	}
	a, _ := LRP.Resolve(map[string]string{"rule": "zplus"})
	b, _ := LRP.Resolve(nil)
	if _, err := NewEngine(r, model.Demo(), []Spec{{LRP, a}, {&Lens{Name: "lrp2", Doc: "d", Prepare: LRP.Prepare}, b}}, EngineOptions{}); err == nil {
		t.Error("two relevance passes with different rules accepted")
	}
}

func close32(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol*(1+math.Abs(float64(a[i]))) {
			return false
		}
	}
	return true
}
