package autograd

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// dense is a linear map written out as a matrix, the form in which LRP's rules are stated: z_j =
// sum_i m[j][i] x_i + b_j.
type dense struct {
	m [][]float64
	b []float64 // nil: no bias
}

func (d dense) apply(x []float64) []float64 {
	z := make([]float64, len(d.m))
	for j, row := range d.m {
		for i, w := range row {
			z[j] += w * x[i]
		}
		if d.b != nil {
			z[j] += d.b[j]
		}
	}
	return z
}

func stab(z, eps float64) float64 {
	if z >= 0 {
		return z + eps
	}
	return z - eps
}

// epsRule is LRP-epsilon through d from the textbook formula R_i = sum_j x_i m_ji R_j / stab(z_j).
func (d dense) epsRule(x, rOut []float64, eps float64) []float64 {
	z := d.apply(x)
	r := make([]float64, len(x))
	for j, row := range d.m {
		for i, w := range row {
			r[i] += x[i] * w * rOut[j] / stab(z[j], eps)
		}
	}
	return r
}

// zplusRule is the z+ rule with signed inputs: R_i = sum_j c_ij R_j / (sum_i c_ij + eps), c_ij the positive
// part of x_i m_ji; biases ignored.
func (d dense) zplusRule(x, rOut []float64, eps float64) []float64 {
	r := make([]float64, len(x))
	for j, row := range d.m {
		den := eps
		for i, w := range row {
			den += math.Max(x[i]*w, 0)
		}
		for i, w := range row {
			r[i] += math.Max(x[i]*w, 0) * rOut[j] / den
		}
	}
	return r
}

func randMat(rng *rand.Rand, rows, cols int) [][]float64 {
	m := make([][]float64, rows)
	for j := range m {
		m[j] = make([]float64, cols)
		for i := range m[j] {
			m[j][i] = rng.NormFloat64()
		}
	}
	return m
}

