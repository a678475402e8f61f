package autograd

import (
	"fmt"
	"math"
	"sort"

	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// lrpRules are the relevance rules of the LRP modes. They reuse the builder: a rule receives the relevance of
// its node's outputs where a gradient rule receives their gradients, and returns its inputs' relevances.
// Shape ops move relevance exactly as they move gradients (their gradient rules sum or permute entries, which
// conserves totals), so their gradient rules are reused as they are.
var lrpRules = lrpRuleSet()

func lrpRuleSet() map[string]rule {
	rs := map[string]rule{}
	for op, r := range rules {
		if r.grad == nil {
			rs[op] = r
		}
	}
	for _, op := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand", "Transpose", "Concat",
		"Split", "Slice", "Gather", "Where", "Cast"} {
		rs[op] = rules[op]
	}
	// Activations and other element-wise functions of one tensor pass relevance through unchanged: the output
	// neuron and the input neuron are the same unit.
	for _, op := range []string{"Identity", "Dropout", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Relu",
		"Sigmoid", "Tanh", "Softplus", "Softsign", "Selu", "Elu", "LeakyRelu", "HardSigmoid", "Erf", "Softmax",
		"LogSoftmax"} {
		rs[op] = unary(func(_ *builder, _ *pb.NodeProto, g string) string { return g })
	}
	// The same with parameters in further inputs (bounds, exponent, scale and bias): those get nothing.
	rs["Clip"] = rule{diff: only(0), grad: lrpFirst}
	rs["Pow"] = rule{grad: lrpFirst, arity: 2}
	rs["LayerNormalization"] = rule{grad: lrpFirst, arity: 2}

	rs["Add"] = rule{grad: lrpSum, arity: 2}
	rs["Sub"] = rule{grad: lrpSum, arity: 2}
	rs["Sum"] = rule{grad: lrpSum}
	rs["Mul"] = rule{grad: lrpMul, arity: 2}
	rs["Div"] = rule{grad: lrpDiv, arity: 2}

	rs["Conv"] = rule{grad: lrpLinear, supports: rules["Conv"].supports, arity: 2}
	rs["MatMul"] = rule{grad: lrpLinear, arity: 2}
	rs["Gemm"] = rule{grad: lrpLinear, arity: 2}
	for _, op := range []string{"ReduceMean", "ReduceSum", "GlobalAveragePool"} {
		rs[op] = rule{diff: only(0), grad: lrpLinear}
	}
	return rs
}

