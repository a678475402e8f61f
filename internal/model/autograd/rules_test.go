package autograd

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// gen says how to draw an input's values.
type gen int

const (
	normal gen = iota // N(0,1)
	away              // N(0,1) resampled until |x| >= 0.25: keeps kinks (Relu, Selu, Abs) out of the FD step
	pos               // uniform [0.5, 2): logs, roots, divisors
)

type input struct {
	name       string
	decl, dims []int64 // declared dims (-1: symbolic "batch") and the dims fed at run time
	gen        gen
	noGrad     bool // a run-time input that is not differentiated (e.g. Conv weights fed at run time)
}

func in(name string, gen gen, dims ...int64) input {
	return input{name: name, decl: dims, dims: dims, gen: gen}
}

// batched declares the first dim symbolic, to exercise inference with dim_params.
func batched(name string, gen gen, dims ...int64) input {
	decl := append([]int64{-1}, dims[1:]...)
	return input{name: name, decl: decl, dims: dims, gen: gen}
}

// fconst is a float initializer, built in the case's element type.
type fconst struct {
	name string
	dims []int64
	data []float64 // nil: random N(0, 1/fan_in-ish)
}

type opCase struct {
	name   string
	f32    bool // float32: ORT's CPU provider has no double kernel for an op in the graph
	inputs []input
	consts []fconst
	ints   []*pb.TensorProto
	nodes  []*pb.NodeProto
	out    string
	opset  int64
}

var N = onnxgraph.Node

func ints(name string, v ...int64) *pb.TensorProto {
	return onnxgraph.Int64Tensor(name, []int64{int64(len(v))}, v)
}

func (c opCase) model(elem pb.TensorProto_DataType, rng *rand.Rand) (*pb.ModelProto, error) {
	g := &pb.GraphProto{Name: nil, Node: c.nodes}
	for _, in := range c.inputs {
		g.Input = append(g.Input, onnxgraph.ValueInfo(in.name, elem, in.decl...))
	}
	for _, k := range c.consts {
		data := k.data
		if data == nil {
			n := onnxgraph.NumElements(k.dims)
			data = make([]float64, n)
			scale := 1.0
			if len(k.dims) > 1 {
				scale = 1 / math.Sqrt(float64(n/int(k.dims[0])))
			}
			for i := range data {
				data[i] = rng.NormFloat64() * scale
			}
		}
		t, err := onnxgraph.FloatTensor(k.name, elem, k.dims, data)
		if err != nil {
			return nil, err
		}
		g.Initializer = append(g.Initializer, t)
	}
	g.Initializer = append(g.Initializer, c.ints...)
	g.Output = []*pb.ValueInfoProto{onnxgraph.UntypedOutput(c.out, elem)}
	opset := c.opset
	if opset == 0 {
		opset = 17
	}
	return onnxgraph.NewModel(g, opset), nil
}

func draw(rng *rand.Rand, g gen, dims []int64) array {
	a := array{dims: dims, data: make([]float64, onnxgraph.NumElements(dims))}
	for i := range a.data {
		switch g {
		case away:
			v := rng.NormFloat64()
			for math.Abs(v) < 0.25 {
				v = rng.NormFloat64()
			}
			a.data[i] = v
		case pos:
			a.data[i] = 0.5 + 1.5*rng.Float64()
		default:
			a.data[i] = rng.NormFloat64()
		}
	}
	return a
}