func randVec(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// onnxWeights stores the matrix m (out x in) as MatMul's [in, out] initializer.
func onnxWeights(t *testing.T, name string, m [][]float64) *pb.TensorProto {
	t.Helper()
	out, in := len(m), len(m[0])
	v := make([]float64, 0, in*out)
	for i := range in {
		for j := range out {
			v = append(v, m[j][i])
		}
	}
	return onnxgraph.Float64Tensor(name, []int64{int64(in), int64(out)}, v)
}

func add(a, b []float64) []float64 {
	o := make([]float64, len(a))
	for i := range a {
		o[i] = a[i] + b[i]
	}
	return o
}

// TestLRPHandGraph compares the relevance graph of a small network with everything the lc0 nets use (a
// dense layer with a separate bias add, Relu, a sigmoid gate, a residual add, a Gemm with alpha and transB)
// against LRP computed by hand from the textbook formulas, for both rules:
//
//	a = x W1 + b1; h = relu(a); g = sigmoid(x Wg); u = g*h; s = x Ws; r = u + s; y = Gemm(r, W2t, b2, alpha)
//
// with R_y = c*y. Epsilon rule by hand: R_{rW2} from the Gemm with its bias; r = u + s splits by contribution;
// the gate takes nothing, so R_h = R_u; Relu passes; the bias add gives a's share to x W1 (the rest is b1's);
// x collects from x W1 and x Ws. Under z+ the Gemm and the MatMuls use zplusRule, the bias add passes, and
// the residual splits by positive parts.
func TestLRPHandGraph(t *testing.T) {
	needORT(t)
	rng := rand.New(rand.NewPCG(7, 8))
	const nx, nh, ny, alpha = 3, 4, 2, 0.5
	W1, Wg, Ws, W2 := randMat(rng, nh, nx), randMat(rng, nh, nx), randMat(rng, nh, nx), randMat(rng, ny, nh)
	b1, b2 := randVec(rng, nh), randVec(rng, ny)
	w2t := make([]float64, 0, ny*nh) // Gemm's B with transB=1 is [out, in]
	for j := range ny {
		w2t = append(w2t, W2[j]...)
	}
	g := &pb.GraphProto{
		Input: []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_DOUBLE, -1, nx)},
		Initializer: []*pb.TensorProto{onnxWeights(t, "W1", W1), onnxWeights(t, "Wg", Wg), onnxWeights(t, "Ws", Ws),
			onnxgraph.Float64Tensor("b1", []int64{nh}, b1), onnxgraph.Float64Tensor("W2t", []int64{ny, nh}, w2t),
			onnxgraph.Float64Tensor("b2", []int64{ny}, b2)},
		Node: []*pb.NodeProto{
			N("MatMul", "/m1", []string{"x", "W1"}, []string{"m1"}),
			N("Add", "/a", []string{"m1", "b1"}, []string{"a"}),
			N("Relu", "/h", []string{"a"}, []string{"h"}),
			N("MatMul", "/mg", []string{"x", "Wg"}, []string{"mg"}),
			N("Sigmoid", "/g", []string{"mg"}, []string{"g"}),
			N("Mul", "/u", []string{"g", "h"}, []string{"u"}),
			N("MatMul", "/s", []string{"x", "Ws"}, []string{"s"}),
			N("Add", "/r", []string{"u", "s"}, []string{"r"}),
			N("Gemm", "/y", []string{"r", "W2t", "b2"}, []string{"y"}, onnxgraph.AttrFloat("alpha", alpha), onnxgraph.AttrInt("transB", 1)),
		},
		Output: []*pb.ValueInfoProto{onnxgraph.UntypedOutput("y", pb.TensorProto_DOUBLE)},
	}
	m := onnxgraph.NewModel(g, 17)
	l1, lg, ls := dense{m: W1}, dense{m: Wg}, dense{m: Ws}
	scaled := make([][]float64, ny)
	for j := range scaled {
		scaled[j] = make([]float64, nh)
		for i := range scaled[j] {
			scaled[j][i] = alpha * W2[j][i]
		}
	}
	l2 := dense{m: scaled, b: b2}
	const batch = 5
	x := array{dims: []int64{batch, nx}, data: randVec(rng, batch*nx)}
	seed := array{dims: []int64{batch, ny}, data: []float64{1, -1, 1, -1, 1, -1, 1, -1, 1, -1}}
	for _, tc := range []struct {
		mode Mode
		eps  float64
	}{{ModeLRPEpsilon, 1e-9}, {ModeLRPEpsilon, 0.3}, {ModeLRPZPlus, 1e-9}, {ModeLRPZPlus, 0.3}} {
		o := relevances(t, m, Spec{Seeds: []string{"y"}, Wrt: []string{"x", "h"}, Mode: tc.mode, Epsilon: tc.eps}, pb.TensorProto_DOUBLE, x, seed)
		for p := range batch {
			xp := x.data[p*nx : (p+1)*nx]
			m1 := l1.apply(xp)
			a := add(m1, b1)
			h, u := make([]float64, nh), make([]float64, nh)
			gate := lg.apply(xp)
			for i := range h {
				h[i] = math.Max(a[i], 0)
				u[i] = h[i] / (1 + math.Exp(-gate[i]))
			}
			sv := ls.apply(xp)
			r := add(u, sv)
			y := l2.apply(r)
			ry := make([]float64, ny)
			for j := range ry {
				ry[j] = seed.data[p*ny+j] * y[j]
			}
			var rx, rh []float64
			if tc.mode == ModeLRPEpsilon {
				rr := l2.epsRule(r, ry, tc.eps)
				ru, rs := make([]float64, nh), make([]float64, nh)
				for i := range rr {
					ru[i] = u[i] * rr[i] / stab(r[i], tc.eps)
					rs[i] = sv[i] * rr[i] / stab(r[i], tc.eps)
				}
				rh = ru
				rm1 := make([]float64, nh)
				for i := range rm1 {
					rm1[i] = m1[i] * rh[i] / stab(a[i], tc.eps)
				}
				rx = add(l1.epsRule(xp, rm1, tc.eps), ls.epsRule(xp, rs, tc.eps))
			} else {
				rr := l2.zplusRule(r, ry, tc.eps)
				ru, rs := make([]float64, nh), make([]float64, nh)
				for i := range rr {
					den := math.Max(u[i], 0) + math.Max(sv[i], 0) + tc.eps
					ru[i] = math.Max(u[i], 0) * rr[i] / den
					rs[i] = math.Max(sv[i], 0) * rr[i] / den
				}
				rh = ru
				rx = add(l1.zplusRule(xp, rh, tc.eps), ls.zplusRule(xp, rs, tc.eps))
			}
			for k, c := range []struct {
				name      string
				got, want []float64
			}{{"x", o[0].data[p*nx : (p+1)*nx], rx}, {"h", o[1].data[p*nh : (p+1)*nh], rh}} {
				for i := range c.want {
					if math.Abs(c.got[i]-c.want[i]) > 1e-9*(1+math.Abs(c.want[i])) {
						t.Errorf("%s eps %g, position %d: R_%s[%d] = %.12g, want %.12g (output %d)", tc.mode, tc.eps, p, c.name, i, c.got[i], c.want[i], k)
					}
				}
			}
		}
	}
}

