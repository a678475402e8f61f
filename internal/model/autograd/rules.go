package autograd

import (
	"errors"
	"fmt"
	"math"

	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// gradFn returns one contribution per input of n (zero value for none) given the gradients gy of its outputs
// ("" for an output nothing downstream depends on). Only inputs with b.needs(n, i) are read by the caller.
type gradFn func(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error)

// rule is an op's gradient. grad nil marks an op recognised as non-differentiable. diff (nil: every input)
// says which inputs gradient flows to at all; supports (nil: all of diff) which of those the rule handles.
type rule struct {
	grad     gradFn
	diff     func(n *pb.NodeProto, i int) bool
	supports func(n *pb.NodeProto, i int) bool
	arity    int // inputs the rule reads (0: 1)
}

func only(idx ...int) func(*pb.NodeProto, int) bool {
	return func(_ *pb.NodeProto, i int) bool {
		for _, j := range idx {
			if i == j {
				return true
			}
		}
		return false
	}
}

// unary wraps the gradient of a one-input op.
func unary(f func(b *builder, n *pb.NodeProto, g string) string) rule {
	return rule{diff: only(0), grad: func(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
		return []contrib{full(f(b, n, gy[0]))}, nil
	}}
}

// withArity sets the number of inputs a rule reads, checked before it runs so malformed nodes give errors.
func withArity(r rule, n int) rule {
	r.arity = n
	return r
}

// nondiff marks an op as carrying no gradient.
var nondiff = rule{}

// rules is the registry of gradient rules, by op type.
var rules = map[string]rule{
	"Identity": unary(func(_ *builder, _ *pb.NodeProto, g string) string { return g }),
	"Dropout":  unary(func(_ *builder, _ *pb.NodeProto, g string) string { return g }), // inference mode
	"Cast": {diff: func(n *pb.NodeProto, i int) bool {
		return i == 0 && shape.IsFloat(pb.TensorProto_DataType(onnxgraph.AttrIntOr(n, "to", 0)))
	}, grad: gradCast},
	"Neg": unary(func(b *builder, _ *pb.NodeProto, g string) string { return b.op("Neg", []string{g}) }),
	"Abs": unary(func(b *builder, n *pb.NodeProto, g string) string {
		return b.op("Mul", []string{g, b.op("Sign", []string{n.GetInput()[0]})})
	}),
	"Exp": unary(func(b *builder, n *pb.NodeProto, g string) string {
		return b.op("Mul", []string{g, n.GetOutput()[0]})
	}),
	"Log": unary(func(b *builder, n *pb.NodeProto, g string) string {
		return b.op("Div", []string{g, n.GetInput()[0]})
	}),
	"Sqrt": unary(func(b *builder, n *pb.NodeProto, g string) string {
		half := b.scalar(b.elem(n.GetOutput()[0]), 0.5)
		return b.op("Div", []string{b.op("Mul", []string{g, half}), n.GetOutput()[0]})
	}),
	"Reciprocal": unary(func(b *builder, n *pb.NodeProto, g string) string {
		y := n.GetOutput()[0]
		return b.op("Neg", []string{b.op("Mul", []string{g, b.op("Mul", []string{y, y})})})
	}),
	"Relu":    unary(gradRelu),
	"Sigmoid": unary(gradSigmoid),
	"Tanh": unary(func(b *builder, n *pb.NodeProto, g string) string {
		y := n.GetOutput()[0]
		one := b.scalar(b.elem(y), 1)
		return b.op("Mul", []string{g, b.op("Sub", []string{one, b.op("Mul", []string{y, y})})})
	}),
	"Softplus": unary(func(b *builder, n *pb.NodeProto, g string) string {
		return b.op("Mul", []string{g, b.op("Sigmoid", []string{n.GetInput()[0]})})
	}),
	"Softsign": unary(func(b *builder, n *pb.NodeProto, g string) string {
		x := n.GetInput()[0]
		d := b.op("Add", []string{b.scalar(b.elem(x), 1), b.op("Abs", []string{x})})
		return b.op("Div", []string{g, b.op("Mul", []string{d, d})})
	}),
	"Selu": unary(func(b *builder, n *pb.NodeProto, g string) string {
		alpha := float64(onnxgraph.AttrFloatOr(n, "alpha", 1.67326319217681884765625))
		gamma := float64(onnxgraph.AttrFloatOr(n, "gamma", 1.05070102214813232421875))
		return b.expLinear(n, g, gamma, gamma*alpha)
	}),
	"Elu": unary(func(b *builder, n *pb.NodeProto, g string) string {
		return b.expLinear(n, g, 1, float64(onnxgraph.AttrFloatOr(n, "alpha", 1)))
	}),
	"LeakyRelu": unary(func(b *builder, n *pb.NodeProto, g string) string {
		x := n.GetInput()[0]
		el := b.elem(x)
		alpha := float64(onnxgraph.AttrFloatOr(n, "alpha", 0.01))
		pos := b.op("Greater", []string{x, b.scalar(el, 0)})
		return b.op("Where", []string{pos, g, b.op("Mul", []string{g, b.scalar(el, alpha)})})
	}),
	"HardSigmoid": unary(func(b *builder, n *pb.NodeProto, g string) string {
		y := n.GetOutput()[0]
		el := b.elem(y)
		alpha := float64(onnxgraph.AttrFloatOr(n, "alpha", 0.2))
		in := b.op("And", []string{b.op("Greater", []string{y, b.scalar(el, 0)}), b.op("Less", []string{y, b.scalar(el, 1)})})
		return b.op("Where", []string{in, b.op("Mul", []string{g, b.scalar(el, alpha)}), b.scalar(el, 0)})
	}),
	"Erf": unary(func(b *builder, n *pb.NodeProto, g string) string {
		x := n.GetInput()[0]
		el := b.elem(x)
		e := b.op("Exp", []string{b.op("Neg", []string{b.op("Mul", []string{x, x})})})
		return b.op("Mul", []string{g, b.op("Mul", []string{e, b.scalar(el, 2/math.Sqrt(math.Pi))})})
	}),
	"Clip":       {diff: only(0), grad: gradClip},
	"Softmax":    unary(gradSoftmax),
	"LogSoftmax": unary(gradLogSoftmax),

	"Add":   {grad: gradAddSub, arity: 2},
	"Sub":   {grad: gradAddSub, arity: 2},
	"Sum":   {grad: gradAddSub},
	"Mul":   {grad: gradMul, arity: 2},
	"Div":   {grad: gradDiv, arity: 2},
	"Pow":   {grad: gradPow, arity: 2},
	"Where": {diff: func(_ *pb.NodeProto, i int) bool { return i > 0 }, grad: gradWhere, arity: 3},

	"MatMul": {grad: gradMatMul, arity: 2},
	"Gemm":   {grad: gradGemm, arity: 2},
	"Conv":   {grad: gradConv, supports: func(n *pb.NodeProto, i int) bool { return i != 1 }, arity: 2},
	"BatchNormalization": {grad: gradBatchNorm, supports: only(0),
		diff: func(n *pb.NodeProto, i int) bool { return i < 5 }, arity: 5},
	"LayerNormalization": {grad: gradLayerNorm, arity: 2},

	"Reshape":   {diff: only(0), grad: gradReshapeLike, arity: 2},
	"Flatten":   {diff: only(0), grad: gradReshapeLike},
	"Squeeze":   {diff: only(0), grad: gradReshapeLike},
	"Unsqueeze": {diff: only(0), grad: gradReshapeLike},
	"Expand":    {diff: only(0), grad: gradExpand, arity: 2},
	"Transpose": {diff: only(0), grad: gradTranspose},
	"Concat":    {grad: gradConcat},
	"Split":     {diff: only(0), grad: gradSplit},
	"Slice":     {diff: only(0), grad: gradSlice, arity: 3},
	"Gather":    {diff: only(0), grad: gradGather, arity: 2},

	"ReduceMean":        {diff: only(0), grad: gradReduce},
	"ReduceSum":         {diff: only(0), grad: gradReduce},
	"ReduceSumSquare":   {diff: only(0), grad: gradReduce},
	"GlobalAveragePool": {diff: only(0), grad: gradGlobalAveragePool},

	// Recognised as carrying no gradient: integer/boolean results, or piecewise constant (zero gradient
	// almost everywhere).
	"Shape": nondiff, "Size": nondiff, "Constant": nondiff, "ConstantOfShape": nondiff, "Range": nondiff,
	"NonZero": nondiff, "ArgMax": nondiff, "ArgMin": nondiff, "Equal": nondiff, "Greater": nondiff,
	"Less": nondiff, "GreaterOrEqual": nondiff, "LessOrEqual": nondiff, "Not": nondiff, "And": nondiff,
	"Or": nondiff, "Xor": nondiff, "IsNaN": nondiff, "IsInf": nondiff, "Sign": nondiff, "Floor": nondiff,
	"Ceil": nondiff, "Round": nondiff, "OneHot": nondiff, "RandomNormalLike": nondiff,
	"RandomUniformLike": nondiff, "EyeLike": nondiff,
}

// ---- elementwise ----

func gradCast(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	x := n.GetInput()[0]
	if b.info(x).Elem == b.info(n.GetOutput()[0]).Elem {
		return []contrib{full(gy[0])}, nil
	}
	return []contrib{full(b.op("Cast", []string{gy[0]}, onnxgraph.AttrInt("to", int64(b.elem(x)))))}, nil
}

// gradRelu masks g by y > 0, so Relu'(0) = 0. It reads the output, not the input: ORT fuses Conv+Relu, and
// reading the pre-activation would force it to be materialised. The default mask, Mul(g, Cast(y > 0)), was
// measured on ORT's CPU provider (maia-1100, batch 256) at under half the time of Where(y > 0, g, 0), whose
// scalar branch takes a slow broadcasting path, and of Mul(g, Sign(y)).
func gradRelu(b *builder, n *pb.NodeProto, g string) string {
	y := n.GetOutput()[0]
	el := b.elem(y)
	switch b.opt.reluMask {
	case "sign":
		return b.op("Mul", []string{g, b.op("Sign", []string{y})})
	case "where":
		return b.op("Where", []string{b.op("Greater", []string{y, b.scalar(el, 0)}), g, b.scalar(el, 0)})
	}
	m := b.op("Cast", []string{b.op("Greater", []string{y, b.scalar(el, 0)})}, onnxgraph.AttrInt("to", int64(el)))
	return b.op("Mul", []string{g, m})
}

func gradSigmoid(b *builder, n *pb.NodeProto, g string) string {
	y := n.GetOutput()[0]
	d := b.op("Mul", []string{y, b.op("Sub", []string{b.scalar(b.elem(y), 1), y})})
	return b.op("Mul", []string{g, d})
}

// expLinear is the gradient of Selu/Elu: scale for x > 0, else y + offset (the derivative of
// scale*alpha*(e^x-1) is y + scale*alpha).
func (b *builder) expLinear(n *pb.NodeProto, g string, scale, offset float64) string {
	x, y := n.GetInput()[0], n.GetOutput()[0]
	el := b.elem(y)
	pos := b.op("Greater", []string{x, b.scalar(el, 0)})
	gp := g
	if scale != 1 {
		gp = b.op("Mul", []string{g, b.scalar(el, scale)})
	}
	gn := b.op("Mul", []string{g, b.op("Add", []string{y, b.scalar(el, offset)})})
	return b.op("Where", []string{pos, gp, gn})
}

// gradClip passes g strictly inside (min, max); at the bounds the gradient is 0.
func gradClip(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	x := n.GetInput()[0]
	el := b.elem(x)
	var mask string
	and := func(m string) {
		if mask == "" {
			mask = m
		} else {
			mask = b.op("And", []string{mask, m})
		}
	}
	lo, hi := "", ""
	if len(n.GetInput()) > 1 {
		lo = n.GetInput()[1]
	} else if a := onnxgraph.Attr(n, "min"); a != nil {
		lo = b.scalar(el, float64(a.GetF()))
	}
	if len(n.GetInput()) > 2 {
		hi = n.GetInput()[2]
	} else if a := onnxgraph.Attr(n, "max"); a != nil {
		hi = b.scalar(el, float64(a.GetF()))
	}
	if lo != "" {
		and(b.op("Greater", []string{x, lo}))
	}
	if hi != "" {
		and(b.op("Less", []string{x, hi}))
	}
	if mask == "" {
		return []contrib{full(gy[0])}, nil
	}
	return []contrib{full(b.op("Where", []string{mask, gy[0], b.scalar(el, 0)}))}, nil
}

func softmaxAxis(n *pb.NodeProto) int64 { return onnxgraph.AttrIntOr(n, "axis", -1) }

// gradSoftmax: dx = y * (g - sum(g*y, axis)).
func gradSoftmax(b *builder, n *pb.NodeProto, g string) string {
	y := n.GetOutput()[0]
	s := b.reduce("ReduceSum", b.op("Mul", []string{g, y}), []int64{softmaxAxis(n)}, true)
	return b.op("Mul", []string{y, b.op("Sub", []string{g, s})})
}

// gradLogSoftmax: dx = g - exp(y) * sum(g, axis).
func gradLogSoftmax(b *builder, n *pb.NodeProto, g string) string {
	y := n.GetOutput()[0]
	s := b.reduce("ReduceSum", g, []int64{softmaxAxis(n)}, true)
	return b.op("Sub", []string{g, b.op("Mul", []string{b.op("Exp", []string{y}), s})})
}

func gradAddSub(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	y := n.GetOutput()[0]
	yd := b.info(y)
	cs := make([]contrib, len(n.GetInput()))
	for i, x := range n.GetInput() {
		if !b.needs(n, i) {
			continue
		}
		g := b.unb(gy[0], yd, x)
		if n.GetOpType() == "Sub" && i == 1 {
			g = b.op("Neg", []string{g})
		}
		cs[i] = full(g)
	}
	return cs, nil
}

func (b *builder) needs(n *pb.NodeProto, i int) bool {
	need := b.p.need[n]
	return i < len(need) && need[i]
}

func gradMul(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, y := n.GetInput(), n.GetOutput()[0]
	yd := b.info(y)
	cs := make([]contrib, 2)
	if in[0] == in[1] { // x*x: both contributions are g*x
		t := b.unb(b.op("Mul", []string{gy[0], in[0]}), yd, in[0])
		cs[0], cs[1] = full(t), full(t)
		return cs, nil
	}
	for i := range 2 {
		if b.needs(n, i) {
			cs[i] = full(b.unb(b.op("Mul", []string{gy[0], in[1-i]}), yd, in[i]))
		}
	}
	return cs, nil
}

func gradDiv(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, y := n.GetInput(), n.GetOutput()[0]
	yd := b.info(y)
	cs := make([]contrib, 2)
	gb := b.op("Div", []string{gy[0], in[1]})
	if b.needs(n, 0) {
		cs[0] = full(b.unb(gb, yd, in[0]))
	}
	if b.needs(n, 1) { // d(a/b)/db = -y/b
		cs[1] = full(b.op("Neg", []string{b.unb(b.op("Mul", []string{gb, y}), yd, in[1])}))
	}
	return cs, nil
}

func gradPow(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, y := n.GetInput(), n.GetOutput()[0]
	yd := b.info(y)
	el := b.elem(y)
	cs := make([]contrib, 2)
	if b.needs(n, 0) {
		var d string
		if e, ok := b.constScalar(in[1]); ok {
			switch e {
			case 1:
				d = ""
			case 2:
				d = b.op("Mul", []string{in[0], b.scalar(el, 2)})
			default:
				d = b.op("Mul", []string{b.op("Pow", []string{in[0], b.scalar(el, e-1)}), b.scalar(el, e)})
			}
		} else {
			e := in[1]
			if b.elem(e) != el {
				e = b.op("Cast", []string{e}, onnxgraph.AttrInt("to", int64(el)))
			}
			d = b.op("Mul", []string{b.op("Pow", []string{in[0], b.op("Sub", []string{e, b.scalar(el, 1)})}), e})
		}
		g := gy[0]
		if d != "" {
			g = b.op("Mul", []string{g, d})
		}
		cs[0] = full(b.unb(g, yd, in[0]))
	}
	if b.needs(n, 1) { // d(a^e)/de = y*log(a), defined for a > 0
		cs[1] = full(b.unb(b.op("Mul", []string{gy[0], b.op("Mul", []string{y, b.op("Log", []string{in[0]})})}), yd, in[1]))
	}
	return cs, nil
}

func gradWhere(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, y := n.GetInput(), n.GetOutput()[0]
	yd := b.info(y)
	zero := b.scalar(b.elem(y), 0)
	cs := make([]contrib, 3)
	if b.needs(n, 1) {
		cs[1] = full(b.unb(b.op("Where", []string{in[0], gy[0], zero}), yd, in[1]))
	}
	if b.needs(n, 2) {
		cs[2] = full(b.unb(b.op("Where", []string{in[0], zero, gy[0]}), yd, in[2]))
	}
	return cs, nil
}

// ---- linear algebra ----

// swapLast transposes the last two axes of x (rank r >= 2), from a precomputed initializer when x is a 2-D
// constant.
func (b *builder) swapLast(x string, r int) (string, error) {
	if t := b.constInit(x); t != nil && len(t.GetDims()) == 2 && r == 2 {
		return b.transposedInit(t)
	}
	perm := make([]int64, r)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[r-2], perm[r-1] = perm[r-1], perm[r-2]
	return b.op("Transpose", []string{x}, onnxgraph.AttrInts("perm", perm...)), nil
}

func gradMatMul(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	A, B, y := n.GetInput()[0], n.GetInput()[1], n.GetOutput()[0]
	ai, bi, yi := b.info(A), b.info(B), b.info(y)
	ra, rb := ai.Rank(), bi.Rank()
	if ra < 1 || rb < 1 || !yi.Ranked {
		return nil, errors.New("matmul operand ranks unknown")
	}
	// Promote 1-D operands to matrices (as MatMul does) and the gradient to match.
	A2, B2, g := A, B, gy[0]
	a2, b2 := ai.Dims, bi.Dims
	gdims := append([]shape.Dim{}, yi.Dims...)
	switch {
	case ra == 1 && rb == 1:
		g = b.op("Reshape", []string{g, b.ints(1, 1)})
		gdims = []shape.Dim{shape.Known(1), shape.Known(1)}
	case ra == 1:
		g = b.op("Unsqueeze", []string{g, b.ints(-2)})
		gdims = append(gdims[:len(gdims)-1:len(gdims)-1], shape.Known(1), gdims[len(gdims)-1])
	case rb == 1:
		g = b.op("Unsqueeze", []string{g, b.ints(-1)})
		gdims = append(gdims, shape.Known(1))
	}
	if ra == 1 {
		A2 = b.op("Unsqueeze", []string{A, b.ints(0)})
		a2 = []shape.Dim{shape.Known(1), ai.Dims[0]}
	}
	if rb == 1 {
		B2 = b.op("Unsqueeze", []string{B, b.ints(-1)})
		b2 = []shape.Dim{bi.Dims[0], shape.Known(1)}
	}
	rg := len(gdims)
	batch := gdims[:rg-2]
	cs := make([]contrib, 2)
	if b.needs(n, 0) {
		bt, err := b.swapLast(B2, len(b2))
		if err != nil {
			return nil, err
		}
		da := b.op("MatMul", []string{g, bt})
		dd := &shape.Info{Ranked: true, Dims: append(append([]shape.Dim{}, batch...), a2[len(a2)-2:]...)}
		if ra == 1 {
			da = b.reshapeTo(b.unb(da, dd, A2), A)
		} else {
			da = b.unb(da, dd, A)
		}
		cs[0] = full(da)
	}
	if b.needs(n, 1) {
		var db string
		if len(b2) == 2 && rg > 2 {
			// Batched input against a matrix: fold the batch into the rows so one Gemm sums over it, instead
			// of a batched MatMul and a ReduceSum.
			// (With a 2-D B, A's batch dims are exactly g's.)
			db = b.op("Gemm", []string{b.op("Flatten", []string{A2}, onnxgraph.AttrInt("axis", int64(len(a2)-1))),
				b.op("Flatten", []string{g}, onnxgraph.AttrInt("axis", int64(rg-1)))}, onnxgraph.AttrInt("transA", 1))
		}
		if db == "" {
			at, err := b.swapLast(A2, len(a2))
			if err != nil {
				return nil, err
			}
			db = b.op("MatMul", []string{at, g})
			dd := &shape.Info{Ranked: true, Dims: append(append([]shape.Dim{}, batch...), b2[len(b2)-2:]...)}
			if rb == 1 {
				db = b.reshapeTo(b.unb(db, dd, B2), B)
			} else {
				db = b.unb(db, dd, B)
			}
		} else if rb == 1 {
			db = b.reshapeTo(db, B)
		}
		cs[1] = full(db)
	}
	return cs, nil
}

// gradGemm: Y = alpha*A'B' + beta*C with A' = transA ? A^T : A (same for B).
func gradGemm(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, g := n.GetInput(), gy[0]
	alpha := onnxgraph.AttrFloatOr(n, "alpha", 1)
	beta := onnxgraph.AttrFloatOr(n, "beta", 1)
	ta, tb := onnxgraph.AttrIntOr(n, "transA", 0) != 0, onnxgraph.AttrIntOr(n, "transB", 0) != 0
	flag := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	gemm := func(x, y string, tx, ty bool) string {
		return b.op("Gemm", []string{x, y}, onnxgraph.AttrFloat("alpha", alpha),
			onnxgraph.AttrInt("transA", flag(tx)), onnxgraph.AttrInt("transB", flag(ty)))
	}
	cs := make([]contrib, len(in))
	if b.needs(n, 0) {
		if !ta {
			cs[0] = full(gemm(g, in[1], false, !tb))
		} else {
			cs[0] = full(gemm(in[1], g, tb, true))
		}
	}
	if b.needs(n, 1) {
		if !tb {
			cs[1] = full(gemm(in[0], g, !ta, false))
		} else {
			cs[1] = full(gemm(g, in[0], true, ta))
		}
	}
	if len(in) > 2 && b.needs(n, 2) {
		gc := g
		if beta != 1 {
			gc = b.op("Mul", []string{g, b.scalar(b.elem(n.GetOutput()[0]), float64(beta))})
		}
		cs[2] = full(b.unb(gc, b.info(n.GetOutput()[0]), in[2]))
	}
	return cs, nil
}

// gradConv: the input gradient of a stride-1 Conv is a Conv of the output gradient with the weights flipped
// spatially and with input/output channels swapped (per group), padded by dilation*(k-1)-pad. ORT's Conv is far
// better optimised than ConvTranspose, and the rewritten weights are a precomputed initializer when the
// forward weights are constant. Strided convolutions use ConvTranspose with the output padding that restores
// the input size (static shapes needed).
func gradConv(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, g, y := n.GetInput(), gy[0], n.GetOutput()[0]
	X, W := in[0], in[1]
	xi, wi := b.info(X), b.info(W)
	if !wi.Ranked || len(wi.Dims) < 3 {
		return nil, errors.New("conv weight rank unknown")
	}
	sp := len(wi.Dims) - 2
	ks := onnxgraph.AttrIntsOr(n, "kernel_shape", nil)
	if ks == nil {
		for _, d := range wi.Dims[2:] {
			if !d.IsKnown() {
				return nil, errors.New("conv kernel shape unknown")
			}
			ks = append(ks, d.C)
		}
	}
	cp, err := shape.ConvParams(n, sp, ks)
	if err != nil {
		return nil, err
	}
	cs := make([]contrib, len(in))
	if b.needs(n, 0) {
		unit := cp.AutoPad == ""
		newPads := make([]int64, 2*sp)
		for i := range sp {
			unit = unit && cp.Strides[i] == 1
			newPads[i] = cp.Dil[i]*(ks[i]-1) - cp.Pads[i]
			newPads[i+sp] = cp.Dil[i]*(ks[i]-1) - cp.Pads[i+sp]
			unit = unit && newPads[i] >= 0 && newPads[i+sp] >= 0
		}
		var dx string
		if unit && !b.opt.convTranspose {
			wf, err := b.flippedWeights(W, wi, cp.Group, ks)
			if err != nil {
				return nil, err
			}
			dx = b.op("Conv", []string{g, wf}, onnxgraph.AttrInts("pads", newPads...),
				onnxgraph.AttrInts("dilations", cp.Dil...), onnxgraph.AttrInt("group", cp.Group),
				onnxgraph.AttrInts("kernel_shape", ks...))
		} else {
			dx, err = b.convTransposeGrad(n, g, X, W, y, xi, cp, ks)
			if err != nil {
				return nil, err
			}
		}
		cs[0] = full(dx)
	}
	if len(in) > 2 && b.needs(n, 2) {
		axes := []int64{0}
		for i := range sp {
			axes = append(axes, int64(2+i))
		}
		cs[2] = full(b.reduce("ReduceSum", g, axes, false))
	}
	return cs, nil
}

func (b *builder) convTransposeGrad(n *pb.NodeProto, g, X, W, y string, xi *shape.Info, cp shape.ConvAttrs, ks []int64) (string, error) {
	sp := len(ks)
	yi := b.info(y)
	pads := append([]int64{}, cp.Pads...)
	outPad := make([]int64, sp)
	for i := range sp {
		if !xi.Ranked || !yi.Ranked || !xi.Dims[2+i].IsKnown() || !yi.Dims[2+i].IsKnown() {
			return "", fmt.Errorf("strided conv needs static spatial sizes (input %v, output %v)", xi.Dims, yi.Dims)
		}
		h, ho := xi.Dims[2+i].C, yi.Dims[2+i].C
		span := cp.Dil[i]*(ks[i]-1) + 1
		if cp.AutoPad == "SAME_UPPER" || cp.AutoPad == "SAME_LOWER" {
			total := max(0, (ho-1)*cp.Strides[i]+span-h)
			small := total / 2
			if cp.AutoPad == "SAME_UPPER" {
				pads[i], pads[i+sp] = small, total-small
			} else {
				pads[i], pads[i+sp] = total-small, small
			}
		}
		outPad[i] = h - (cp.Strides[i]*(ho-1) + span - pads[i] - pads[i+sp])
		if outPad[i] < 0 {
			return "", fmt.Errorf("conv geometry: negative output padding %d", outPad[i])
		}
	}
	return b.op("ConvTranspose", []string{g, W}, onnxgraph.AttrInts("strides", cp.Strides...),
		onnxgraph.AttrInts("pads", pads...), onnxgraph.AttrInts("dilations", cp.Dil...),
		onnxgraph.AttrInt("group", cp.Group), onnxgraph.AttrInts("kernel_shape", ks...),
		onnxgraph.AttrInts("output_padding", outPad...)), nil
}

// flippedWeights returns W' with W'[g*Cg+c, o, k...] = W[g*Og+o, c, K-1-k...] for W of shape [G*Og, Cg, K...].
func (b *builder) flippedWeights(W string, wi *shape.Info, group int64, ks []int64) (string, error) {
	key := fmt.Sprint("flip:", W, group)
	if name, ok := b.cache[key]; ok {
		return name, nil
	}
	sp := len(ks)
	if t := b.constInit(W); t != nil {
		v, err := onnxgraph.Float64s(t)
		if err != nil {
			return "", err
		}
		dims := t.GetDims()
		O, Cg := dims[0], dims[1]
		if O%group != 0 {
			return "", fmt.Errorf("conv: %d output channels not divisible by group %d", O, group)
		}
		Og := O / group
		kn := int64(1)
		for _, k := range dims[2:] {
			kn *= k
		}
		out := make([]float64, len(v))
		for gi := range group {
			for o := range Og {
				for c := range Cg {
					src := ((gi*Og+o)*Cg + c) * kn
					dst := ((gi*Cg+c)*Og + o) * kn
					for k := range kn {
						out[dst+kn-1-k] = v[src+k] // reversing the flattened spatial block flips every spatial axis
					}
				}
			}
		}
		nd := append([]int64{group * Cg, Og}, dims[2:]...)
		tt, err := onnxgraph.FloatTensor(b.uniqueName(W+"/flipT"), elemOrFloat(pb.TensorProto_DataType(t.GetDataType())), nd, out)
		if err != nil {
			return "", err
		}
		b.cache[key] = b.addInit(tt)
		return b.cache[key], nil
	}
	// Run-time weights: the same rewrite with graph ops.
	wt := W
	perm := []int64{1, 0}
	for i := range sp {
		perm = append(perm, int64(2+i))
	}
	if group == 1 {
		wt = b.op("Transpose", []string{W}, onnxgraph.AttrInts("perm", perm...))
	} else {
		if !wi.Dims[0].IsKnown() || !wi.Dims[1].IsKnown() {
			return "", errors.New("grouped conv with run-time weights of unknown shape")
		}
		O, Cg := wi.Dims[0].C, wi.Dims[1].C
		s5 := append([]int64{group, O / group, Cg}, ks...)
		p5 := []int64{0, 2, 1}
		for i := range sp {
			p5 = append(p5, int64(3+i))
		}
		t := b.op("Transpose", []string{b.op("Reshape", []string{W, b.ints(s5...)})}, onnxgraph.AttrInts("perm", p5...))
		wt = b.op("Reshape", []string{t, b.ints(append([]int64{group * Cg, O / group}, ks...)...)})
	}
	starts, ends, axes, steps := make([]int64, sp), make([]int64, sp), make([]int64, sp), make([]int64, sp)
	for i := range sp {
		starts[i], ends[i], axes[i], steps[i] = -1, int64Min, int64(2+i), -1
	}
	b.cache[key] = b.op("Slice", []string{wt, b.ints(starts...), b.ints(ends...), b.ints(axes...), b.ints(steps...)})
	return b.cache[key], nil
}

// gradBatchNorm (inference mode): dx = g * scale / sqrt(var + eps), per channel (axis 1).
func gradBatchNorm(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in := n.GetInput()
	if onnxgraph.AttrIntOr(n, "training_mode", 0) != 0 {
		return nil, errors.New("batch normalization in training mode")
	}
	x := in[0]
	r := b.info(x).Rank()
	if r < 2 {
		return nil, errors.New("batch normalization input rank unknown")
	}
	el := b.elem(x)
	eps := float64(onnxgraph.AttrFloatOr(n, "epsilon", 1e-5))
	f := b.op("Div", []string{in[1], b.op("Sqrt", []string{b.op("Add", []string{in[4], b.scalar(el, eps)})})})
	shape := []int64{-1}
	for range r - 2 {
		shape = append(shape, 1)
	}
	f = b.op("Reshape", []string{f, b.ints(shape...)})
	return []contrib{full(b.op("Mul", []string{gy[0], f}))}, nil
}

// gradLayerNorm: with xh = (x-mean)*r over the normalised axes and gh = g*scale,
// dx = r * (gh - mean(gh) - xh*mean(gh*xh)); dscale = sum(g*xh), dbias = sum(g) over the other axes.
// Float32 graphs take mean and 1/std from the forward node's optional outputs (free); other types recompute
// them in their own precision, since the stashed statistics are float32.
func gradLayerNorm(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, g := n.GetInput(), gy[0]
	for _, extra := range gy[1:] {
		if extra != "" {
			return nil, errors.New("gradient through layer normalization's mean/inv-std outputs")
		}
	}
	x, y := in[0], n.GetOutput()[0]
	xi := b.info(x)
	axis := onnxgraph.AttrIntOr(n, "axis", -1)
	var axes []int64
	if axis < 0 {
		for a := axis; a < 0; a++ {
			axes = append(axes, a)
		}
	} else {
		r := xi.Rank()
		if r < 0 {
			return nil, errors.New("layer normalization input rank unknown")
		}
		for a := axis; a < int64(r); a++ {
			axes = append(axes, a)
		}
	}
	el := b.elem(x)
	var mean, inv string
	stash := onnxgraph.AttrIntOr(n, "stash_type", 1)
	if el == pb.TensorProto_FLOAT && stash == 1 {
		mean, inv = b.layerNormStats(n)
	} else {
		eps := float64(onnxgraph.AttrFloatOr(n, "epsilon", 1e-5))
		mean = b.reduce("ReduceMean", x, axes, true)
		xc := b.op("Sub", []string{x, mean})
		v := b.reduce("ReduceMean", b.op("Mul", []string{xc, xc}), axes, true)
		inv = b.op("Reciprocal", []string{b.op("Sqrt", []string{b.op("Add", []string{v, b.scalar(el, eps)})})})
	}
	xh := b.op("Mul", []string{b.op("Sub", []string{x, mean}), inv})
	cs := make([]contrib, len(in))
	if b.needs(n, 0) {
		gh := b.op("Mul", []string{g, in[1]})
		m1 := b.reduce("ReduceMean", gh, axes, true)
		m2 := b.reduce("ReduceMean", b.op("Mul", []string{gh, xh}), axes, true)
		d := b.op("Sub", []string{b.op("Sub", []string{gh, m1}), b.op("Mul", []string{xh, m2})})
		cs[0] = full(b.op("Mul", []string{d, inv}))
	}
	if len(in) > 1 && b.needs(n, 1) {
		cs[1] = full(b.unb(b.op("Mul", []string{g, xh}), b.info(y), in[1]))
	}
	if len(in) > 2 && b.needs(n, 2) {
		cs[2] = full(b.unb(g, b.info(y), in[2]))
	}
	return cs, nil
}

// layerNormStats makes the forward LayerNormalization also output its mean and inverse standard deviation
// (optional outputs 1 and 2) and returns their names.
func (b *builder) layerNormStats(n *pb.NodeProto) (string, string) {
	for len(n.Output) < 3 {
		n.Output = append(n.Output, "")
	}
	if n.Output[1] == "" {
		n.Output[1] = b.uniqueName(nodeLabel(n) + "/mean")
	}
	if n.Output[2] == "" {
		n.Output[2] = b.uniqueName(nodeLabel(n) + "/inv_std")
	}
	return n.Output[1], n.Output[2]
}

// ---- shape ops ----

func gradReshapeLike(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	return []contrib{full(b.reshapeTo(gy[0], n.GetInput()[0]))}, nil
}

func gradExpand(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	return []contrib{full(b.unb(gy[0], b.info(n.GetOutput()[0]), n.GetInput()[0]))}, nil
}

func gradTranspose(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	perm := onnxgraph.AttrIntsOr(n, "perm", nil)
	if perm == nil { // default reverses the axes, its own inverse
		return []contrib{full(b.op("Transpose", []string{gy[0]}))}, nil
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		if p < 0 || int(p) >= len(perm) {
			return nil, fmt.Errorf("bad perm %v", perm)
		}
		inv[p] = int64(i)
	}
	return []contrib{full(b.op("Transpose", []string{gy[0]}, onnxgraph.AttrInts("perm", inv...)))}, nil
}

// gradConcat splits g back into the inputs' pieces with one Split.
func gradConcat(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, y := n.GetInput(), n.GetOutput()[0]
	r := b.info(y).Rank()
	if r < 0 {
		return nil, errors.New("concat rank unknown")
	}
	a, ok := shape.NormAxis(onnxgraph.AttrIntOr(n, "axis", 0), r)
	if !ok {
		return nil, errors.New("concat axis out of range")
	}
	sizes := make([]int64, len(in))
	static := true
	for i, x := range in {
		xi := b.info(x)
		if !xi.Ranked || !xi.Dims[a].IsKnown() {
			static = false
			break
		}
		sizes[i] = xi.Dims[a].C
	}
	var split string
	if static {
		split = b.ints(sizes...)
	} else {
		parts := make([]string, len(in))
		for i, x := range in {
			parts[i] = b.op("Slice", []string{b.op("Shape", []string{x}), b.ints(int64(a)), b.ints(int64(a + 1))})
		}
		split = b.op("Concat", parts, onnxgraph.AttrInt("axis", 0))
	}
	outs := b.opN("Split", []string{gy[0], split}, len(in), onnxgraph.AttrInt("axis", int64(a)))
	cs := make([]contrib, len(in))
	for i := range in {
		cs[i] = full(outs[i])
	}
	return cs, nil
}

// gradSplit concatenates the pieces' gradients; when only one piece has one and the sizes are static, a Pad
// adds the zeros instead of materialising them for a Concat.
func gradSplit(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	x := n.GetInput()[0]
	xi := b.info(x)
	if !xi.Ranked {
		return nil, errors.New("split input rank unknown")
	}
	sizes, a, ok := b.p.inf.SplitSizes(n, xi)
	have := 0
	for _, g := range gy {
		if g != "" {
			have++
		}
	}
	static := ok
	for _, s := range sizes {
		static = static && s.IsKnown()
	}
	if have == 1 && static {
		pads := make([]int64, 2*len(xi.Dims))
		before := true
		for i, g := range gy {
			switch {
			case g != "":
				before = false
			case before:
				pads[a] += sizes[i].C
			default:
				pads[a+len(xi.Dims)] += sizes[i].C
			}
		}
		for i, g := range gy {
			if g != "" {
				return []contrib{full(b.op("Pad", []string{gy[i], b.ints(pads...)}))}, nil
			}
		}
	}
	parts := make([]string, len(gy))
	for i, g := range gy {
		parts[i] = g
		if g == "" {
			parts[i] = b.zerosLike(n.GetOutput()[i])
		}
	}
	return []contrib{full(b.op("Concat", parts, onnxgraph.AttrInt("axis", int64(a))))}, nil
}

// gradSlice pads g back to the input's size (unit steps, bounds resolvable from static shapes).
func gradSlice(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	x := n.GetInput()[0]
	xi := b.info(x)
	if !xi.Ranked {
		return nil, errors.New("slice input rank unknown")
	}
	r := len(xi.Dims)
	s, ok := b.p.inf.SliceParams(n, r)
	if !ok {
		return nil, errors.New("slice gradient needs constant starts/ends/axes/steps")
	}
	pads := make([]int64, 2*r)
	for i, a := range s.Axes {
		if s.Steps[i] != 1 {
			return nil, fmt.Errorf("slice gradient needs unit steps, got %d", s.Steps[i])
		}
		st, en, _, ok := shape.SliceBounds(s.Starts[i], s.Ends[i], 1, xi.Dims[a])
		if !ok {
			return nil, fmt.Errorf("slice gradient: axis %d bounds [%d,%d) on a dim of unknown size", a, s.Starts[i], s.Ends[i])
		}
		if en < 0 { // whole axis of unknown size
			continue
		}
		en = max(en, st)
		pads[a], pads[int(a)+r] = st, xi.Dims[a].C-en
	}
	return []contrib{full(b.op("Pad", []string{gy[0], b.ints(pads...)}))}, nil
}

// gradGather: with constant, distinct 1-D indices (lc0's policy map) the gradient is itself a Gather, from g
// padded with one zero slice, by the inverse permutation; otherwise a ScatterElements with reduction "add".
func gradGather(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	x, idx := n.GetInput()[0], n.GetInput()[1]
	xi, ii := b.info(x), b.info(idx)
	if !xi.Ranked || !ii.Ranked || ii.Rank() > 1 {
		return nil, errors.New("gather gradient needs known ranks and 0-D or 1-D indices")
	}
	r := len(xi.Dims)
	a, ok := shape.NormAxis(onnxgraph.AttrIntOr(n, "axis", 0), r)
	if !ok {
		return nil, errors.New("gather axis out of range")
	}
	g := gy[0]
	if ii.Rank() == 0 {
		g = b.op("Unsqueeze", []string{g, b.ints(int64(a))})
	}
	if t := b.constInit(idx); t != nil && xi.Dims[a].IsKnown() {
		if v, err := onnxgraph.Int64s(t); err == nil {
			size := xi.Dims[a].C
			inv := make([]int64, size)
			for i := range inv {
				inv[i] = int64(len(v)) // the padded zero slice
			}
			distinct := true
			for j, k := range v {
				if k < 0 {
					k += size
				}
				if k < 0 || k >= size || inv[k] != int64(len(v)) {
					distinct = false
					break
				}
				inv[k] = int64(j)
			}
			if distinct {
				pads := make([]int64, 2*r)
				pads[a+r] = 1
				padded := b.op("Pad", []string{g, b.ints(pads...)})
				invName := b.addInit(onnxgraph.Int64Tensor(b.uniqueName(idx+"/inverse"), []int64{size}, inv))
				return []contrib{full(b.op("Gather", []string{padded, invName}, onnxgraph.AttrInt("axis", int64(a))))}, nil
			}
		}
	}
	shape := make([]int64, r)
	for i := range shape {
		shape[i] = 1
	}
	shape[a] = -1
	id := b.op("Reshape", []string{idx, b.ints(shape...)})
	if b.elem(idx) != pb.TensorProto_INT64 {
		id = b.op("Cast", []string{id}, onnxgraph.AttrInt("to", int64(pb.TensorProto_INT64)))
	}
	id = b.op("Expand", []string{id, b.op("Shape", []string{g})})
	sc := b.op("ScatterElements", []string{b.zerosLike(x), id, g}, onnxgraph.AttrInt("axis", int64(a)),
		onnxgraph.AttrString("reduction", "add"))
	return []contrib{full(sc)}, nil
}

// ---- reductions ----

// gradReduce: the gradient of a sum broadcasts g back over the reduced axes (a partial contribution, added
// by broadcasting); a mean also divides by the count; a sum of squares multiplies by 2x.
func gradReduce(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	x, y, g := n.GetInput()[0], n.GetOutput()[0], gy[0]
	el := b.elem(y)
	axes, axesOK, present := b.p.inf.AxesOf(n, 1)
	keep := onnxgraph.AttrIntOr(n, "keepdims", 1) != 0
	noop := onnxgraph.AttrIntOr(n, "noop_with_empty_axes", 0) != 0
	if present && !axesOK && !keep {
		// Run-time axes: Unsqueeze takes them as an input just like the reduction did.
		g = b.op("Unsqueeze", []string{g, n.GetInput()[1]})
	} else if (!present || len(axes) == 0) && noop {
		return []contrib{full(g)}, nil
	} else if !keep && present && len(axes) > 0 {
		g = b.op("Unsqueeze", []string{g, b.ints(axes...)})
	}
	// (all axes reduced without keepdims: g is a scalar, which broadcasts as it is)
	switch n.GetOpType() {
	case "ReduceMean":
		g = b.op("Div", []string{g, b.count(x, y, el)})
	case "ReduceSumSquare":
		return []contrib{full(b.op("Mul", []string{b.op("Mul", []string{g, x}), b.scalar(el, 2)}))}, nil
	}
	return []contrib{{name: g, partial: true}}, nil
}

func gradGlobalAveragePool(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	x, y := n.GetInput()[0], n.GetOutput()[0]
	return []contrib{{name: b.op("Div", []string{gy[0], b.count(x, y, b.elem(y))}), partial: true}}, nil
}