func seedOf(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// variants are the option sets every case is differentiated with: the defaults, and one taking every
// alternative path (run-time shapes for all broadcasting, ConvTranspose, Sign masks), so both are checked
// against the same finite differences.
var variants = []struct {
	name string
	opt  options
}{
	{"default", defaultOptions()},
	{"dynamic", options{reluMask: "sign", convTranspose: true, naiveBroadcast: true}},
	{"where", options{reluMask: "where"}},
}

// checkCase compares the backward graph of L = <seed, out> against central finite differences of L for every
// element of every input. Tolerances: float64 uses h = 1e-6, where truncation (~h^2 |f”'| ~ 1e-12) and
// rounding (~1e-16 |L| / h ~ 1e-10 |L|) are far below the 1e-6 bound. Float32 uses h = 1e-2 (inputs are O(1)):
// truncation ~h^2/6 |f”'| ~ 2e-5 and rounding ~ 1e-7 |L| / h ~ 1e-5 |L|, so 2e-3 of the gradient's scale
// leaves room for both yet is far below the O(1) errors a wrong rule gives.
func checkCase(t *testing.T, c opCase) {
	elem, h, tol := pb.TensorProto_DOUBLE, 1e-6, 1e-6
	if c.f32 {
		elem, h, tol = pb.TensorProto_FLOAT, 1e-2, 2e-3
	}
	rng := rand.New(rand.NewPCG(seedOf(c.name), 1))
	m, err := c.model(elem, rng)
	if err != nil {
		t.Fatal(err)
	}
	var names, wrt []string
	var xs []array
	for _, in := range c.inputs {
		names = append(names, in.name)
		xs = append(xs, draw(rng, in.gen, in.dims))
		if !in.noGrad {
			wrt = append(wrt, in.name)
		}
	}
	fwd, err := newSession(m, names, []string{c.out}, elem, 1)
	if err != nil {
		t.Fatalf("forward session: %v", err)
	}
	defer fwd.Destroy()
	y, err := fwd.run(xs)
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	seed := draw(rng, normal, y[0].dims)
	loss := func(xs []array) float64 {
		o, err := fwd.run(xs)
		if err != nil {
			t.Fatalf("forward: %v", err)
		}
		return dot(seed.data, o[0].data)
	}
	// Numeric gradients, one input element at a time.
	numeric := make([][]float64, len(c.inputs))
	scale := 1.0
	for k, in := range c.inputs {
		if in.noGrad {
			continue
		}
		numeric[k] = make([]float64, len(xs[k].data))
		for j := range xs[k].data {
			v := xs[k].data[j]
			xs[k].data[j] = v + h
			lp := loss(xs)
			xs[k].data[j] = v - h
			lm := loss(xs)
			xs[k].data[j] = v
			numeric[k][j] = (lp - lm) / (2 * h)
			scale = max(scale, math.Abs(numeric[k][j]))
		}
	}
	for _, v := range variants {
		bm, res, err := build(m, Spec{Seeds: []string{c.out}, Wrt: wrt}, v.opt)
		if err != nil {
			t.Fatalf("%s: build: %v", v.name, err)
		}
		outs := []string{c.out}
		for _, w := range wrt {
			outs = append(outs, res.Grads[w])
		}
		s, err := newSession(bm, append(append([]string{}, names...), res.SeedInputs[c.out]), outs, elem, 1)
		if err != nil {
			t.Fatalf("%s: backward session: %v", v.name, err)
		}
		got, err := s.run(append(append([]array{}, xs...), seed))
		if derr := s.Destroy(); derr != nil {
			t.Fatal(derr)
		}
		if err != nil {
			t.Fatalf("%s: backward run: %v", v.name, err)
		}
		for i := range y[0].data {
			if got[0].data[i] != y[0].data[i] {
				t.Fatalf("%s: forward output changed at %d: %g vs %g", v.name, i, got[0].data[i], y[0].data[i])
			}
		}
		gi := 1
		for k, in := range c.inputs {
			if in.noGrad {
				continue
			}
			g := got[gi]
			gi++
			if fmt.Sprint(g.dims) != fmt.Sprint(xs[k].dims) {
				t.Fatalf("%s: grad %s has dims %v, want %v", v.name, in.name, g.dims, xs[k].dims)
			}
			worst, at := 0.0, 0
			for j := range g.data {
				if d := math.Abs(g.data[j] - numeric[k][j]); d > worst {
					worst, at = d, j
				}
			}
			if worst > tol*scale {
				t.Errorf("%s: d/d%s[%d]: backward %.9g, numeric %.9g (|diff| %.3g > %.3g)",
					v.name, in.name, at, g.data[at], numeric[k][at], worst, tol*scale)
			}
		}
	}
}

const intMax = math.MaxInt64

func opCases() []opCase {
	var cs []opCase
	un := func(op string, g gen, f32 bool, attrs ...*pb.AttributeProto) opCase {
		return opCase{name: op, f32: f32, inputs: []input{batched("x", g, 2, 3, 4)},
			nodes: []*pb.NodeProto{N(op, "/n", []string{"x"}, []string{"y"}, attrs...)}, out: "y"}
	}
	bin := func(name, op string, a, b input) opCase {
		return opCase{name: name, inputs: []input{a, b}, nodes: []*pb.NodeProto{N(op, "/n", []string{a.name, b.name}, []string{"y"})}, out: "y"}
	}
	A, I, F := onnxgraph.AttrInt, onnxgraph.AttrInts, onnxgraph.AttrFloat
	cs = append(cs,
		bin("Add/same", "Add", in("a", normal, 2, 3), in("b", normal, 2, 3)),
		bin("Add/broadcast", "Add", in("a", normal, 2, 3, 4), in("b", normal, 3, 1)),
		bin("Add/broadcast-both", "Add", in("a", normal, 2, 1, 4), in("b", normal, 3, 1)),
		opCase{name: "Add/bias-batch", inputs: []input{batched("x", normal, 3, 5)}, consts: []fconst{{name: "b", dims: []int64{5}}},
			nodes: []*pb.NodeProto{N("Add", "/n", []string{"x", "b"}, []string{"y"})}, out: "y"},
		bin("Sub/broadcast", "Sub", in("a", normal, 2, 3), in("b", normal, 3)),
		bin("Mul/se-broadcast", "Mul", batched("s", normal, 2, 4, 1, 1), batched("x", normal, 2, 4, 3, 3)),
		opCase{name: "Mul/square", inputs: []input{in("x", normal, 2, 3)}, nodes: []*pb.NodeProto{N("Mul", "/n", []string{"x", "x"}, []string{"y"})}, out: "y"},
		bin("Div/broadcast", "Div", in("a", normal, 2, 3), in("b", pos, 3)),
		bin("Pow/both", "Pow", in("a", pos, 2, 3), in("e", normal, 2, 3)),
		opCase{name: "Pow/const2", inputs: []input{in("x", normal, 2, 3)}, consts: []fconst{{name: "e", dims: []int64{}, data: []float64{2}}},
			nodes: []*pb.NodeProto{N("Pow", "/n", []string{"x", "e"}, []string{"y"})}, out: "y"},
		opCase{name: "Pow/const1.5", inputs: []input{in("x", pos, 2, 3)}, consts: []fconst{{name: "e", dims: []int64{1}, data: []float64{1.5}}},
			nodes: []*pb.NodeProto{N("Pow", "/n", []string{"x", "e"}, []string{"y"})}, out: "y"},
		opCase{name: "Sum/variadic", inputs: []input{in("a", normal, 2, 3), in("b", normal, 3), in("c", normal, 2, 1)},
			nodes: []*pb.NodeProto{N("Sum", "/n", []string{"a", "b", "c"}, []string{"y"})}, out: "y"},
		opCase{name: "Where/leaky", inputs: []input{in("x", away, 3, 4)}, consts: []fconst{{name: "k", dims: []int64{}, data: []float64{0.1}}, {name: "z", dims: []int64{}, data: []float64{0}}},
			nodes: []*pb.NodeProto{
				N("Greater", "/gt", []string{"x", "z"}, []string{"c"}),
				N("Mul", "/mul", []string{"x", "k"}, []string{"xk"}),
				N("Where", "/n", []string{"c", "x", "xk"}, []string{"y"})}, out: "y"},
		un("Identity", normal, false),
		un("Dropout", normal, false),
		un("Neg", normal, false),
		un("Abs", away, false),
		un("Exp", normal, false),
		un("Log", pos, false),
		un("Sqrt", pos, false),
		un("Reciprocal", pos, false),
		un("Relu", away, false),
		un("Sigmoid", normal, false),
		un("Tanh", normal, false),
		un("Softplus", normal, true),
		un("Softsign", normal, true),
		un("Selu", away, true),
		un("Elu", away, true, F("alpha", 0.7)),
		un("LeakyRelu", away, false, F("alpha", 0.05)),
		un("HardSigmoid", normal, true),
		un("Erf", normal, true),
		un("Softmax", normal, false, A("axis", 1)),
		un("Softmax", normal, false),
		un("LogSoftmax", normal, false, A("axis", 2)),
		opCase{name: "Clip", inputs: []input{in("x", away, 3, 4)}, consts: []fconst{{name: "lo", dims: []int64{}, data: []float64{-0.6}}, {name: "hi", dims: []int64{}, data: []float64{0.8}}},
			nodes: []*pb.NodeProto{N("Clip", "/n", []string{"x", "lo", "hi"}, []string{"y"})}, out: "y"},
		opCase{name: "Cast/float-double-float", f32: true, inputs: []input{in("x", normal, 2, 3)},
			nodes: []*pb.NodeProto{
				N("Cast", "/c1", []string{"x"}, []string{"d"}, A("to", int64(pb.TensorProto_DOUBLE))),
				N("Tanh", "/t", []string{"d"}, []string{"td"}),
				N("Cast", "/c2", []string{"td"}, []string{"y"}, A("to", int64(pb.TensorProto_FLOAT)))}, out: "y"},
		// Mish as lc0 writes it.
		opCase{name: "Mish/lc0", f32: true, inputs: []input{batched("x", normal, 2, 3, 4)}, nodes: []*pb.NodeProto{
			N("Softplus", "/sp", []string{"x"}, []string{"sp"}),
			N("Tanh", "/t", []string{"sp"}, []string{"t"}),
			N("Mul", "/m", []string{"t", "x"}, []string{"y"})}, out: "y"},

		opCase{name: "MatMul/2d-const", inputs: []input{batched("x", normal, 3, 4)}, consts: []fconst{{name: "w", dims: []int64{4, 5}}},
			nodes: []*pb.NodeProto{N("MatMul", "/n", []string{"x", "w"}, []string{"y"})}, out: "y"},
		bin("MatMul/3d", "MatMul", batched("a", normal, 2, 3, 4), batched("b", normal, 2, 4, 5)),
		bin("MatMul/4d", "MatMul", batched("a", normal, 2, 2, 3, 4), batched("b", normal, 2, 2, 4, 3)),
		bin("MatMul/broadcast", "MatMul", in("a", normal, 2, 1, 3, 4), in("b", normal, 3, 4, 2)),
		bin("MatMul/3d-2d", "MatMul", batched("a", normal, 2, 3, 4), in("b", normal, 4, 5)),
		bin("MatMul/1d-3d", "MatMul", in("a", normal, 4), in("b", normal, 2, 4, 3)),
		bin("MatMul/3d-1d", "MatMul", in("a", normal, 2, 3, 4), in("b", normal, 4)),
		opCase{name: "MatMul/1d-1d", inputs: []input{in("a", normal, 4), in("b", normal, 4)}, ints: []*pb.TensorProto{ints("z", 0)},
			nodes: []*pb.NodeProto{
				N("MatMul", "/n", []string{"a", "b"}, []string{"s"}),
				N("Unsqueeze", "/u", []string{"s", "z"}, []string{"y"})}, out: "y"},
		opCase{name: "Gemm/transB", inputs: []input{batched("a", normal, 3, 4), in("b", normal, 5, 4), in("c", normal, 5)},
			nodes: []*pb.NodeProto{N("Gemm", "/n", []string{"a", "b", "c"}, []string{"y"}, F("alpha", 0.5), F("beta", 2), A("transB", 1))}, out: "y"},
		opCase{name: "Gemm/transA", inputs: []input{in("a", normal, 4, 3), in("b", normal, 4, 5), in("c", normal, 3, 1)},
			nodes: []*pb.NodeProto{N("Gemm", "/n", []string{"a", "b", "c"}, []string{"y"}, A("transA", 1))}, out: "y"},
		opCase{name: "Gemm/transAB", inputs: []input{in("a", normal, 4, 3), in("b", normal, 5, 4)},
			nodes: []*pb.NodeProto{N("Gemm", "/n", []string{"a", "b"}, []string{"y"}, A("transA", 1), A("transB", 1), F("alpha", 1.5))}, out: "y"},

		opCase{name: "Conv/3x3-pad1-bias", f32: true, inputs: []input{batched("x", normal, 2, 3, 5, 5)},
			consts: []fconst{{name: "w", dims: []int64{4, 3, 3, 3}}, {name: "b", dims: []int64{4}}},
			nodes:  []*pb.NodeProto{N("Conv", "/n", []string{"x", "w", "b"}, []string{"y"}, I("pads", 1, 1, 1, 1), I("kernel_shape", 3, 3))}, out: "y"},
		opCase{name: "Conv/1x1", f32: true, inputs: []input{batched("x", normal, 2, 4, 3, 3)},
			consts: []fconst{{name: "w", dims: []int64{2, 4, 1, 1}}, {name: "b", dims: []int64{2}}},
			nodes:  []*pb.NodeProto{N("Conv", "/n", []string{"x", "w", "b"}, []string{"y"}, I("pads", 0, 0, 0, 0), I("kernel_shape", 1, 1))}, out: "y"},
		opCase{name: "Conv/groups", f32: true, inputs: []input{in("x", normal, 1, 4, 5, 5)},
			consts: []fconst{{name: "w", dims: []int64{6, 2, 3, 3}}},
			nodes:  []*pb.NodeProto{N("Conv", "/n", []string{"x", "w"}, []string{"y"}, I("pads", 1, 1, 1, 1), A("group", 2))}, out: "y"},
		opCase{name: "Conv/stride2", f32: true, inputs: []input{in("x", normal, 1, 2, 7, 6)},
			consts: []fconst{{name: "w", dims: []int64{3, 2, 3, 3}}},
			nodes:  []*pb.NodeProto{N("Conv", "/n", []string{"x", "w"}, []string{"y"}, I("pads", 1, 1, 1, 1), I("strides", 2, 2))}, out: "y"},
		opCase{name: "Conv/dilation2-asym-pads", f32: true, inputs: []input{in("x", normal, 1, 2, 6, 6)},
			consts: []fconst{{name: "w", dims: []int64{3, 2, 3, 3}}},
			nodes:  []*pb.NodeProto{N("Conv", "/n", []string{"x", "w"}, []string{"y"}, I("pads", 0, 1, 2, 3), I("dilations", 2, 2))}, out: "y"},
		opCase{name: "Conv/same-upper-k2", f32: true, inputs: []input{in("x", normal, 1, 2, 4, 4)},
			consts: []fconst{{name: "w", dims: []int64{2, 2, 2, 2}}},
			nodes:  []*pb.NodeProto{N("Conv", "/n", []string{"x", "w"}, []string{"y"}, onnxgraph.AttrString("auto_pad", "SAME_UPPER"))}, out: "y"},
		opCase{name: "Conv/run-time-weights", f32: true,
			inputs: []input{in("x", normal, 1, 4, 4, 4), {name: "w", decl: []int64{4, 2, 3, 3}, dims: []int64{4, 2, 3, 3}, noGrad: true}, in("b", normal, 4)},
			nodes:  []*pb.NodeProto{N("Conv", "/n", []string{"x", "w", "b"}, []string{"y"}, I("pads", 1, 1, 1, 1), A("group", 2))}, out: "y"},

		opCase{name: "Reshape", inputs: []input{batched("x", normal, 2, 3, 4)}, ints: []*pb.TensorProto{ints("s", -1, 4)},
			nodes: []*pb.NodeProto{N("Reshape", "/n", []string{"x", "s"}, []string{"y"})}, out: "y"},
		un("Flatten", normal, false, A("axis", 2)),
		opCase{name: "Squeeze", inputs: []input{in("x", normal, 2, 1, 3)}, ints: []*pb.TensorProto{ints("a", 1)},
			nodes: []*pb.NodeProto{N("Squeeze", "/n", []string{"x", "a"}, []string{"y"})}, out: "y"},
		opCase{name: "Unsqueeze", inputs: []input{batched("x", normal, 2, 3)}, ints: []*pb.TensorProto{ints("a", 0, 3)},
			nodes: []*pb.NodeProto{N("Unsqueeze", "/n", []string{"x", "a"}, []string{"y"})}, out: "y"},
		un("Transpose", normal, false, I("perm", 0, 2, 1)),
		un("Transpose", normal, false),
		opCase{name: "Expand", inputs: []input{in("x", normal, 3, 1)}, ints: []*pb.TensorProto{ints("s", 2, 3, 4)},
			nodes: []*pb.NodeProto{N("Expand", "/n", []string{"x", "s"}, []string{"y"})}, out: "y"},
		opCase{name: "Concat/repeated-input", inputs: []input{batched("a", normal, 2, 2, 3), batched("b", normal, 2, 1, 3)},
			nodes: []*pb.NodeProto{N("Concat", "/n", []string{"a", "b", "a"}, []string{"y"}, A("axis", 1))}, out: "y"},
		opCase{name: "Split/split-input", inputs: []input{batched("x", normal, 2, 4, 3)}, ints: []*pb.TensorProto{ints("sp", 3, 1)},
			nodes: []*pb.NodeProto{
				N("Split", "/n", []string{"x", "sp"}, []string{"p", "q"}, A("axis", 1)),
				N("Concat", "/c", []string{"q", "p"}, []string{"y"}, A("axis", 1))}, out: "y"},
		opCase{name: "Split/se-equal", inputs: []input{batched("x", normal, 2, 6, 1, 1)},
			nodes: []*pb.NodeProto{
				N("Split", "/n", []string{"x"}, []string{"p", "q"}, A("axis", 1)),
				N("Sigmoid", "/s", []string{"p"}, []string{"sp"}),
				N("Mul", "/m", []string{"sp", "q"}, []string{"y"})}, out: "y"},
		opCase{name: "Split/one-used", inputs: []input{batched("x", normal, 2, 5)}, ints: []*pb.TensorProto{ints("sp", 1, 2, 2)},
			nodes: []*pb.NodeProto{
				N("Split", "/n", []string{"x", "sp"}, []string{"p", "q", "r"}, A("axis", 1)),
				N("Tanh", "/t", []string{"q"}, []string{"y"})}, out: "y"},
		opCase{name: "Split/two-of-three-used", inputs: []input{in("x", normal, 2, 5)}, ints: []*pb.TensorProto{ints("sp", 1, 2, 2)},
			nodes: []*pb.NodeProto{
				N("Split", "/n", []string{"x", "sp"}, []string{"p", "q", "r"}, A("axis", 1)),
				N("Mul", "/t", []string{"p", "r"}, []string{"y"})}, out: "y"},
		opCase{name: "Slice/lc0", inputs: []input{batched("x", normal, 2, 4, 6)}, ints: []*pb.TensorProto{ints("st", 0, 1, 2), ints("en", intMax, 3, 6)},
			nodes: []*pb.NodeProto{N("Slice", "/n", []string{"x", "st", "en"}, []string{"y"})}, out: "y"},
		opCase{name: "Slice/negative-axes", inputs: []input{in("x", normal, 2, 4, 6)}, ints: []*pb.TensorProto{ints("st", -3), ints("en", -1), ints("ax", -1)},
			nodes: []*pb.NodeProto{N("Slice", "/n", []string{"x", "st", "en", "ax"}, []string{"y"})}, out: "y"},
		opCase{name: "Gather/policy-map", inputs: []input{batched("x", normal, 2, 6)}, ints: []*pb.TensorProto{ints("i", 4, 0, 5)},
			nodes: []*pb.NodeProto{N("Gather", "/n", []string{"x", "i"}, []string{"y"}, A("axis", 1))}, out: "y"},
		opCase{name: "Gather/duplicates", inputs: []input{in("x", normal, 2, 6)}, ints: []*pb.TensorProto{ints("i", 1, -1, 1, 3)},
			nodes: []*pb.NodeProto{N("Gather", "/n", []string{"x", "i"}, []string{"y"}, A("axis", 1))}, out: "y"},
		opCase{name: "Gather/scalar-index", inputs: []input{in("x", normal, 3, 4)}, ints: []*pb.TensorProto{onnxgraph.Int64Tensor("i", nil, []int64{2})},
			nodes: []*pb.NodeProto{N("Gather", "/n", []string{"x", "i"}, []string{"y"})}, out: "y"},

		opCase{name: "ReduceMean/spatial", inputs: []input{batched("x", normal, 2, 3, 2, 2)},
			nodes: []*pb.NodeProto{N("ReduceMean", "/n", []string{"x"}, []string{"y"}, I("axes", 2, 3), A("keepdims", 0))}, out: "y"},
		opCase{name: "ReduceMean/all", inputs: []input{in("x", normal, 2, 3)}, ints: []*pb.TensorProto{ints("z", 0)},
			nodes: []*pb.NodeProto{
				N("ReduceMean", "/n", []string{"x"}, []string{"m"}, A("keepdims", 0)),
				N("Unsqueeze", "/u", []string{"m", "z"}, []string{"y"})}, out: "y"},
		opCase{name: "ReduceSum/axes-input", inputs: []input{batched("x", normal, 2, 3, 4)}, ints: []*pb.TensorProto{ints("a", 1)},
			nodes: []*pb.NodeProto{N("ReduceSum", "/n", []string{"x", "a"}, []string{"y"})}, out: "y"},
		opCase{name: "ReduceSumSquare", inputs: []input{in("x", normal, 2, 3, 4)},
			nodes: []*pb.NodeProto{N("ReduceSumSquare", "/n", []string{"x"}, []string{"y"}, I("axes", -1), A("keepdims", 0))}, out: "y"},
		un("GlobalAveragePool", normal, true),
		// Squeeze-excitation as lc0 writes it: a spatial mean feeds gates that scale the same tensor, so its
		// gradient sums a partial (broadcast) and a full contribution.
		opCase{name: "SE/lc0", inputs: []input{batched("x", normal, 2, 4, 3, 3)}, consts: []fconst{{name: "w", dims: []int64{4, 8}}, {name: "b", dims: []int64{8}}},
			ints: []*pb.TensorProto{ints("s", -1, 8, 1, 1)},
			nodes: []*pb.NodeProto{
				N("ReduceMean", "/rm", []string{"x"}, []string{"m"}, I("axes", 2, 3), A("keepdims", 0)),
				N("MatMul", "/mm", []string{"m", "w"}, []string{"mw"}),
				N("Add", "/add", []string{"mw", "b"}, []string{"mb"}),
				N("Reshape", "/r", []string{"mb", "s"}, []string{"r"}),
				N("Split", "/sp", []string{"r"}, []string{"p", "q"}, A("axis", 1)),
				N("Sigmoid", "/sig", []string{"p"}, []string{"sg"}),
				N("Mul", "/mul", []string{"sg", "x"}, []string{"sx"}),
				N("Add", "/add3", []string{"sx", "q"}, []string{"y"})}, out: "y"},

		opCase{name: "LayerNormalization/axis-1", inputs: []input{batched("x", normal, 2, 3, 5)},
			consts: []fconst{{name: "s", dims: []int64{5}}, {name: "b", dims: []int64{5}}},
			nodes:  []*pb.NodeProto{N("LayerNormalization", "/n", []string{"x", "s", "b"}, []string{"y"}, A("axis", -1), F("epsilon", 1e-3))}, out: "y"},
		opCase{name: "LayerNormalization/axis1-scale-bias-wrt", inputs: []input{batched("x", normal, 4, 6), in("s", normal, 6), in("b", normal, 6)},
			nodes: []*pb.NodeProto{N("LayerNormalization", "/n", []string{"x", "s", "b"}, []string{"y"}, A("axis", 1), F("epsilon", 1e-6))}, out: "y"},
		opCase{name: "LayerNormalization/float32-stats", f32: true, inputs: []input{batched("x", normal, 4, 6)},
			consts: []fconst{{name: "s", dims: []int64{6}}, {name: "b", dims: []int64{6}}},
			nodes:  []*pb.NodeProto{N("LayerNormalization", "/n", []string{"x", "s", "b"}, []string{"y"}, A("axis", 1), F("epsilon", 1e-3))}, out: "y"},
		opCase{name: "BatchNormalization", f32: true, inputs: []input{in("x", normal, 2, 3, 2, 2)},
			consts: []fconst{{name: "s", dims: []int64{3}}, {name: "b", dims: []int64{3}}, {name: "m", dims: []int64{3}}, {name: "v", dims: []int64{3}, data: []float64{0.5, 1, 2}}},
			nodes:  []*pb.NodeProto{N("BatchNormalization", "/n", []string{"x", "s", "b", "m", "v"}, []string{"y"})}, out: "y"},

		// Integer paths: shapes computed from the data feed Reshape and Expand and must be skipped.
		opCase{name: "Shape/reshape-like", inputs: []input{in("x", normal, 3, 4), batched("z", normal, 2, 6)},
			nodes: []*pb.NodeProto{
				N("Shape", "/sh", []string{"z"}, []string{"zs"}),
				N("Reshape", "/r", []string{"x", "zs"}, []string{"xr"}),
				N("Add", "/n", []string{"xr", "z"}, []string{"y"})}, out: "y"},
		opCase{name: "Shape/expand-pos-encoding", inputs: []input{batched("x", normal, 2, 4, 3)},
			consts: []fconst{{name: "pe", dims: []int64{1, 4, 2}}},
			ints:   []*pb.TensorProto{ints("st", 0), ints("en", 1), ints("tail", 4, 2)},
			nodes: []*pb.NodeProto{
				N("Shape", "/sh", []string{"x"}, []string{"xs"}),
				N("Slice", "/b", []string{"xs", "st", "en"}, []string{"bs"}),
				N("Concat", "/cs", []string{"bs", "tail"}, []string{"es"}, A("axis", 0)),
				N("Expand", "/e", []string{"pe", "es"}, []string{"pex"}),
				N("Concat", "/n", []string{"x", "pex"}, []string{"y"}, A("axis", 2))}, out: "y"},
	)
	return cs
}

func TestRulesFiniteDifferences(t *testing.T) {
	needORT(t)
	seen := map[string]int{}
	for _, c := range opCases() {
		name := c.name
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s#%d", name, seen[name])
		}
		t.Run(name, func(t *testing.T) { checkCase(t, c) })
	}
}