// convMatrix writes a stride-1, zero-padded 2-D convolution of a [c,h,w] input as a matrix.
func convMatrix(w []float64, cout, cin, k, h, wd, pad int) [][]float64 {
	m := make([][]float64, cout*h*wd)
	for o := range cout {
		for y := range h {
			for x := range wd {
				row := make([]float64, cin*h*wd)
				for c := range cin {
					for ky := range k {
						for kx := range k {
							iy, ix := y+ky-pad, x+kx-pad
							if iy >= 0 && iy < h && ix >= 0 && ix < wd {
								row[(c*h+iy)*wd+ix] += w[((o*cin+c)*k+ky)*k+kx]
							}
						}
					}
				}
				m[(o*h+y)*wd+x] = row
			}
		}
	}
	return m
}

// TestLRPConvMean checks the Conv and ReduceMean rules (both linear maps, one with a bias, one without
// weights) against the matrix forms: y = mean_{h,w}(conv(x) + b), R_y = y. Float32, since ORT's CPU provider
// has no double Conv: the tolerance is float32 rounding through a few dozen terms.
func TestLRPConvMean(t *testing.T) {
	needORT(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const cin, cout, k, h, w = 2, 3, 3, 3, 4
	wv := randVec(rng, cout*cin*k*k)
	bv := randVec(rng, cout)
	g := &pb.GraphProto{
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, 1, cin, h, w)},
		Initializer: []*pb.TensorProto{f32(t, "W", []int64{cout, cin, k, k}, wv), f32(t, "B", []int64{cout}, bv), ints("axes", 2, 3)},
		Node: []*pb.NodeProto{
			N("Conv", "/c", []string{"x", "W", "B"}, []string{"c"}, onnxgraph.AttrInts("pads", 1, 1, 1, 1)),
			N("ReduceMean", "/y", []string{"c", "axes"}, []string{"y"}, onnxgraph.AttrInt("keepdims", 0)),
		},
		Output: []*pb.ValueInfoProto{onnxgraph.UntypedOutput("y", pb.TensorProto_FLOAT)},
	}
	m := onnxgraph.NewModel(g, 18)
	// The reference uses the float32-rounded values the graph holds.
	for _, v := range [][]float64{wv, bv} {
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
	}
	cb := make([]float64, cout*h*w)
	for i := range cb {
		cb[i] = bv[i/(h*w)]
	}
	conv := dense{m: convMatrix(wv, cout, cin, k, h, w, 1), b: cb}
	mean := dense{m: make([][]float64, cout)}
	for o := range cout {
		mean.m[o] = make([]float64, cout*h*w)
		for i := range h * w {
			mean.m[o][o*h*w+i] = 1.0 / (h * w)
		}
	}
	x := array{dims: []int64{1, cin, h, w}, data: randVec(rng, cin*h*w)}
	for i := range x.data {
		x.data[i] = float64(float32(x.data[i]))
	}
	ones := array{dims: []int64{1, cout}, data: []float64{1, 1, 1}}
	for _, mode := range []Mode{ModeLRPEpsilon, ModeLRPZPlus} {
		const eps = 1e-3
		got := inputRelevance(t, m, Spec{Seeds: []string{"y"}, Wrt: []string{"x"}, Mode: mode, Epsilon: eps}, pb.TensorProto_FLOAT, x, ones)
		c := conv.apply(x.data)
		y := mean.apply(c)
		var want []float64
		if mode == ModeLRPEpsilon {
			want = conv.epsRule(x.data, mean.epsRule(c, y, eps), eps)
		} else {
			want = conv.zplusRule(x.data, mean.zplusRule(c, y, eps), eps)
		}
		checkRelevance(t, fmt.Sprint(mode), got, want, 1e-5)
	}
}

