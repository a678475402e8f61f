package lens

import (
	"errors"
	"fmt"
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
	Name:    "sae",
	Doc:     "Sparse autoencoder features of a module (--sae SAEDIR from `lczerolens sae train`): <module>_sae_index and _sae_value per square, <module>_sae_fvu.",
	Options: []Option{{Name: "sae", Kind: String, Default: "", Help: "SAE directory written by `lczerolens sae train`"}},
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
	if f.Model.SHA256 != n.SHA256 {
		return nil, model.Module{}, fmt.Errorf("sae: %s was trained on %s (sha256 %.12s), not on this network (sha256 %.12s)", path, f.Model.Path, f.Model.SHA256, n.SHA256)
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
	f, m, err := saeFor(n, v)
	if err != nil {
		return nil, err
	}
	s := f.SAE
	key := moduleKey(m.Tensor)
	return &Prep{
		Hooks: []string{m.Tensor},
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
				ev := s.NewEvaluator()
				ev.Add(vecs, nv)
				fvu[i] = float32(ev.Metrics().FVU)
				enc.Encode(vecs, nv, false, func(j int, code sae.Code, _ []float32) {
					base := (i*nv + j) * s.K
					for a := range s.K {
						idx[base+a], val[base+a] = -1, 0
						if a < len(code.Index) {
							idx[base+a], val[base+a] = float32(code.Index[a]), code.Value[a]
						}
					}
				})
			}
			cs := []int{per, s.K}
			if per == 1 {
				cs = []int{s.K}
			}
			return []BatchResult{
				{Key: key + "_sae_index", Shape: cs, Data: idx},
				{Key: key + "_sae_value", Shape: cs, Data: val},
				{Key: key + "_sae_fvu", Shape: []int{1}, Data: fvu},
			}, nil
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
			a := absSquare(p, transform, black)
			for ch := range c {
				dst[a*c+ch] = row[ch*64+p]
			}
		}
		return dst, 64, c, nil
	case len(shape) == 2 && shape[0] == 64:
		c = shape[1]
		for p := range 64 {
			a := absSquare(p, transform, black)
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
			a := absSquare(p, transform, black)
			for ch := range c {
				row[ch*64+p] = vecs[a*c+ch]
			}
		}
	case len(shape) == 2 && shape[0] == 64:
		c := shape[1]
		for p := range 64 {
			a := absSquare(p, transform, black)
			copy(row[p*c:(p+1)*c], vecs[a*c:(a+1)*c])
		}
	default:
		copy(row, vecs)
	}
}

// absSquare is the absolute square of square p of the planes' frame.
func absSquare(p, transform int, black bool) int {
	a := int(board.UntransformSquare(board.Square(p), transform))
	if black {
		a ^= 56
	}
	return a
}