// TestRulesCoverOps checks that the table exercises every op with a rule.
func TestRulesCoverOps(t *testing.T) {
	used := map[string]bool{}
	for _, c := range opCases() {
		for _, n := range c.nodes {
			used[n.GetOpType()] = true
		}
	}
	for _, op := range SupportedOps() {
		if !used[op] {
			t.Errorf("no finite-difference case for %s", op)
		}
	}
}

func TestCheck(t *testing.T) {
	g := &pb.GraphProto{
		Input: []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, -1, 4)},
		Node: []*pb.NodeProto{
			N("Relu", "/body", []string{"x"}, []string{"h"}),
			N("Sin", "/policy/sin", []string{"h"}, []string{"p"}),
			N("Tanh", "/value/tanh", []string{"h"}, []string{"v"}),
			N("Cos", "/value/cos", []string{"v"}, []string{"w"}),
		},
		Output: []*pb.ValueInfoProto{onnxgraph.UntypedOutput("p", pb.TensorProto_FLOAT), onnxgraph.UntypedOutput("v", pb.TensorProto_FLOAT), onnxgraph.UntypedOutput("w", pb.TensorProto_FLOAT)},
	}
	m := onnxgraph.NewModel(g, 17)
	if err := Check(m, Spec{Seeds: []string{"v"}, Wrt: []string{"x"}}); err != nil {
		t.Errorf("seeding v: the Sin (policy) branch is off the path, got %v", err)
	}
	err := Check(m, Spec{Seeds: []string{"p"}, Wrt: []string{"x"}})
	var ue *UnsupportedOpError
	if !errors.As(err, &ue) || ue.Op != "Sin" || ue.Node != "/policy/sin" {
		t.Fatalf("seeding p: got %v, want UnsupportedOpError for Sin", err)
	}
	if want := `autograd: no gradient rule for op "Sin" (node "/policy/sin")`; ue.Error() != want {
		t.Errorf("Error() = %q, want %q", ue.Error(), want)
	}
	// Both unsupported ops on paths: the first in forward order is reported.
	if err := Check(m, Spec{Seeds: []string{"w", "p"}, Wrt: []string{"x"}}); !errors.As(err, &ue) || ue.Op != "Sin" {
		t.Errorf("seeding w and p: got %v, want Sin first", err)
	}
	// Wrt downstream of the unsupported op's input: nothing to walk through Sin.
	if err := Check(m, Spec{Seeds: []string{"w"}, Wrt: []string{"v"}}); !errors.As(err, &ue) || ue.Op != "Cos" {
		t.Errorf("w wrt v: got %v, want Cos", err)
	}
	if _, _, err := Build(m, Spec{Seeds: []string{"p"}, Wrt: []string{"x"}}); !errors.As(err, &ue) {
		t.Errorf("Build must refuse what Check flags, got %v", err)
	}
}

