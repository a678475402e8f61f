package sae

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The activations an SAE supports.
const (
	TopK = "topk" // z = TopK_k(ReLU(pre)) (Gao et al. 2024)
	ReLU = "relu" // z = ReLU(pre), sparsity from an L1 penalty
)

// SAE is a trained dictionary. With s = Scale: z = act((x*s - BDec) WEnc + BEnc), x_hat = (z WDec + BDec)/s.
type SAE struct {
	C, F, K    int
	Activation string
	Scale      float32
	WEnc       []float32 // [C,F]
	BEnc       []float32 // [F]
	WDec       []float32 // [F,C], unit-norm rows
	BDec       []float32 // [C]
}

// New returns an SAE with decoder rows drawn at random on the unit sphere and the encoder tied to them
// (WEnc = WDec^T), the initialisation Gao et al. found to leave fewest dead features.
func New(c, f, k int, activation string, seed uint64) (*SAE, error) {
	if c < 1 || f < 1 {
		return nil, fmt.Errorf("sae: %d inputs, %d features: want both positive", c, f)
	}
	if activation != TopK && activation != ReLU {
		return nil, fmt.Errorf("sae: activation %q: want %s or %s", activation, TopK, ReLU)
	}
	if k < 1 || k > f {
		return nil, fmt.Errorf("sae: k %d: want 1 <= k <= features (%d)", k, f)
	}
	s := &SAE{C: c, F: f, K: k, Activation: activation, Scale: 1,
		WEnc: make([]float32, c*f), BEnc: make([]float32, f), WDec: make([]float32, f*c), BDec: make([]float32, c)}
	rng := newRand(seed)
	for i := range s.WDec {
		s.WDec[i] = float32(rng.NormFloat64())
	}
	s.normalize()
	for j := range f {
		for i := range c {
			s.WEnc[i*f+j] = s.WDec[j*c+i]
		}
	}
	return s, nil
}

// normalize scales every decoder row to unit norm (a zero row is left alone).
func (s *SAE) normalize() {
	c := s.C
	for j := range s.F {
		row := s.WDec[j*c : (j+1)*c]
		var n float64
		for _, v := range row {
			n += float64(v) * float64(v)
		}
		if n == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(n))
		for i := range row {
			row[i] *= inv
		}
	}
}

// Direction returns feature j's decoder row in the input space: W_dec[j]/Scale, what one unit of the
// feature's activation adds to the reconstruction x_hat = (z WDec + BDec)/Scale (a steering direction).
func (s *SAE) Direction(j int) ([]float32, error) {
	if j < 0 || j >= s.F {
		return nil, fmt.Errorf("sae: feature %d: want 0 to %d", j, s.F-1)
	}
	d := make([]float32, s.C)
	for i, w := range s.WDec[j*s.C : (j+1)*s.C] {
		d[i] = w / s.Scale
	}
	return d, nil
}

// Check reports an SAE whose arrays do not match its sizes (a damaged or hand-edited SAEDIR).
func (s *SAE) Check() error {
	switch {
	case s.C < 1 || s.F < 1 || s.K < 1 || s.K > s.F:
		return fmt.Errorf("sae: sizes C=%d F=%d k=%d: want positive, k <= F", s.C, s.F, s.K)
	case s.Activation != TopK && s.Activation != ReLU:
		return fmt.Errorf("sae: activation %q: want %s or %s", s.Activation, TopK, ReLU)
	case !(s.Scale > 0) || math.IsInf(float64(s.Scale), 0):
		return fmt.Errorf("sae: input scale %g: want a positive number", s.Scale)
	case len(s.WEnc) != s.C*s.F || len(s.BEnc) != s.F || len(s.WDec) != s.F*s.C || len(s.BDec) != s.C:
		return errors.New("sae: weight sizes do not match C and F")
	}
	return nil
}

