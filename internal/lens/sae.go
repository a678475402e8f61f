package lens

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/sae"
)

// saeKey holds, in the sae lens's Values, the SAE directory named by its "sae" option once the caller has
// read it (WithSAE): a lens reads no files.
const saeKey = "sae_file"

// WithSAE gives the sae lens's values v the SAE f that the caller loaded from v's "sae" path.
func WithSAE(v Values, f *sae.File) { v[saeKey] = f }

// SAE encodes a module's activations with a sparse autoencoder trained by `lczerolens sae train`.
var SAE = &Lens{
	Name: "sae",
	Doc:  "Sparse autoencoder features of a module (--sae SAEDIR from `lczerolens sae train`): <module>_sae_index and _sae_value per square, <module>_sae_fvu (against the mean training vector).",
	Options: []Option{
		{Name: "sae", Kind: String, Default: "", Help: "SAE directory written by \"lczerolens sae train\""},
		{Name: "fidelity", Kind: Bool, Default: "false", Help: "also patch the module with its reconstruction, zero and the mean (3 runs): <module>_sae_kl and _sae_dvalue [3]"},
	},
	Compatible: func(n *model.Network, v Values) error {
		_, _, err := saeFor(n, v)
		return err
	},
	Prepare: prepareSAE,
}

// saeFor returns the loaded SAE and its module, checking that it was trained on n's module of the same shape.
func saeFor(n *model.Network, v Values) (*sae.File, model.Module, error) {
	path := v.GetString("sae")
	if path == "" {
		return nil, model.Module{}, errors.New("no SAE: pass --sae SAEDIR (train one with `lczerolens sae train`)")
	}
	f, _ := v[saeKey].(*sae.File)
	if f == nil {
		return nil, model.Module{}, fmt.Errorf("sae: %s was not loaded: the caller must read it and pass it with WithSAE", path)
	}
	if !n.Matches(f.Model.SHA256, f.Model.Graph) {
		return nil, model.Module{}, fmt.Errorf("sae: %s was trained on %s (graph sha256 %.12s), not on this network (graph sha256 %.12s)", path, f.Model.Path, f.Model.Graph, n.GraphSHA256)
	}
	m, ok := n.Module(f.Module)
	if !ok {
		return nil, model.Module{}, fmt.Errorf("sae: %s: module %s not in the network", path, f.Module)
	}
	if m.Shape != nil {
		want := make([]int, 0, len(m.Shape))
		for _, s := range m.Shape[1:] {
			want = append(want, int(s))
		}
		if !slices.Equal(want, f.Shape) && !(len(f.Shape) == 2 && f.Shape[0] == 64 && len(want) == 1) {
			return nil, model.Module{}, fmt.Errorf("sae: %s: module %s has shape %v, the SAE was trained on %v", path, f.Module, want, f.Shape)
		}
	}
	return f, m, nil
}

