package lens

import (
	"math"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

func attentionNet(t testing.TB, name string) *model.Network {
	t.Helper()
	n, err := model.Load(testutil.Shared(t, "models/synthetic/"+name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// refTransformBatch encodes the transform references' positions in input format f, keeping those whose
// transform is in want (two of each at most), and checks our transform against lc0's.
func refTransformBatch(t *testing.T, f board.InputFormat, want map[int]bool) *Batch {
	t.Helper()
	b := &Batch{Format: f}
	count := map[int]int{}
	for _, rec := range testutil.ReadRefdump(t, testutil.Shared(t, "reference/lc0/transforms/ab_mh_dense_hecto.refdump.jsonl.gz")) {
		if rec.Error != "" || !want[rec.Transform] || count[rec.Transform] == 2 {
			continue
		}
		g, err := board.ParseGame(rec.FENStart, strings.Join(rec.MovesFromFEN, " "))
		if err != nil {
			continue // Chess960 castling, which the board package does not support
		}
		planes := make([]float32, board.NumPlanes*64)
		tr := g.EncodeFormat(f, board.FillFENOnly, planes)
		if tr != rec.Transform {
			t.Fatalf("%s: transform %d, lc0 %d", rec.Name, tr, rec.Transform)
		}
		count[tr]++
		b.Positions = append(b.Positions, g.Current())
		b.Planes = append(b.Planes, planes...)
		b.Transforms = append(b.Transforms, tr)
	}
	for tr := range want {
		if count[tr] == 0 {
			t.Fatalf("no reference position with transform %d", tr)
		}
	}
	return b
}

// planesOf maps an absolute square to the planes' frame as the synthetic nets' README describes it, written
// out independently of the board package: the rank mirror for black, then flip files (1), mirror ranks (2),
// transpose a1<->h8 (4).
func planesOf(abs int, black bool, transform int) int {
	if black {
		abs ^= 56
	}
	f, r := abs%8, abs/8
	if transform&1 != 0 {
		f = 7 - f
	}
	if transform&2 != 0 {
		r = 7 - r
	}
	if transform&4 != 0 {
		f, r = 7-r, 7-f
	}
	return r*8 + f
}

// TestAttentionPatterns checks, on positions with transforms 0, 1 and transposing ones, that every query's
// attention sums to 1 over keys and that the lens's pattern is the activation capture of the softmax
// module with both square axes moved to the absolute frame.
func TestAttentionPatterns(t *testing.T) {
	r := runtimeFor(t)
	n := attentionNet(t, "ab_mh_dense_hecto")
	b := refTransformBatch(t, board.InputCanonicalHectoplies, map[int]bool{0: true, 1: true, 4: true, 5: true})
	got := runLens(t, r, n, b, Attention, nil)
	acts := runLens(t, r, n, b, Activation, map[string]string{"pattern": DefaultAttentionPattern})
	mods, _ := n.Select(DefaultAttentionPattern)
	if len(mods) != 2 {
		t.Fatalf("%d attention modules, want 2", len(mods))
	}
	for _, m := range mods {
		att, raw := got[moduleKey(m.Tensor)+"_attention"], acts[moduleKey(m.Tensor)+"_output"]
		heads := att.Shape[0]
		for i, pos := range b.Positions {
			a, x := att.Row(i), raw.Row(i)
			black := pos.SideToMove() == board.Black
			for h := range heads {
				for q := range 64 {
					var sum float64
					for k := range 64 {
						sum += float64(a[h*4096+q*64+k])
						want := x[h*4096+planesOf(q, black, b.Transforms[i])*64+planesOf(k, black, b.Transforms[i])]
						if a[h*4096+q*64+k] != want {
							t.Fatalf("%s position %d (transform %d) head %d query %d key %d: %g, capture %g", m.Name, i, b.Transforms[i], h, q, k, a[h*4096+q*64+k], want)
						}
					}
					if math.Abs(sum-1) > 1e-5 {
						t.Fatalf("%s position %d head %d query %d: row sums to %g", m.Name, i, h, q, sum)
					}
				}
			}
		}
	}
}

// TestAttentionAttributionAndTop checks the attribution against attention times the gradient lens's
// gradient of the same module, and that the top pairs are the largest attributions.
func TestAttentionAttributionAndTop(t *testing.T) {
	r := runtimeFor(t)
	n := attentionNet(t, "ab_pemap_classical")
	b := batchOf(t, board.FillFENOnly)
	got := runLens(t, r, n, b, Attention, map[string]string{"attribution": "grad", "top-pairs": "3", "pattern": "encoder1/mha/QK/softmax$"})
	grads := runLens(t, r, n, b, Gradient, map[string]string{"pattern": "encoder1/mha/QK/softmax$"})
	const key = "encoder1/mha/QK/softmax"
	att, attr, g := got[key+"_attention"], got[key+"_attribution"], grads[key+"_output_grad"]
	var nonzero bool
	for i, pos := range b.Positions {
		black := pos.SideToMove() == board.Black
		for h := range att.Shape[0] {
			var best float32
			for q := range 64 {
				for k := range 64 {
					j := h*4096 + q*64 + k
					want := att.Row(i)[j] * g.Row(i)[h*4096+planesOf(q, black, 0)*64+planesOf(k, black, 0)]
					if d := math.Abs(float64(attr.Row(i)[j] - want)); d > 1e-6+1e-4*math.Abs(float64(want)) {
						t.Fatalf("position %d head %d (%d,%d): attribution %g, attention x gradient %g", i, h, q, k, attr.Row(i)[j], want)
					}
					best = max(best, abs32(want))
					nonzero = nonzero || want != 0
				}
			}
			top := got[key+"_top"].JSON[i].([][]PairWeight)[h]
			if len(top) != 3 || abs32(top[0].Weight) != best {
				t.Fatalf("position %d head %d: top pairs %v, largest |attribution| %g", i, h, top, best)
			}
		}
	}
	if !nonzero {
		t.Fatal("every attribution is zero: the test proves nothing")
	}
}
