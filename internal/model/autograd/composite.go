package autograd

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// LinearKind is an LRP rule for a linear node (Conv, MatMul, Gemm) with constant weights.
//
// What each rule conserves, per node, with R_j the relevance of output j and biases ignored by every rule
// but epsilon (sum_i R_i is what the node passes down):
//
//	epsilon:    sum_i R_i = sum_j R_j (z_j - b_j) / (z_j + eps*sign(z_j)): the bias share b_j is absorbed.
//	zplus:      sum_i R_i = sum_j R_j z+_j / (z+_j + eps), z+_j the sum of positive contributions: all of
//	            R_j where some contribution is positive, nothing where none is.
//	gamma:      z_j = sum_i x_i rho(w_ij) with contributions of z_j's own sign favoured (z_j the unmodified
//	            output without bias; where z_j >= 0, rho(w) = w + gamma*w+ for x_i >= 0 and w + gamma*w-
//	            for x_i < 0, the reverse where z_j < 0), so |z'_j| >= |z_j|: sum_i R_i = sum_j R_j
//	            z'_j / (z'_j + eps*sign(z'_j)), all of R_j up to eps.
//	alpha-beta: R_i = sum_j (alpha c+_ij / (z+_j + eps) - beta c-_ij / (z-_j - eps)) R_j, c+/c- the positive
//	            and negative parts of x_i w_ij: sum_i R_i = (alpha - beta) R_j where both parts are non-zero
//	            (alpha R_j where only positive, -beta R_j where only negative contributions exist).
//	flat:       R_i = sum_j R_j / n_j, n_j the inputs in j's receptive field: all of R_j, whatever x is.
//	wsquare:    R_i = sum_j w_ij^2 / (sum_i' w_i'j^2 + eps) R_j: all of R_j up to eps, whatever x is.
//	box:        z^B (Montavon et al. 2017) with bounds l_i = min(x_i, 0), h_i = max(x_i, 1) (the planes'
//	            usual range, widened to hold x): c_ij = x_i w_ij - l_i w+_ij - h_i w-_ij >= 0,
//	            R_i = sum_j c_ij / (sum_i' c_i'j + eps) R_j: all of R_j up to eps.
type LinearKind int

// The linear rules. LinearDefault is the mode's own (epsilon, or z+ in ModeLRPZPlus).
const (
	LinearDefault LinearKind = iota
	LinearEpsilon
	LinearZPlus
	LinearGamma
	LinearAlphaBeta
	LinearFlat
	LinearWSquare
	LinearBox
)

var linearNames = [...]string{"default", "epsilon", "zplus", "gamma", "alpha-beta", "flat", "wsquare", "box"}

// LinearRule is a rule with its parameters (Gamma for gamma, Alpha and Beta for alpha-beta).
type LinearRule struct {
	Kind        LinearKind
	Gamma       float64
	Alpha, Beta float64
}

// String names the rule with its parameters ("gamma(0.25)", "alpha-beta(2,1)").
func (r LinearRule) String() string {
	if r.Kind < 0 || int(r.Kind) >= len(linearNames) {
		return fmt.Sprintf("rule(%d)", int(r.Kind))
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	switch r.Kind {
	case LinearGamma:
		return "gamma(" + f(r.Gamma) + ")"
	case LinearAlphaBeta:
		return "alpha-beta(" + f(r.Alpha) + "," + f(r.Beta) + ")"
	}
	return linearNames[r.Kind]
}

// Composite assigns rules to linear layers by type, as zennit's composites do: Conv nodes, dense nodes
// (MatMul and Gemm) and the first layer (a linear node whose varying operand comes from a Wrt tensor through
// shape ops only), which takes precedence. A zero field keeps the mode's rule. Nodes whose weights are not
// constant (attention's Q K^T) always use the epsilon rule.
type Composite struct {
	Conv, Dense, First LinearRule
}

// String lists the assigned rules ("conv=gamma(0.25),first=flat"), "" for none.
func (c Composite) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		r    LinearRule
	}{{"conv", c.Conv}, {"dense", c.Dense}, {"first", c.First}} {
		if p.r.Kind != LinearDefault {
			parts = append(parts, p.name+"="+p.r.String())
		}
	}
	return strings.Join(parts, ",")
}

