package model

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestReferenceNets checks ONNX Runtime on every real net against lc0's own evaluations of the 35 reference
// positions: policy logits over legal moves, legal-move probabilities, and W/D/L (or q); once as one batch and
// once position by position, which must agree.
func TestReferenceNets(t *testing.T) {
	rt := testRuntime(t)
	for _, path := range refNets(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			n, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			recs := testutil.ReadRefdump(t, refdumpFor(t, path))
			if len(recs) != 35 {
				t.Fatalf("%d reference records, want 35", len(recs))
			}
			batch := make([]float32, 0, len(recs)*Planes*64)
			for _, rec := range recs {
				batch = append(batch, testutil.DecodePlanes(t, rec)...)
			}
			all, err := n.Forward(rt, batch, len(recs))
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range recs {
				checkAgainstLc0(t, n, all, i, rec)
				one, err := n.Forward(rt, testutil.DecodePlanes(t, rec), 1)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(one.Policy, all.PolicyRow(i)); d > 1e-6 {
					t.Errorf("%s: batch and single policy differ by %g", rec.Name, d)
				}
				if d := math.Abs(float64(one.ForceValue(0) - all.ForceValue(i))); d > 1e-6 {
					t.Errorf("%s: batch and single value differ by %g", rec.Name, d)
				}
				if all.WDL != nil {
					if d := maxDiff(one.WDL, all.WDL[3*i:3*i+3]); d > 1e-6 {
						t.Errorf("%s: batch and single wdl differ by %g", rec.Name, d)
					}
				}
			}
		})
	}
}

// TestSyntheticNets runs the same comparison on lc0's random-weight nets for attention bodies, attention
// policies and moves-left heads (their planes come canonicalized in the refdump).
func TestSyntheticNets(t *testing.T) {
	rt := testRuntime(t)
	sh := sharedDir(t)
	paths, _ := filepath.Glob(filepath.Join(sh, "models", "synthetic", "*.onnx"))
	if len(paths) == 0 {
		testutil.Missing(t, "no synthetic nets in %s/models/synthetic", sh)
	}
	for _, path := range paths {
		base := strings.TrimSuffix(filepath.Base(path), ".onnx")
		t.Run(base, func(t *testing.T) {
			n, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if n.Heads.MLH == "" || n.Heads.WDL == "" {
				t.Fatalf("heads %+v: want wdl and mlh", n.Heads)
			}
			recs := testutil.ReadRefdump(t, filepath.Join(sh, "reference", "lc0", "synthetic", base+".refdump.jsonl.gz"))
			checked := 0
			for _, rec := range recs {
				if rec.Error != "" {
					continue
				}
				out, err := n.Forward(rt, testutil.DecodePlanes(t, rec), 1)
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstLc0(t, n, out, 0, rec)
				if rec.M == nil {
					t.Fatalf("%s: no m in reference", rec.Name)
				}
				if d := math.Abs(float64(out.MLH[0]) - *rec.M); d > 1e-4 {
					t.Errorf("%s: mlh %g, lc0 %g", rec.Name, out.MLH[0], *rec.M)
				}
				checked++
			}
			if checked < 29 {
				t.Errorf("only %d records checked", checked)
			}
		})
	}
}

func checkAgainstLc0(t *testing.T, n *Network, h *HeadOutputs, i int, rec testutil.RefRecord) {
	t.Helper()
	logits := h.PolicyRow(i)
	if len(rec.Policy) != PolicySize {
		t.Fatalf("%s: %d reference logits", rec.Name, len(rec.Policy))
	}
	idx := make([]int, len(rec.LegalMoves))
	for k, mv := range rec.LegalMoves {
		idx[k] = mv.NNIndex
		if d := math.Abs(float64(logits[mv.NNIndex]) - mv.Logit); d > 1e-4 {
			t.Errorf("%s %s: logit %g, lc0 %g", rec.Name, mv.UCI, logits[mv.NNIndex], mv.Logit)
		}
	}
	probs := LegalSoftmax(logits, idx)
	for k, mv := range rec.LegalMoves {
		if d := math.Abs(float64(probs[k]) - mv.PExact); d > 1e-5 {
			t.Errorf("%s %s: p %g, lc0 %g", rec.Name, mv.UCI, probs[k], mv.PExact)
		}
	}
	switch {
	case n.Heads.WDL != "":
		w, d, l := h.WDL[3*i], h.WDL[3*i+1], h.WDL[3*i+2]
		if math.Abs(float64(w)-rec.W) > 1e-5 || math.Abs(float64(d)-rec.D) > 1e-5 || math.Abs(float64(l)-rec.L) > 1e-5 {
			t.Errorf("%s: wdl %v, lc0 %v", rec.Name, []float32{w, d, l}, []float64{rec.W, rec.D, rec.L})
		}
	case n.Heads.Value != "":
		if math.Abs(float64(h.Value[i])-rec.Q) > 1e-5 {
			t.Errorf("%s: value %g, lc0 q %g", rec.Name, h.Value[i], rec.Q)
		}
	default:
		t.Fatal("no value head")
	}
	if d := math.Abs(float64(h.ForceValue(i)) - rec.Q); d > 2e-5 {
		t.Errorf("%s: force value %g, lc0 q %g", rec.Name, h.ForceValue(i), rec.Q)
	}
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func ExampleLegalSoftmax() {
	p := LegalSoftmax([]float32{0, 1, 2, 3}, []int{1, 3})
	fmt.Printf("%.4f %.4f\n", p[0], p[1])
	// Output: 0.1192 0.8808
}