func TestCheckConvWeightOnPath(t *testing.T) {
	g := &pb.GraphProto{
		Input: []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, 1, 2, 3, 3), onnxgraph.ValueInfo("w", pb.TensorProto_FLOAT, 2, 2, 1, 1)},
		Node:  []*pb.NodeProto{N("Conv", "/c", []string{"x", "w"}, []string{"y"})},
	}
	m := onnxgraph.NewModel(g, 17)
	var ue *UnsupportedOpError
	if err := Check(m, Spec{Seeds: []string{"y"}, Wrt: []string{"w"}}); !errors.As(err, &ue) || ue.Input != "w" {
		t.Errorf("got %v, want UnsupportedOpError for input w", err)
	}
	if err := Check(m, Spec{Seeds: []string{"y"}, Wrt: []string{"x"}}); err != nil {
		t.Errorf("w not differentiated: %v", err)
	}
}

func TestSpecErrors(t *testing.T) {
	g := &pb.GraphProto{
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, 2), onnxgraph.ValueInfo("i", pb.TensorProto_INT64, 2)},
		Initializer: []*pb.TensorProto{onnxgraph.Float32Tensor("w", []int64{2}, []float32{1, 2})},
		Node: []*pb.NodeProto{
			N("Mul", "/m", []string{"x", "w"}, []string{"y"}),
			N("Cast", "/c", []string{"i"}, []string{"f"}, onnxgraph.AttrInt("to", int64(pb.TensorProto_FLOAT))),
		},
	}
	m := onnxgraph.NewModel(g, 17)
	for _, s := range []Spec{
		{Seeds: []string{"y"}},
		{Seeds: []string{"nope"}, Wrt: []string{"x"}},
		{Seeds: []string{"y"}, Wrt: []string{"w"}},
		{Seeds: []string{"y"}, Wrt: []string{"i"}},
		{Seeds: []string{"y", "y"}, Wrt: []string{"x"}},
	} {
		if _, _, err := Build(m, s); !errors.Is(err, ErrSpec) {
			t.Errorf("%+v: got %v, want ErrSpec", s, err)
		}
	}
	old := onnxgraph.NewModel(g, 11)
	if err := Check(old, Spec{Seeds: []string{"y"}, Wrt: []string{"x"}}); err == nil {
		t.Error("opset 11 accepted")
	}
}