// inputRelevance is R_x of m (seed y) under spec, run on x with the seed for y.
func inputRelevance(t *testing.T, m *pb.ModelProto, spec Spec, elem pb.TensorProto_DataType, x, seed array) []float64 {
	t.Helper()
	return relevances(t, m, spec, elem, x, seed)[0].data
}

// relevances builds m's backward graph for spec (seed y, input x) and runs it on x with the seed for y: the
// relevance of each of spec.Wrt, in order.
func relevances(t *testing.T, m *pb.ModelProto, spec Spec, elem pb.TensorProto_DataType, x, seed array) []array {
	t.Helper()
	bm, res, err := Build(m, spec)
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, w := range spec.Wrt {
		outs = append(outs, res.Grads[w])
	}
	s, err := newSession(bm, []string{"x", res.SeedInputs["y"]}, outs, elem, 1)
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.run([]array{x, seed})
	if derr := s.Destroy(); derr != nil {
		t.Error(derr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// checkRelevance reports each got[i] farther from want[i] than tol times 1 + the largest |want|.
func checkRelevance(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol*(1+scale) {
			t.Errorf("%s: R_x[%d] = %.12g, want %.12g", what, i, got[i], want[i])
		}
	}
}

func f32(t *testing.T, name string, dims []int64, v []float64) *pb.TensorProto {
	t.Helper()
	tt, err := onnxgraph.FloatTensor(name, pb.TensorProto_FLOAT, dims, v)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func TestLRPSpecAndCheck(t *testing.T) {
	g := &pb.GraphProto{
		Input: []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, -1, 4)},
		Node: []*pb.NodeProto{
			N("ReduceSumSquare", "/q", []string{"x"}, []string{"q"}),
		},
		Output: []*pb.ValueInfoProto{onnxgraph.UntypedOutput("q", pb.TensorProto_FLOAT)},
	}
	m := onnxgraph.NewModel(g, 17)
	for _, eps := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if err := Check(m, Spec{Seeds: []string{"q"}, Wrt: []string{"x"}, Mode: ModeLRPEpsilon, Epsilon: eps}); !errors.Is(err, ErrSpec) {
			t.Errorf("epsilon %g: got %v, want ErrSpec", eps, err)
		}
	}
	if err := Check(m, Spec{Seeds: []string{"q"}, Wrt: []string{"x"}, Mode: Mode(9)}); !errors.Is(err, ErrSpec) {
		t.Errorf("mode 9: got %v, want ErrSpec", err)
	}
	var ue *UnsupportedOpError
	err := Check(m, Spec{Seeds: []string{"q"}, Wrt: []string{"x"}, Mode: ModeLRPZPlus, Epsilon: 1e-6})
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no relevance (LRP) rule for op \"ReduceSumSquare\"") {
		t.Errorf("got %v, want no relevance rule for ReduceSumSquare", err)
	}
	if err := Check(m, Spec{Seeds: []string{"q"}, Wrt: []string{"x"}}); err != nil {
		t.Errorf("gradient mode: %v", err)
	}
}

// TestDocListsLRPOps keeps the package documentation in step with the relevance rules.
func TestDocListsLRPOps(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), "# Layer-wise relevance propagation")
	j := strings.Index(string(doc), "# How the backward graph")
	if i < 0 || j < i {
		t.Fatal("doc.go has no LRP section before the performance section")
	}
	sec := string(doc[i:j])
	shapeOps := map[string]bool{"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Expand": true,
		"Transpose": true, "Concat": true, "Split": true, "Slice": true, "Gather": true, "Where": true}
	for _, op := range LRPOps() {
		if !shapeOps[op] && !strings.Contains(sec, op) {
			t.Errorf("the LRP section of doc.go does not list %s", op)
		}
	}
	for _, op := range SupportedOps() {
		if r, ok := lrpRules[op]; (!ok || r.grad == nil) && !strings.Contains(sec, op+" ") && !strings.Contains(sec, op+".") {
			t.Errorf("%s has a gradient rule but no relevance rule, and the LRP section does not say so", op)
		}
	}
}