func prepareSAE(n *model.Network, v Values) (*Prep, error) {
	if v.GetBool("fidelity") {
		if _, _, err := saeFor(n, v); err != nil {
			return nil, err
		}
	}
	f, m, err := saeFor(n, v)
	if err != nil {
		return nil, err
	}
	s := f.SAE
	key := moduleKey(m.Tensor)
	keys := []string{key + "_sae_index", key + "_sae_value", key + "_sae_fvu"}
	if v.GetBool("fidelity") {
		keys = append(keys, key+"_sae_kl", key+"_sae_dvalue")
	}
	return &Prep{
		Hooks: []string{m.Tensor},
		Keys:  keys,
		Meta:  map[string]any{"module": f.Module, "features": s.F, "k": s.K, "activation": s.Activation, "squares": "absolute frame, a1=0..h8=63"},
		Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
			t, ok := out.Tensors[m.Tensor]
			if !ok {
				return nil, fmt.Errorf("module %s was not returned by the run", m.Tensor)
			}
			bn := b.Len()
			shape := rowShape(t.Shape, bn)
			rowLen := len(t.Data) / bn
			enc := s.NewEncoder()
			var vecs []float32
			var idx, val, fvu []float32
			per := 0
			for i := range bn {
				var nv, c int
				vecs, nv, c, err = SquareVectors(shape, t.Data[i*rowLen:(i+1)*rowLen], b.Transform(i), b.Positions[i].SideToMove() == board.Black, vecs)
				if err != nil {
					return nil, err
				}
				if c != s.C {
					return nil, fmt.Errorf("module %s gives vectors of %d values, the SAE wants %d", m.Tensor, c, s.C)
				}
				if per == 0 {
					per = nv
					idx = make([]float32, bn*nv*s.K)
					val = make([]float32, bn*nv*s.K)
					fvu = make([]float32, bn)
				}
				// The position's FVU takes the SAE's mean training vector as the reference (the variance a
				// constant guess leaves), so it is defined for one-vector modules too; without a mean (an
				// SAEDIR written by hand) the position's own mean.
				ref := f.Mean
				if len(ref) != s.C {
					ref = make([]float32, s.C)
					for j := range nv * s.C {
						ref[j%s.C] += vecs[j] / float32(nv)
					}
				}
				var errSq, total float64
				enc.Encode(vecs, nv, true, func(j int, code sae.Code, xhat []float32) {
					base := (i*nv + j) * s.K
					for a := range s.K {
						idx[base+a], val[base+a] = -1, 0
						if a < len(code.Index) {
							idx[base+a], val[base+a] = float32(code.Index[a]), code.Value[a]
						}
					}
					for c, x := range vecs[j*s.C : (j+1)*s.C] {
						d, m := float64(x-xhat[c]), float64(x-ref[c])
						errSq += d * d
						total += m * m
					}
				})
				fvu[i] = float32(errSq / total)
			}
			cs := []int{per, s.K}
			if per == 1 {
				cs = []int{s.K}
			}
			rs := []BatchResult{
				{Key: key + "_sae_index", Shape: cs, Data: idx},
				{Key: key + "_sae_value", Shape: cs, Data: val},
				{Key: key + "_sae_fvu", Shape: []int{1}, Data: fvu},
			}
			if !v.GetBool("fidelity") {
				return rs, nil
			}
			kl, dv, err := saeFidelity(n, f, m, b, out, t)
			if err != nil {
				return nil, err
			}
			return append(rs, BatchResult{Key: key + "_sae_kl", Shape: []int{3}, Data: kl}, BatchResult{Key: key + "_sae_dvalue", Shape: []int{3}, Data: dv}), nil
		},
	}, nil
}

// SquareVectors splits one position's activation (row, of the given shape) into vectors: a [C,8,8] or
// [64,C] activation gives 64 vectors of C ordered by absolute square (a1=0..h8=63: the position's canonical
// transform is undone, then the rank mirror of black to move), anything else one vector. The vectors are
// written to dst (grown as needed) as [n,c].
func SquareVectors(shape []int, row []float32, transform int, black bool, dst []float32) (out []float32, n, c int, err error) {
	dst = slices.Grow(dst[:0], len(row))[:len(row)]
	switch {
	case len(shape) == 3 && shape[1] == 8 && shape[2] == 8:
		c = shape[0]
		for p := range 64 {
			a := planesToAbs(p, transform, black)
			for ch := range c {
				dst[a*c+ch] = row[ch*64+p]
			}
		}
		return dst, 64, c, nil
	case len(shape) == 2 && shape[0] == 64:
		c = shape[1]
		for p := range 64 {
			a := planesToAbs(p, transform, black)
			copy(dst[a*c:(a+1)*c], row[p*c:(p+1)*c])
		}
		return dst, 64, c, nil
	}
	copy(dst, row)
	return dst, 1, len(row), nil
}

// PutSquareVectors is SquareVectors' inverse: it writes vectors vecs back into row in the module's layout.
func PutSquareVectors(shape []int, vecs []float32, transform int, black bool, row []float32) {
	switch {
	case len(shape) == 3 && shape[1] == 8 && shape[2] == 8:
		c := shape[0]
		for p := range 64 {
			a := planesToAbs(p, transform, black)
			for ch := range c {
				row[ch*64+p] = vecs[a*c+ch]
			}
		}
	case len(shape) == 2 && shape[0] == 64:
		c := shape[1]
		for p := range 64 {
			a := planesToAbs(p, transform, black)
			copy(row[p*c:(p+1)*c], vecs[a*c:(a+1)*c])
		}
	default:
		copy(row, vecs)
	}
}