// TestDocListsOps keeps the package documentation in step with the registry.
func TestDocListsOps(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(string(doc), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		words[w] = true
	}
	for _, op := range SupportedOps() {
		if !words[op] {
			t.Errorf("doc.go does not list %s", op)
		}
	}
	for _, op := range SupportedOps() {
		for _, nd := range NonDifferentiableOps() {
			if op == nd {
				t.Errorf("%s is both differentiable and not", op)
			}
		}
	}
}

// TestMalformedNodes: nodes missing inputs give errors, not panics.
func TestMalformedNodes(t *testing.T) {
	for _, n := range []*pb.NodeProto{
		N("Mul", "/m", []string{"x"}, []string{"y"}),
		N("Conv", "/c", []string{"x"}, []string{"y"}),
		N("Gather", "/g", []string{"x"}, []string{"y"}),
		N("Transpose", "/t", []string{"x"}, []string{"y"}, onnxgraph.AttrInts("perm", 5, 0)),
		N("Concat", "/c", nil, []string{"y"}),
	} {
		g := &pb.GraphProto{Input: []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, 2, 3)}, Node: []*pb.NodeProto{n}}
		m := onnxgraph.NewModel(g, 17)
		if _, _, err := Build(m, Spec{Seeds: []string{"y"}, Wrt: []string{"x"}}); err == nil && n.GetOpType() != "Concat" {
			t.Errorf("%s with inputs %v: no error", n.GetOpType(), n.GetInput())
		}
	}
}

