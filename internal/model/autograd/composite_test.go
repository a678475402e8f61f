package autograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// ruleRef is a linear rule from its textbook formula on the matrix form of a layer (biases ignored, as the
// rules other than epsilon ignore them): R_i = sum_j share_ij R_j.
func (d dense) ruleRef(r LinearRule, x, rOut []float64, eps float64) []float64 {
	out := make([]float64, len(x))
	for j, row := range d.m {
		switch r.Kind {
		case LinearGamma:
			var z0 float64
			for i, w := range row {
				z0 += x[i] * w
			}
			up := z0 >= 0 // favour contributions of the unmodified output's sign
			rho := func(i int) float64 {
				w := row[i]
				if (x[i] >= 0) == up {
					return w + r.Gamma*math.Max(w, 0)
				}
				return w + r.Gamma*math.Min(w, 0)
			}
			var z float64
			for i := range row {
				z += x[i] * rho(i)
			}
			for i := range row {
				out[i] += x[i] * rho(i) * rOut[j] / stab(z, eps)
			}
		case LinearAlphaBeta:
			var zp, zn float64
			for i, w := range row {
				zp += math.Max(x[i]*w, 0)
				zn += math.Min(x[i]*w, 0)
			}
			for i, w := range row {
				out[i] += r.Alpha*math.Max(x[i]*w, 0)*rOut[j]/(zp+eps) - r.Beta*math.Min(x[i]*w, 0)*rOut[j]/(zn-eps)
			}
		case LinearBox:
			c := func(i int, w float64) float64 {
				lo, hi := math.Min(x[i], 0), math.Max(x[i], 1)
				return x[i]*w - lo*math.Max(w, 0) - hi*math.Min(w, 0)
			}
			var z float64
			for i, w := range row {
				z += c(i, w)
			}
			for i, w := range row {
				out[i] += c(i, w) * rOut[j] / (z + eps)
			}
		case LinearFlat, LinearWSquare:
			v := func(w float64) float64 {
				if r.Kind == LinearWSquare {
					return w * w
				}
				if w != 0 { // a connection (the matrix of a padded Conv holds 0 outside the receptive field)
					return 1
				}
				return 0
			}
			var z float64
			for _, w := range row {
				z += v(w)
			}
			for i, w := range row {
				out[i] += v(w) * rOut[j] / (z + eps)
			}
		}
	}
	return out
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// TestLRPCompositeRules checks each composite rule on a Conv (float32, with a bias, signed inputs) and a
// Gemm (float64, alpha and transB, with a bias) against its textbook formula, the Conv as the first layer
// (First) or not (Conv, Dense), and conservation as the rules' documentation states it: flat, wsquare, box
// and gamma pass on all of the output relevance (up to eps terms), alpha-beta (alpha - beta) times it. The
// tolerances are float32 rounding through the sums (1e-5 of the largest |R|; 1e-9 in float64).
func TestLRPCompositeRules(t *testing.T) {
	needORT(t)
	rng := rand.New(rand.NewPCG(11, 12))
	const cin, cout, k, h, w = 2, 3, 3, 4, 4
	wv, bv := randVec(rng, cout*cin*k*k), randVec(rng, cout)
	for _, v := range [][]float64{wv, bv} {
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
	}
	conv := &pb.GraphProto{
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, 1, cin, h, w)},
		Initializer: []*pb.TensorProto{f32(t, "W", []int64{cout, cin, k, k}, wv), f32(t, "B", []int64{cout}, bv)},
		Node:        []*pb.NodeProto{N("Conv", "/c", []string{"x", "W", "B"}, []string{"y"}, onnxgraph.AttrInts("pads", 1, 1, 1, 1))},
		Output:      []*pb.ValueInfoProto{onnxgraph.UntypedOutput("y", pb.TensorProto_FLOAT)},
	}
	const nx, ny, alpha = 5, 4, 0.5
	W := randMat(rng, ny, nx)
	bg := randVec(rng, ny)
	wt := make([]float64, 0, nx*ny) // transB: [out, in]
	scaled := make([][]float64, ny)
	for j := range ny {
		wt = append(wt, W[j]...)
		scaled[j] = make([]float64, nx)
		for i := range nx {
			scaled[j][i] = alpha * W[j][i]
		}
	}
	gemm := &pb.GraphProto{
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_DOUBLE, 1, nx)},
		Initializer: []*pb.TensorProto{onnxgraph.Float64Tensor("W", []int64{ny, nx}, wt), onnxgraph.Float64Tensor("B", []int64{ny}, bg)},
		Node:        []*pb.NodeProto{N("Gemm", "/g", []string{"x", "W", "B"}, []string{"y"}, onnxgraph.AttrFloat("alpha", alpha), onnxgraph.AttrInt("transB", 1))},
		Output:      []*pb.ValueInfoProto{onnxgraph.UntypedOutput("y", pb.TensorProto_DOUBLE)},
	}
	cb := make([]float64, cout*h*w)
	for i := range cb {
		cb[i] = bv[i/(h*w)]
	}
	layers := []struct {
		name string
		g    *pb.GraphProto
		elem pb.TensorProto_DataType
		d    dense
		nIn  int
		tol  float64
		set  func(c *Composite, r LinearRule) // where the rule goes
	}{
		{"conv", conv, pb.TensorProto_FLOAT, dense{m: convMatrix(wv, cout, cin, k, h, w, 1), b: cb}, cin * h * w, 1e-5, func(c *Composite, r LinearRule) { c.Conv = r }},
		{"conv-first", conv, pb.TensorProto_FLOAT, dense{m: convMatrix(wv, cout, cin, k, h, w, 1), b: cb}, cin * h * w, 1e-5,
			func(c *Composite, r LinearRule) { c.First, c.Conv = r, LinearRule{Kind: LinearZPlus} }},
		{"gemm", gemm, pb.TensorProto_DOUBLE, dense{m: scaled, b: bg}, nx, 1e-9, func(c *Composite, r LinearRule) { c.Dense = r }},
	}
	rules := []LinearRule{{Kind: LinearGamma, Gamma: 0.25}, {Kind: LinearAlphaBeta, Alpha: 2, Beta: 1}, {Kind: LinearFlat}, {Kind: LinearWSquare}, {Kind: LinearBox}}
	const eps = 1e-6
	for _, l := range layers {
		m := onnxgraph.NewModel(l.g, 17)
		x := array{data: randVec(rng, l.nIn)}
		for _, d := range l.g.Input[0].GetType().GetTensorType().GetShape().GetDim() {
			x.dims = append(x.dims, d.GetDimValue())
		}
		for i := range x.data {
			x.data[i] = float64(float32(x.data[i]))
		}
		y := l.d.apply(x.data)
		seed := array{dims: []int64{1, int64(len(y))}, data: randVec(rng, len(y))}
		if l.name != "gemm" {
			seed.dims = []int64{1, cout, h, w}
		}
		rOut := make([]float64, len(y))
		for j := range y {
			if l.elem == pb.TensorProto_FLOAT {
				y[j] = float64(float32(y[j]))
			}
			rOut[j] = seed.data[j] * y[j]
		}
		for _, r := range rules {
			var c Composite
			l.set(&c, r)
			got := inputRelevance(t, m, Spec{Seeds: []string{"y"}, Wrt: []string{"x"}, Mode: ModeLRPEpsilon, Epsilon: eps, Composite: c}, l.elem, x, seed)
			want := l.d.ruleRef(r, x.data, rOut, eps)
			checkRelevance(t, fmt.Sprintf("%s %s", l.name, r), got, want, l.tol)
			// Conservation as documented: all of each R_j, except alpha-beta's alpha R_j (only positive
			// contributions to j), -beta R_j (only negative ones) or (alpha - beta) R_j (both).
			var conserved, absOut float64
			for j, row := range l.d.m {
				f := 1.0
				if r.Kind == LinearAlphaBeta {
					pos, neg := false, false
					for i, wij := range row {
						pos, neg = pos || x.data[i]*wij > 0, neg || x.data[i]*wij < 0
					}
					f = 0
					if pos {
						f += r.Alpha
					}
					if neg {
						f -= r.Beta
					}
				}
				conserved += f * rOut[j]
				absOut += math.Abs(rOut[j])
			}
			if d := math.Abs(sum(got) - conserved); d > 1e-4*absOut {
				t.Errorf("%s %s: sum R_x %.9g, want %.9g (off by %.3g of sum |R_y| %.3g)", l.name, r, sum(got), conserved, d/absOut, absOut)
			} else {
				t.Logf("%s %s: |sum R_x - conserved| / sum |R_y| = %.2g", l.name, r, d/absOut)
			}
		}
	}
}

// TestCompositeSpec checks that composites need the epsilon mode and valid parameters.
func TestCompositeSpec(t *testing.T) {
	g := &pb.GraphProto{
		Input:  []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, 1, 2)},
		Node:   []*pb.NodeProto{N("Relu", "/r", []string{"x"}, []string{"y"})},
		Output: []*pb.ValueInfoProto{onnxgraph.UntypedOutput("y", pb.TensorProto_FLOAT)},
	}
	m := onnxgraph.NewModel(g, 17)
	for _, s := range []Spec{
		{Mode: ModeLRPZPlus, Composite: Composite{First: LinearRule{Kind: LinearFlat}}},
		{Mode: ModeLRPEpsilon, Composite: Composite{Conv: LinearRule{Kind: LinearGamma, Gamma: -1}}},
		{Mode: ModeLRPEpsilon, Composite: Composite{Conv: LinearRule{Kind: LinearAlphaBeta, Alpha: math.NaN(), Beta: 1}}},
	} {
		s.Seeds, s.Wrt, s.Epsilon = []string{"y"}, []string{"x"}, 1e-6
		if _, _, err := Build(m, s); err == nil {
			t.Errorf("accepted %+v", s)
		}
	}
}
