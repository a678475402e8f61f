package lens

import (
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/sae"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// demoSAE is an untrained SAE on the demo network's block0/conv2/relu ([4,8,8]) with a non-trivial scale
// and biases.
func demoSAE(t *testing.T) *sae.File {
	t.Helper()
	n := model.Demo()
	s, err := sae.New(4, 12, 3, sae.TopK, 11)
	if err != nil {
		t.Fatal(err)
	}
	s.Scale = 0.7
	for i := range s.BEnc {
		s.BEnc[i] = 0.05 * float32(i%3)
	}
	for i := range s.BDec {
		s.BDec[i] = 0.1 * float32(i)
	}
	return &sae.File{Model: sae.ModelID{Path: n.Path, SHA256: n.SHA256, Graph: n.GraphSHA256}, Module: "block0/conv2/relu", Shape: []int{4, 8, 8}, Vectors: "square", SAE: s}
}

// The lens's features equal a direct float64 top-k of the activation lens's output, square by square in the
// absolute frame.
func TestSAELensMatchesDirectEncoding(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	f := demoSAE(t)
	s := f.SAE
	sv, _ := SAE.Resolve(map[string]string{"sae": "x"})
	WithSAE(sv, f)
	av, _ := Activation.Resolve(map[string]string{"pattern": "^block0/conv2/relu$"})
	e, err := NewEngine(r, n, []Spec{{SAE, sv}, {Activation, av}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(t, 12, 5)
	_, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	get := func(key string) BatchResult {
		for _, r := range res {
			if r.Key == key {
				return r
			}
		}
		t.Fatalf("no result %s", key)
		return BatchResult{}
	}
	act, idx, val := get("block0/conv2/relu_output"), get("block0/conv2/relu_sae_index"), get("block0/conv2/relu_sae_value")
	if got := idx.Shape; len(got) != 2 || got[0] != 64 || got[1] != 3 {
		t.Fatalf("index shape %v, want [64 3]", got)
	}
	blacks := 0
	fvu := get("block0/conv2/relu_sae_fvu")
	for i := range b.Len() {
		black := b.Positions[i].SideToMove() == board.Black
		if black {
			blacks++
		}
		// FVU against the position's own mean (demoSAE has no mean vector), from a float64 reconstruction.
		var mean [4]float64
		for c := range 4 {
			for p := range 64 {
				mean[c] += float64(act.Row(i)[c*64+p]) / 64
			}
		}
		var errSq, total float64
		for a := range 64 {
			p := a
			if black {
				p ^= 56
			}
			var xhat [4]float64
			for c := range 4 {
				xhat[c] = float64(s.BDec[c])
			}
			for q := range 3 {
				if j := int(idx.Row(i)[a*3+q]); j >= 0 {
					for c := range 4 {
						xhat[c] += float64(val.Row(i)[a*3+q]) * float64(s.WDec[j*4+c])
					}
				}
			}
			for c := range 4 {
				x := float64(act.Row(i)[c*64+p])
				d := x - xhat[c]/float64(s.Scale)
				errSq += d * d
				total += (x - mean[c]) * (x - mean[c])
			}
		}
		if want := errSq / total; math.Abs(float64(fvu.Row(i)[0])-want) > 1e-4*math.Max(1, want) {
			t.Errorf("position %d: FVU %v, recomputed %v", i, fvu.Row(i)[0], want)
		}
		for a := range 64 {
			p := a // classical input: the planes' frame is the absolute one mirrored for black
			if black {
				p ^= 56
			}
			type fv struct {
				j int
				v float64
			}
			var pre []fv
			for j := range s.F {
				x := float64(s.BEnc[j])
				for c := range 4 {
					x += (float64(act.Row(i)[c*64+p])*float64(s.Scale) - float64(s.BDec[c])) * float64(s.WEnc[c*s.F+j])
				}
				if x > 0 {
					pre = append(pre, fv{j, x})
				}
			}
			sort.Slice(pre, func(x, y int) bool { return pre[x].v > pre[y].v })
			for q := range 3 {
				gi, gv := idx.Row(i)[a*3+q], val.Row(i)[a*3+q]
				wi, wv := -1.0, 0.0
				if q < len(pre) {
					wi, wv = float64(pre[q].j), pre[q].v
				}
				if float64(gi) != wi || math.Abs(float64(gv)-wv) > 1e-4 {
					t.Fatalf("position %d square %d rank %d: feature %v=%v, want %v=%v", i, a, q, gi, gv, wi, wv)
				}
			}
		}
	}
	if blacks == 0 {
		t.Fatal("no black-to-move position: the frame is not tested")
	}
}

func TestSAELensRefusesOtherNetworkOrModule(t *testing.T) {
	n := model.Demo()
	for name, edit := range map[string]func(f *sae.File){
		"network": func(f *sae.File) { f.Model.SHA256, f.Model.Graph = strings.Repeat("0", 64), strings.Repeat("0", 64) },
		"module":  func(f *sae.File) { f.Module = "block0/conv9" },
		"shape":   func(f *sae.File) { f.Shape = []int{8, 8, 8} },
	} {
		f := demoSAE(t)
		edit(f)
		v, _ := SAE.Resolve(map[string]string{"sae": "x"})
		WithSAE(v, f)
		if err := SAE.Compatible(n, v); err == nil {
			t.Errorf("%s: an SAE of another %s was accepted", name, name)
		}
	}
}

// resultOf finds a result by key.
func resultOf(t *testing.T, res []BatchResult, key string) BatchResult {
	t.Helper()
	for _, r := range res {
		if r.Key == key {
			return r
		}
	}
	t.Fatalf("no result %s", key)
	return BatchResult{}
}

// An SAE that reconstructs exactly (identity dictionary, k = C, a post-ReLU module) patched in changes
// nothing: KL and |dvalue| are 0, so the patched tensor is put back square for square in the module's layout.
// The zero ablation agrees with a patched run built here directly from the plan.
func TestSAEFidelity(t *testing.T) {
	r := runtimeFor(t)
	n := model.Demo()
	f := demoSAE(t)
	s, err := sae.New(4, 4, 4, sae.TopK, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		for j := range 4 {
			v := float32(0)
			if i == j {
				v = 1
			}
			s.WEnc[i*4+j], s.WDec[i*4+j] = v, v
		}
	}
	f.SAE, f.Mean = s, []float32{0.1, 0.2, 0.3, 0.4}
	v, _ := SAE.Resolve(map[string]string{"sae": "x", "fidelity": "true"})
	WithSAE(v, f)
	e, err := NewEngine(r, n, []Spec{{SAE, v}}, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(t, 6, 9)
	out, res, err := e.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	kl, dv := resultOf(t, res, "block0/conv2/relu_sae_kl"), resultOf(t, res, "block0/conv2/relu_sae_dvalue")
	fvu := resultOf(t, res, "block0/conv2/relu_sae_fvu")

	p, input, err := n.PatchPlan("/block0/conv2/relu")
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]float32, b.Len()*4*64)
	raw, err := r.Run(p, map[string]model.Tensor{n.Input: {Shape: []int64{int64(b.Len()), board.NumPlanes, 8, 8}, Data: b.Planes}, input: {Shape: []int64{int64(b.Len()), 4, 8, 8}, Data: zero}}, headTensors(n))
	if err != nil {
		t.Fatal(err)
	}
	h, err := n.DecodeHeads(raw, b.Len())
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Len() {
		if kl.Row(i)[0] > 1e-6 || dv.Row(i)[0] > 1e-6 || fvu.Row(i)[0] > 1e-10 {
			t.Errorf("position %d: exact reconstruction gives KL %g, |dvalue| %g, FVU %g; want 0", i, kl.Row(i)[0], dv.Row(i)[0], fvu.Row(i)[0])
		}
		want := math.Abs(float64(h.ForceValue(i) - out.Heads.ForceValue(i)))
		if math.Abs(float64(dv.Row(i)[1])-want) > 1e-6 {
			t.Errorf("position %d: zero ablation |dvalue| %g, a direct patched run %g", i, dv.Row(i)[1], want)
		}
		_, legal := board.LegalIndicesT(b.Positions[i], 0)
		pp, pq := model.LegalSoftmax(out.Heads.PolicyRow(i), legal), model.LegalSoftmax(h.PolicyRow(i), legal)
		var d float64
		for a := range pp {
			d += float64(pp[a]) * math.Log(float64(pp[a])/float64(pq[a]))
		}
		if math.Abs(float64(kl.Row(i)[1])-d) > 1e-5 || kl.Row(i)[2] < 0 {
			t.Errorf("position %d: zero ablation KL %g, a direct patched run %g", i, kl.Row(i)[1], d)
		}
	}
}

// An SAE trained on a weight file is accepted on its ONNX export: the graph is compared, not the file hash.
func TestSAELensAcceptsTheSameNetInAnotherFormat(t *testing.T) {
	pb, err := model.Load(testutil.Shared(t, "models/maia-1100.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	onnx, err := model.Load(testutil.Shared(t, "models/maia-1100.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sae.New(64, 128, 4, sae.TopK, 1)
	f := &sae.File{Model: sae.ModelID{Path: pb.Path, SHA256: pb.SHA256, Graph: pb.GraphSHA256}, Module: "block3/conv2/relu", Shape: []int{64, 8, 8}, SAE: s}
	v, _ := SAE.Resolve(map[string]string{"sae": "x"})
	WithSAE(v, f)
	if err := SAE.Compatible(onnx, v); err != nil {
		t.Errorf("an SAE of %s refused on %s: %v", pb.Path, onnx.Path, err)
	}
	tiny, err := model.Load(testutil.Shared(t, "models/tinygyal-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := SAE.Compatible(tiny, v); err == nil {
		t.Error("an SAE of maia-1100 accepted on tinygyal-8")
	}
}