// preacts writes the encoder's pre-activations of n vectors x ([n,C], raw) into pre ([n,F]) and the
// centred scaled inputs x*s - BDec into xc ([n,C]).
func (s *SAE) preacts(x []float32, n int, xc, pre []float32) {
	c, f := s.C, s.F
	for i := range n * c {
		xc[i] = x[i]*s.Scale - s.BDec[i%c]
	}
	for i := range n {
		copy(pre[i*f:(i+1)*f], s.BEnc)
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: n, Cols: c, Stride: c, Data: xc[:n*c]},
		blas32.General{Rows: c, Cols: f, Stride: f, Data: s.WEnc},
		1, blas32.General{Rows: n, Cols: f, Stride: f, Data: pre[:n*f]})
}

// active picks the features of one vector's pre-activations (those above zero, as ReLU would keep): the k largest positive
// ones under TopK, every positive one under ReLU. idx and val are reused; the order is by decreasing value
// for TopK and by index for ReLU.
func (s *SAE) active(pre []float32, k int, mask []bool, idx []int32, val []float32) ([]int32, []float32) {
	idx, val = idx[:0], val[:0]
	if s.Activation == ReLU && mask == nil {
		for j, v := range pre {
			if v > 0 {
				idx = append(idx, int32(j))
				val = append(val, v)
			}
		}
		return idx, val
	}
	// A bounded selection: the k best so far kept sorted (k is small next to F).
	for j, v := range pre {
		if !(v > 0) || (mask != nil && !mask[j]) {
			continue
		}
		if len(idx) == k && v <= val[k-1] {
			continue
		}
		p := len(idx)
		if p < k {
			idx = append(idx, 0)
			val = append(val, 0)
		} else {
			p = k - 1
		}
		for p > 0 && val[p-1] < v {
			idx[p], val[p] = idx[p-1], val[p-1]
			p--
		}
		idx[p], val[p] = int32(j), v
	}
	return idx, val
}

// Code is one vector's active features: indices and values, by decreasing value.
type Code struct {
	Index []int32
	Value []float32
}

// Encoder encodes vectors with reusable buffers; one per goroutine.
type Encoder struct {
	s       *SAE
	xc, pre []float32
	idx     []int32
	val     []float32
}

// NewEncoder returns an encoder for s.
func (s *SAE) NewEncoder() *Encoder { return &Encoder{s: s} }

// Encode calls fn with each of the n vectors of x ([n,C]) and its code (the slices are reused between
// calls) and reconstruction in the input space (nil when recon is false).
func (e *Encoder) Encode(x []float32, n int, recon bool, fn func(i int, code Code, xhat []float32)) {
	s := e.s
	if cap(e.pre) < n*s.F {
		e.pre = make([]float32, n*s.F)
		e.xc = make([]float32, n*s.C)
	}
	s.preacts(x, n, e.xc[:n*s.C], e.pre[:n*s.F])
	var xhat []float32
	if recon {
		xhat = make([]float32, s.C)
	}
	for i := range n {
		e.idx, e.val = s.active(e.pre[i*s.F:(i+1)*s.F], s.K, nil, e.idx, e.val)
		if s.Activation == ReLU {
			sortCode(e.idx, e.val)
		}
		if recon {
			s.decode(e.idx, e.val, xhat)
			for c := range xhat {
				xhat[c] /= s.Scale
			}
		}
		fn(i, Code{Index: e.idx, Value: e.val}, xhat)
	}
}

// decode writes z WDec + BDec (the scaled space) into dst.
func (s *SAE) decode(idx []int32, val []float32, dst []float32) {
	c := s.C
	copy(dst, s.BDec)
	for a, j := range idx {
		axpy(val[a], s.WDec[int(j)*c:int(j+1)*c], dst)
	}
}

func sortCode(idx []int32, val []float32) {
	sort.Sort(byValue{idx, val})
}

type byValue struct {
	idx []int32
	val []float32
}

func (b byValue) Len() int           { return len(b.idx) }
func (b byValue) Less(i, j int) bool { return b.val[i] > b.val[j] }
func (b byValue) Swap(i, j int) {
	b.idx[i], b.idx[j] = b.idx[j], b.idx[i]
	b.val[i], b.val[j] = b.val[j], b.val[i]
}

// axpy is y += a*x over equal lengths, written so the compiler drops the bounds checks.
func axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func dot(x, y []float32) float32 {
	y = y[:len(x)]
	var s float32
	for i, v := range x {
		s += v * y[i]
	}
	return s
}
