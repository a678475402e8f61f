package lens

import (
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/sae"
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
	return &sae.File{Model: sae.ModelID{Path: n.Path, SHA256: n.SHA256}, Module: "block0/conv2/relu", Shape: []int{4, 8, 8}, Vectors: "square", SAE: s}
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
	for i := range b.Len() {
		black := b.Positions[i].SideToMove() == board.Black
		if black {
			blacks++
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
		"network": func(f *sae.File) { f.Model.SHA256 = strings.Repeat("0", 64) },
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