// planesToAbs is the absolute square of square p of the planes' frame (absSquare for a bare transform).
func planesToAbs(p, transform int, black bool) int {
	a := int(board.UntransformSquare(board.Square(p), transform))
	if black {
		a ^= 56
	}
	return a
}

// FidelityPatches names the patches of the sae lens's fidelity results, in order.
var FidelityPatches = []string{"sae", "zero", "mean"}

// saeFidelity runs the network with the module's activation replaced (every square) by its reconstruction,
// by zero and by the SAE's mean training vector, and returns per position and patch the KL divergence of the
// patched legal-move policy from the original, KL(p || p_patched), and |value_patched - value|.
func saeFidelity(n *model.Network, f *sae.File, m model.Module, b *Batch, out *Outputs, t model.Tensor) (kl, dv []float32, err error) {
	s := f.SAE
	bn := b.Len()
	if len(f.Mean) != s.C {
		return nil, nil, fmt.Errorf("sae: the SAE has no mean vector of %d values (retrain it with this version)", s.C)
	}
	p, input, err := n.PatchPlan(m.Tensor)
	if err != nil {
		return nil, nil, err
	}
	shape := rowShape(t.Shape, bn)
	rowLen := len(t.Data) / bn
	patched := [3][]float32{make([]float32, len(t.Data)), make([]float32, len(t.Data)), make([]float32, len(t.Data))}
	enc := s.NewEncoder()
	var vecs, rec, mean []float32
	for i := range bn {
		tr, black := b.Transform(i), b.Positions[i].SideToMove() == board.Black
		var nv int
		vecs, nv, _, err = SquareVectors(shape, t.Data[i*rowLen:(i+1)*rowLen], tr, black, vecs)
		if err != nil {
			return nil, nil, err
		}
		if rec == nil {
			rec, mean = make([]float32, nv*s.C), make([]float32, nv*s.C)
			for j := range nv {
				copy(mean[j*s.C:], f.Mean)
			}
		}
		enc.Encode(vecs, nv, true, func(j int, _ sae.Code, xhat []float32) { copy(rec[j*s.C:(j+1)*s.C], xhat) })
		PutSquareVectors(shape, rec, tr, black, patched[0][i*rowLen:(i+1)*rowLen])
		PutSquareVectors(shape, mean, tr, black, patched[2][i*rowLen:(i+1)*rowLen])
	}
	kl, dv = make([]float32, bn*3), make([]float32, bn*3)
	for q, data := range patched {
		res, err := out.Runner.Run(p, map[string]model.Tensor{n.Input: planesTensor(b.Planes, bn), input: {Shape: t.Shape, Data: data}}, headTensors(n))
		if err != nil {
			return nil, nil, fmt.Errorf("patched run of %s: %w", input, err)
		}
		h, err := n.DecodeHeads(res, bn)
		if err != nil {
			return nil, nil, err
		}
		for i := range bn {
			dv[i*3+q] = float32(math.Abs(float64(h.ForceValue(i) - out.Heads.ForceValue(i))))
			if h.Policy == nil {
				continue
			}
			_, legal := board.LegalIndicesT(b.Positions[i], b.Transform(i))
			pp, pq := model.LegalSoftmax(out.Heads.PolicyRow(i), legal), model.LegalSoftmax(h.PolicyRow(i), legal)
			var d float64
			for a := range pp {
				if pp[a] > 0 {
					d += float64(pp[a]) * (math.Log(float64(pp[a])) - math.Log(math.Max(float64(pq[a]), 1e-30)))
				}
			}
			kl[i*3+q] = float32(max(d, 0)) // rounding can leave a tiny negative sum
		}
	}
	return kl, dv, nil
}