// LRPOps lists the ops with a relevance rule, sorted.
func LRPOps() []string {
	var out []string
	for op, r := range lrpRules {
		if r.grad != nil {
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

// lrpFirst gives all of the output's relevance to input 0 (summed over axes it was broadcast along).
func lrpFirst(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	cs := make([]contrib, len(n.GetInput()))
	cs[0] = full(b.unb(gy[0], b.info(n.GetOutput()[0]), n.GetInput()[0]))
	return cs, nil
}

// stab returns z + eps*sign(z) with sign(0) = 1 (the epsilon rule's stabiliser): a zero pre-activation then
// divides by eps rather than by zero, and the sign of the ratio is kept.
func (b *builder) stab(z string) string {
	el := b.elem(z)
	eps := b.p.spec.Epsilon
	s := b.op("Where", []string{b.op("GreaterOrEqual", []string{z, b.scalar(el, 0)}), b.scalar(el, eps), b.scalar(el, -eps)})
	return b.op("Add", []string{z, s})
}

// plusEps returns z + eps, the stabiliser of the z+ rule, whose denominators are never negative. z is a
// new tensor, so its element type comes from the forward tensor it stands for.
func (b *builder) plusEps(z, like string) string {
	return b.op("Add", []string{z, b.scalar(b.elem(like), b.p.spec.Epsilon)})
}

func (b *builder) like(name, model string) {
	t := *b.info(model)
	b.p.inf.Set(name, &t)
}

// varying lists the inputs of n that relevance must reach (those on a path from a Wrt tensor), among the
// first k (the operands, not biases).
func (b *builder) varying(n *pb.NodeProto, k int) []int {
	var v []int
	for i := range min(k, len(n.GetInput())) {
		if b.needs(n, i) {
			v = append(v, i)
		}
	}
	return v
}

// lrpLinear is the rule of linear maps (Conv, MatMul, Gemm, and the linear reductions): with z = the node's
// output and s = R / stab(z), an input x gets x * (dz/dx)^T s, its share of each output in proportion to its
// contribution. A bias (Conv's and Gemm's third input) is part of z and keeps its share: that is the
// relevance LRP absorbs. When both operands of a product vary (attention's Q K^T), each gets half of that
// share with the other held fixed. The z+ mode replaces this for constant weights (see zplus).
func lrpLinear(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in := n.GetInput()
	ops := 2
	if n.GetOpType() != "MatMul" && n.GetOpType() != "Gemm" {
		ops = 1
	}
	vary := b.varying(n, ops)
	cs := make([]contrib, len(in))
	if len(vary) == 0 {
		return cs, nil
	}
	if len(vary) == 1 {
		if r := b.compositeRule(n, vary[0]); r.Kind != LinearDefault && r.Kind != LinearEpsilon {
			rx, ok, err := b.applyLinear(n, gy[0], vary[0], r)
			if err != nil {
				return nil, err
			}
			if ok {
				cs[vary[0]] = full(rx)
				return cs, nil
			}
		}
	}
	if len(vary) == 1 && b.p.spec.Mode == ModeLRPZPlus {
		r, ok, err := b.zplus(n, gy[0], vary[0])
		if err != nil {
			return nil, err
		}
		if ok {
			cs[vary[0]] = full(r)
			return cs, nil
		}
	}
	s := b.op("Div", []string{gy[0], b.stab(n.GetOutput()[0])})
	gs, err := rules[n.GetOpType()].grad(b, n, []string{s})
	if err != nil {
		return nil, err
	}
	for _, i := range vary {
		if i >= len(gs) || gs[i].name == "" {
			continue
		}
		r := b.op("Mul", []string{in[i], gs[i].name})
		if len(vary) > 1 {
			r = b.op("Mul", []string{r, b.scalar(b.elem(in[i]), 1/float64(len(vary)))})
		}
		cs[i] = full(r)
	}
	return cs, nil
}

// nonNegative reports whether t is known to hold no negative value (the output of a Relu and the like), so
// the z+ rule can skip its negative part.
func (b *builder) nonNegative(t string) bool {
	p := b.p.ix.Producer[t]
	if p == nil {
		return false
	}
	switch p.GetOpType() {
	case "Relu", "Sigmoid", "Softmax", "Exp", "Abs", "Sqrt", "HardSigmoid", "Softplus":
		return true
	}
	return false
}

// zplus applies the z+ rule (LRP-alpha1-beta0) to a linear node whose input v varies and whose weights are a
// constant: only positive contributions x_i w_ij count, i.e. x+ with W+ and x- with W-, and the bias is
// ignored. With z = conv(x+, W+) + conv(x-, W-) and s = R / (z + eps), x gets x+ * (W+)^T s + x- * (W-)^T s.
// The positive and negative parts are new forward nodes copied from n, whose gradient rules then give the
// transposed maps. ok is false when the weights are not constant: the epsilon rule applies then.
func (b *builder) zplus(n *pb.NodeProto, R string, v int) (string, bool, error) {
	op, in, y := n.GetOpType(), n.GetInput(), n.GetOutput()[0]
	w := -1 // the weight operand, none for reductions (whose weights are positive constants)
	switch op {
	case "Conv":
		w = 1
	case "MatMul", "Gemm":
		w = 1 - v
	}
	type part struct{ x, w string }
	var parts []part
	x := in[v]
	xp := b.op("Relu", []string{x})
	b.like(xp, x)
	if w < 0 {
		parts = []part{{x: xp}}
	} else {
		wt := b.constInit(in[w])
		if wt == nil {
			return "", false, nil
		}
		alpha := 1.0
		if op == "Gemm" {
			alpha = float64(onnxgraph.AttrFloatOr(n, "alpha", 1))
		}
		wp, wn, err := b.signedInits(in[w], wt, alpha)
		if err != nil {
			return "", false, err
		}
		parts = []part{{xp, wp}}
		if !b.nonNegative(x) {
			xn := b.op("Min", []string{x, b.scalar(b.elem(x), 0)})
			b.like(xn, x)
			parts = append(parts, part{xn, wn})
		}
	}
	var attrs []*pb.AttributeProto
	for _, a := range n.GetAttribute() {
		if op == "Gemm" && (a.GetName() == "alpha" || a.GetName() == "beta") {
			continue // alpha is folded into the weights, beta scales the dropped bias
		}
		attrs = append(attrs, a)
	}
	nodes := make([]*pb.NodeProto, len(parts))
	zs := make([]string, len(parts))
	for k, pt := range parts {
		ins := append([]string{}, in...)
		ins[v] = pt.x
		if w >= 0 {
			ins[w] = pt.w
			ins = ins[:2] // no bias
		}
		zs[k] = b.uniqueName(b.hint(op + "/zplus"))
		nodes[k] = onnxgraph.Node(op, b.uniqueNode(b.hint(op+"/zplus")), ins, []string{zs[k]}, attrs...)
		b.emit(nodes[k])
		b.like(zs[k], y)
		need := make([]bool, len(ins))
		need[v] = true
		b.p.need[nodes[k]] = need
	}
	defer func() {
		for _, nd := range nodes {
			delete(b.p.need, nd)
		}
	}()
	z := zs[0]
	if len(zs) > 1 {
		z = b.op("Add", zs)
	}
	s := b.op("Div", []string{R, b.plusEps(z, y)})
	var rs []string
	for k, nd := range nodes {
		gs, err := rules[op].grad(b, nd, []string{s})
		if err != nil {
			return "", false, err
		}
		if v >= len(gs) || gs[v].name == "" {
			return "", false, fmt.Errorf("z+ rule: no transposed map for input %d", v)
		}
		rs = append(rs, b.op("Mul", []string{parts[k].x, gs[v].name}))
	}
	if len(rs) == 1 {
		return rs[0], true, nil
	}
	return b.op("Add", rs), true, nil
}

// signedInits returns initializers holding max(alpha*W, 0) and min(alpha*W, 0), registered so that the
// gradient rules treat them as the constants they are (pre-transposed and flipped weights included).
func (b *builder) signedInits(name string, wt *pb.TensorProto, alpha float64) (string, string, error) {
	key := fmt.Sprint("signed:", name, alpha)
	if p, ok := b.cache[key+"+"]; ok {
		return p, b.cache[key+"-"], nil
	}
	v, err := onnxgraph.Float64s(wt)
	if err != nil {
		return "", "", fmt.Errorf("z+ rule: weights %q: %w", name, err)
	}
	pv, nv := make([]float64, len(v)), make([]float64, len(v))
	for i, x := range v {
		x *= alpha
		pv[i], nv[i] = math.Max(x, 0), math.Min(x, 0)
	}
	elem := elemOrFloat(pb.TensorProto_DataType(wt.GetDataType()))
	var names [2]string
	for k, data := range [][]float64{pv, nv} {
		suffix := [2]string{"/pos", "/neg"}[k]
		t, err := onnxgraph.FloatTensor(b.uniqueName(name+suffix), elem, wt.GetDims(), data)
		if err != nil {
			return "", "", err
		}
		names[k] = b.addInit(t)
		b.p.ix.Initializers[names[k]] = t
		b.p.inf.Set(names[k], shape.TensorInfo(t))
	}
	b.cache[key+"+"], b.cache[key+"-"] = names[0], names[1]
	return names[0], names[1], nil
}

// lrpSum splits the relevance of a sum between its varying terms in proportion to their contributions
// (epsilon rule: x_i / stab(y)); a constant term (a bias) keeps its share. This is also the residual add's
// rule: the skip connection and the block's branch share by contribution. In the z+ mode only positive
// contributions of varying terms count, and a sum with one varying term (a bias add) passes relevance
// through, since z+ ignores biases.
func lrpSum(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, y, R := n.GetInput(), n.GetOutput()[0], gy[0]
	yd := b.info(y)
	vary := b.varying(n, len(in))
	cs := make([]contrib, len(in))
	term := func(i int) string {
		if n.GetOpType() == "Sub" && i == 1 {
			return b.op("Neg", []string{in[1]})
		}
		return in[i]
	}
	if b.p.spec.Mode == ModeLRPZPlus {
		if len(vary) == 1 {
			cs[vary[0]] = full(b.unb(R, yd, in[vary[0]]))
			return cs, nil
		}
		pos := make([]string, len(in))
		var all []string
		for _, i := range vary {
			pos[i] = b.op("Relu", []string{term(i)})
			all = append(all, pos[i])
		}
		z := all[0]
		switch {
		case len(all) == 2:
			z = b.op("Add", all)
		case len(all) > 2:
			z = b.op("Sum", all)
		}
		s := b.op("Div", []string{R, b.plusEps(z, y)})
		for _, i := range vary {
			cs[i] = full(b.unb(b.op("Mul", []string{pos[i], s}), yd, in[i]))
		}
		return cs, nil
	}
	s := b.op("Div", []string{R, b.stab(y)})
	for _, i := range vary {
		cs[i] = full(b.unb(b.op("Mul", []string{term(i), s}), yd, in[i]))
	}
	return cs, nil
}

// isGate reports whether t is a gate: the output of a squashing function that scales another tensor in a
// product (squeeze-excitation's sigmoid, an attention's softmax).
func (b *builder) isGate(t string) bool {
	p := b.p.ix.Producer[t]
	if p == nil {
		return false
	}
	switch p.GetOpType() {
	case "Sigmoid", "HardSigmoid", "Softmax":
		return true
	}
	return false
}

// lrpMul: a product with a constant (or a tensor off the path) is a rescaling and passes relevance through.
// A product of two varying tensors where exactly one is a gate gives all relevance to the other (the gate
// only says how much of the signal passes: the "signal-take-all" rule of LRP for LSTMs, Arras et al. 2017);
// squeeze-excitation's channel gating is this case. Any other product of two varying tensors splits the
// relevance equally.
func lrpMul(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	in, y, R := n.GetInput(), n.GetOutput()[0], gy[0]
	yd := b.info(y)
	cs := make([]contrib, 2)
	n0, n1 := b.needs(n, 0), b.needs(n, 1)
	to := func(i int, r string) { cs[i] = full(b.unb(r, yd, in[i])) }
	switch {
	case n0 && n1:
		g0, g1 := b.isGate(in[0]), b.isGate(in[1])
		switch {
		case in[0] != in[1] && g0 && !g1:
			to(1, R)
		case in[0] != in[1] && g1 && !g0:
			to(0, R)
		default:
			half := b.op("Mul", []string{R, b.scalar(b.elem(y), 0.5)})
			to(0, half)
			to(1, half)
		}
	case n0:
		to(0, R)
	case n1:
		to(1, R)
	}
	return cs, nil
}

// lrpDiv: the numerator gets the relevance; the denominator is a normaliser and gets none.
func lrpDiv(b *builder, n *pb.NodeProto, gy []string) ([]contrib, error) {
	cs := make([]contrib, 2)
	if b.needs(n, 0) {
		cs[0] = full(b.unb(gy[0], b.info(n.GetOutput()[0]), n.GetInput()[0]))
	}
	return cs, nil
}