// TestIntermediateWrt checks gradients w.r.t. a node output and w.r.t. an input no seed depends on, against
// closed forms: y = tanh(2x), seeded with s, gives dL/dh = s(1-y^2) for h = 2x, dL/dx = 2 s (1-y^2), and
// zeros for the unrelated input u.
func TestIntermediateWrt(t *testing.T) {
	needORT(t)
	g := &pb.GraphProto{
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_DOUBLE, -1, 3), onnxgraph.ValueInfo("u", pb.TensorProto_DOUBLE, 2)},
		Initializer: []*pb.TensorProto{onnxgraph.Float64Tensor("two", nil, []float64{2})},
		Node: []*pb.NodeProto{
			N("Mul", "/h", []string{"x", "two"}, []string{"h"}),
			N("Tanh", "/y", []string{"h"}, []string{"y"}),
			N("Neg", "/v", []string{"u"}, []string{"v"}),
		},
		Output: []*pb.ValueInfoProto{onnxgraph.UntypedOutput("y", pb.TensorProto_DOUBLE), onnxgraph.UntypedOutput("v", pb.TensorProto_DOUBLE)},
	}
	m := onnxgraph.NewModel(g, 17)
	bm, res, err := Build(m, Spec{Seeds: []string{"y"}, Wrt: []string{"x", "h", "u"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSession(bm, []string{"x", "u", res.SeedInputs["y"]}, []string{"y", res.Grads["x"], res.Grads["h"], res.Grads["u"]}, pb.TensorProto_DOUBLE, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Destroy(); err != nil {
			t.Error(err)
		}
	}()
	x := array{dims: []int64{2, 3}, data: []float64{-1, -0.5, 0, 0.25, 0.5, 1}}
	seed := array{dims: []int64{2, 3}, data: []float64{1, -2, 3, 0.5, -1, 2}}
	o, err := s.run([]array{x, {dims: []int64{2}, data: []float64{1, 2}}, seed})
	if err != nil {
		t.Fatal(err)
	}
	for i, xv := range x.data {
		y := math.Tanh(2 * xv)
		dh := seed.data[i] * (1 - y*y)
		if math.Abs(o[2].data[i]-dh) > 1e-12 || math.Abs(o[1].data[i]-2*dh) > 1e-12 {
			t.Errorf("element %d: dL/dh %g, dL/dx %g; want %g, %g", i, o[2].data[i], o[1].data[i], dh, 2*dh)
		}
	}
	if fmt.Sprint(o[3].dims) != "[2]" || o[3].data[0] != 0 || o[3].data[1] != 0 {
		t.Errorf("dL/du = %v %v, want zeros of shape [2]", o[3].dims, o[3].data)
	}
}