func (c Composite) check() error {
	for _, r := range []LinearRule{c.Conv, c.Dense, c.First} {
		switch {
		case r.Kind < 0 || int(r.Kind) >= len(linearNames):
			return fmt.Errorf("unknown linear rule %d", int(r.Kind))
		case r.Kind == LinearGamma && (!(r.Gamma >= 0) || math.IsInf(r.Gamma, 1)):
			return fmt.Errorf("%s: want a finite gamma >= 0", r)
		case r.Kind == LinearAlphaBeta && (!(r.Alpha >= 0) || !(r.Beta >= 0) || math.IsInf(r.Alpha, 1) || math.IsInf(r.Beta, 1)):
			return fmt.Errorf("%s: want finite alpha, beta >= 0", r)
		}
	}
	return nil
}

// shapeOps move values without combining them: a linear node reached from a Wrt tensor through them only
// is a first layer.
var shapeOps = map[string]bool{"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Transpose": true,
	"Identity": true, "Cast": true, "Concat": true, "Slice": true, "Gather": true, "Split": true, "Expand": true}

// firstLayer reports whether tensor t comes from a Wrt tensor through shape ops only.
func (b *builder) firstLayer(t string) bool {
	for range 64 {
		for _, w := range b.p.spec.Wrt {
			if t == w {
				return true
			}
		}
		p := b.p.ix.Producer[t]
		if p == nil || !shapeOps[p.GetOpType()] {
			return false
		}
		next := ""
		for i, in := range p.GetInput() {
			if in != "" && b.p.fwd[in] && diffInput(p, i) {
				if next != "" && next != in {
					return false // two varying operands: not a plain move
				}
				next = in
			}
		}
		if next == "" {
			return false
		}
		t = next
	}
	return false
}

// compositeRule is the composite's rule for node n with varying operand v (LinearDefault: the mode's).
func (b *builder) compositeRule(n *pb.NodeProto, v int) LinearRule {
	c := b.p.spec.Composite
	if c == (Composite{}) {
		return LinearRule{}
	}
	if c.First.Kind != LinearDefault && b.firstLayer(n.GetInput()[v]) {
		return c.First
	}
	switch n.GetOpType() {
	case "Conv":
		return c.Conv
	case "MatMul", "Gemm":
		return c.Dense
	}
	return LinearRule{}
}

// weightOperand is the index of n's weight operand when v varies, -1 for none (the reductions).
func weightOperand(n *pb.NodeProto, v int) int {
	switch n.GetOpType() {
	case "Conv":
		return 1
	case "MatMul", "Gemm":
		return 1 - v
	}
	return -1
}

// derivedInit registers an initializer holding f(alpha*w) for each weight w of name (memoised by tag).
func (b *builder) derivedInit(name string, wt *pb.TensorProto, alpha float64, tag string, f func(float64) float64) (string, error) {
	key := fmt.Sprint("derived:", name, alpha, tag)
	if p, ok := b.cache[key]; ok {
		return p, nil
	}
	v, err := onnxgraph.Float64s(wt)
	if err != nil {
		return "", fmt.Errorf("%s rule: weights %q: %w", tag, name, err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = f(alpha * x)
	}
	t, err := onnxgraph.FloatTensor(b.uniqueName(name+"/"+tag), elemOrFloat(pb.TensorProto_DataType(wt.GetDataType())), wt.GetDims(), out)
	if err != nil {
		return "", err
	}
	nm := b.addInit(t)
	b.registerInit(nm, t)
	b.cache[key] = nm
	return nm, nil
}

// registerInit makes a new initializer known to the gradient rules (as a constant) and to shape inference.
func (b *builder) registerInit(name string, t *pb.TensorProto) {
	b.p.ix.Initializers[name] = t
	b.p.inf.Set(name, shape.TensorInfo(t))
}

// term is one product of a rule: the linear map of n with operand x and weights w (bias dropped).
type term struct{ x, w string }

// linearCopies emits, for each term, a copy of n computing it, and returns their outputs. The copies are
// forward nodes whose gradient rules give the transposed maps (see transpose); the caller removes them from
// the plan's needs when done.
func (b *builder) linearCopies(n *pb.NodeProto, v int, terms []term) ([]*pb.NodeProto, []string) {
	op, in, y := n.GetOpType(), n.GetInput(), n.GetOutput()[0]
	w := weightOperand(n, v)
	var attrs []*pb.AttributeProto
	for _, a := range n.GetAttribute() {
		if op == "Gemm" && (a.GetName() == "alpha" || a.GetName() == "beta") {
			continue // alpha is folded into the weights, beta scales the dropped bias
		}
		attrs = append(attrs, a)
	}
	nodes := make([]*pb.NodeProto, len(terms))
	zs := make([]string, len(terms))
	for k, t := range terms {
		ins := append([]string{}, in...)
		ins[v] = t.x
		if w >= 0 {
			ins[w] = t.w
			ins = ins[:2] // no bias
		}
		zs[k] = b.uniqueName(b.hint(op + "/lrp"))
		nodes[k] = onnxgraph.Node(op, b.uniqueNode(b.hint(op+"/lrp")), ins, []string{zs[k]}, attrs...)
		b.emit(nodes[k])
		b.like(zs[k], y)
		need := make([]bool, len(ins))
		need[v] = true
		b.p.need[nodes[k]] = need
	}
	return nodes, zs
}

// transpose returns x * (dz/dx)^T s for a copy made by linearCopies, x its varying operand.
func (b *builder) transpose(nd *pb.NodeProto, v int, x, s string) (string, error) {
	gs, err := rules[nd.GetOpType()].grad(b, nd, []string{s})
	if err != nil {
		return "", err
	}
	if v >= len(gs) || gs[v].name == "" {
		return "", fmt.Errorf("lrp rule: no transposed map for input %d of %s", v, nd.GetOpType())
	}
	return b.op("Mul", []string{x, gs[v].name}), nil
}

// transposeSum sums x_k * (dz_k/dx_k)^T scale(k) over the copies nodes that linearCopies made for terms,
// subtracting instead of adding the terms from k = negFrom on.
func (b *builder) transposeSum(nodes []*pb.NodeProto, v int, terms []term, scale func(k int) string, negFrom int) (string, error) {
	var rs []string
	for k, nd := range nodes {
		rk, err := b.transpose(nd, v, terms[k].x, scale(k))
		if err != nil {
			return "", err
		}
		if k >= negFrom {
			rk = b.op("Neg", []string{rk})
		}
		rs = append(rs, rk)
	}
	return b.sumOf(rs), nil
}

// signedScale scales the first two terms (the positive contributions) by sPos and the others by sNeg.
func signedScale(sPos, sNeg string) func(k int) string {
	return func(k int) string {
		if k >= 2 {
			return sNeg
		}
		return sPos
	}
}

// sumOf adds tensors.
func (b *builder) sumOf(ts []string) string {
	switch len(ts) {
	case 1:
		return ts[0]
	case 2:
		return b.op("Add", ts)
	}
	return b.op("Sum", ts)
}

// applyLinear applies rule r to linear node n whose operand v varies and whose weights are constant; ok is
// false when they are not (the caller falls back to the epsilon rule).
func (b *builder) applyLinear(n *pb.NodeProto, R string, v int, r LinearRule) (string, bool, error) {
	if r.Kind == LinearZPlus {
		return b.zplus(n, R, v)
	}
	in, y := n.GetInput(), n.GetOutput()[0]
	wi := weightOperand(n, v)
	if wi < 0 {
		return "", false, nil // reductions keep the mode's rule
	}
	wt := b.constInit(in[wi])
	if wt == nil {
		return "", false, nil
	}
	alpha := 1.0
	if n.GetOpType() == "Gemm" {
		alpha = float64(onnxgraph.AttrFloatOr(n, "alpha", 1))
	}
	x := in[v]
	init := func(tag string, f func(float64) float64) (string, error) {
		return b.derivedInit(in[wi], wt, alpha, tag, f)
	}
	// posNeg is the weights' positive and negative parts, W+ and W-.
	posNeg := func() (wp, wn string, err error) {
		if wp, err = init("pos", func(w float64) float64 { return math.Max(w, 0) }); err != nil {
			return "", "", err
		}
		wn, err = init("neg", func(w float64) float64 { return math.Min(w, 0) })
		return wp, wn, err
	}
	var cleanup []*pb.NodeProto
	defer func() {
		for _, nd := range cleanup {
			delete(b.p.need, nd)
		}
	}()
	switch r.Kind {
	case LinearGamma, LinearAlphaBeta:
		xp := b.op("Relu", []string{x})
		b.like(xp, x)
		xn := b.op("Min", []string{x, b.scalar(b.elem(x), 0)})
		b.like(xn, x)
		g := r.Gamma
		if r.Kind == LinearGamma {
			// rho+(w) = w + gamma w+ on x+ and w + gamma w- on x- favours positive contributions; rho- the
			// negative ones. Each output uses the one that agrees with the sign of its unmodified z, so the
			// denominator is at least |z| away from 0 (zennit's Gamma): z+ + z- = (2 + gamma) z.
			wgp, err := init(fmt.Sprint("gammapos", g), func(w float64) float64 { return w + g*math.Max(w, 0) })
			if err != nil {
				return "", false, err
			}
			wgn, err := init(fmt.Sprint("gammaneg", g), func(w float64) float64 { return w + g*math.Min(w, 0) })
			if err != nil {
				return "", false, err
			}
			terms := []term{{xp, wgp}, {xn, wgn}, {xp, wgn}, {xn, wgp}}
			nodes, zs := b.linearCopies(n, v, terms)
			cleanup = nodes
			el := b.elem(y)
			zPos, zNeg := b.op("Add", zs[:2]), b.op("Add", zs[2:])
			b.like(zPos, y)
			b.like(zNeg, y)
			up := b.op("GreaterOrEqual", []string{b.op("Add", []string{zPos, zNeg}), b.scalar(el, 0)})
			zero := b.scalar(el, 0)
			sPos := b.op("Where", []string{up, b.op("Div", []string{R, b.stab(zPos)}), zero})
			sNeg := b.op("Where", []string{up, zero, b.op("Div", []string{R, b.stab(zNeg)})})
			rx, err := b.transposeSum(nodes, v, terms, signedScale(sPos, sNeg), len(nodes))
			return rx, err == nil, err
		}
		wp, wn, err := posNeg()
		if err != nil {
			return "", false, err
		}
		// Positive contributions: x+ W+ and x- W-; negative: x+ W- and x- W+.
		terms := []term{{xp, wp}, {xn, wn}, {xp, wn}, {xn, wp}}
		nodes, zs := b.linearCopies(n, v, terms)
		cleanup = nodes
		el := b.elem(y)
		zPos := b.op("Add", []string{b.op("Add", zs[:2]), b.scalar(el, b.p.spec.Epsilon)})
		zNeg := b.op("Sub", []string{b.op("Add", zs[2:]), b.scalar(el, b.p.spec.Epsilon)})
		sPos := b.op("Div", []string{b.op("Mul", []string{R, b.scalar(el, r.Alpha)}), zPos})
		sNeg := b.op("Div", []string{b.op("Mul", []string{R, b.scalar(el, -r.Beta)}), zNeg})
		rx, err := b.transposeSum(nodes, v, terms, signedScale(sPos, sNeg), len(nodes))
		return rx, err == nil, err
	case LinearBox:
		el := b.elem(x)
		lo := b.op("Min", []string{x, b.scalar(el, 0)})
		hi := b.op("Max", []string{x, b.scalar(el, 1)})
		b.like(lo, x)
		b.like(hi, x)
		wa, err := init("alpha", func(w float64) float64 { return w }) // Gemm's alpha folded in
		if err != nil {
			return "", false, err
		}
		wp, wn, err := posNeg()
		if err != nil {
			return "", false, err
		}
		terms := []term{{x, wa}, {lo, wp}, {hi, wn}}
		nodes, zs := b.linearCopies(n, v, terms)
		cleanup = nodes
		z := b.op("Sub", []string{b.op("Sub", []string{zs[0], zs[1]}), zs[2]})
		b.like(z, y)
		s := b.op("Div", []string{R, b.plusEps(z, y)})
		rx, err := b.transposeSum(nodes, v, terms, func(int) string { return s }, 1)
		return rx, err == nil, err
	case LinearFlat, LinearWSquare:
		// Relevance is spread by the weights alone: the operand is replaced by ones, so that x * (dz/dx)^T s
		// becomes W'^T s with W' the ones (flat) or the squared weights (wsquare).
		ones := b.op("Add", []string{b.op("Mul", []string{x, b.scalar(b.elem(x), 0)}), b.scalar(b.elem(x), 1)})
		b.like(ones, x)
		f := func(float64) float64 { return 1 }
		tag := "ones"
		if r.Kind == LinearWSquare {
			f, tag = func(w float64) float64 { return w * w }, "square"
		}
		w2, err := init(tag, f)
		if err != nil {
			return "", false, err
		}
		nodes, zs := b.linearCopies(n, v, []term{{ones, w2}})
		cleanup = nodes
		s := b.op("Div", []string{R, b.plusEps(zs[0], y)})
		rx, err := b.transpose(nodes[0], v, ones, s)
		return rx, err == nil, err
	}
	return "", false, nil
}
