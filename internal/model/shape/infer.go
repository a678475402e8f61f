package shape

import (
	"maps"
	"slices"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// node is one node being inferred: the node and its inputs' infos (nil for absent optional inputs).
type node struct {
	*pb.NodeProto
	in []*Info
}

// x returns input i, an empty Info when absent, so rules read unknown inputs as unknown.
func (n node) x(i int) *Info {
	if i < len(n.in) && n.in[i] != nil {
		return n.in[i]
	}
	return &Info{}
}

func (n node) has(i int) bool { return i < len(n.in) && n.in[i] != nil }

// rule infers a node's outputs; nil entries (or a short slice) leave outputs unknown.
type rule func(f *Inference, n node) []*Info

// rules holds one rule per op type; ops sharing a rule are listed together.
var rules = func() map[string]rule {
	r := map[string]rule{
		"Constant":           constant,
		"Identity":           identity,
		"Neg":                negate,
		"Cast":               cast,
		"Dropout":            dropout,
		"LayerNormalization": layerNorm,
		"Conv":               conv,
		"ConvTranspose":      convTranspose,
		"MatMul":             matmul,
		"Gemm":               gemm,
		"Reshape":            reshape,
		"Flatten":            flatten,
		"Transpose":          transpose,
		"Squeeze":            squeeze,
		"Unsqueeze":          unsqueeze,
		"Concat":             concat,
		"Split":              split,
		"Slice":              slice,
		"Gather":             gather,
		"Shape":              shapeOp,
		"Size":               size,
		"Expand":             expand,
		"ConstantOfShape":    constantOfShape,
		"GlobalAveragePool":  globalPool,
		"GlobalMaxPool":      globalPool,
		"Pad":                pad,
		"Tile":               tile,
		"NonZero":            nonZero,
		"Range":              rangeOp,
		"TopK":               topK,
		"ArgMax":             argReduce,
		"ArgMin":             argReduce,
	}
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Exp", "Log", "Sqrt",
		"Reciprocal", "Selu", "Elu", "LeakyRelu", "ThresholdedRelu", "HardSigmoid", "HardSwish", "Erf", "Gelu",
		"Mish", "Softmax", "LogSoftmax", "Floor", "Ceil", "Round", "Sin", "Cos", "Abs", "Sign", "Clip",
		"BatchNormalization", "InstanceNormalization", "LRN", "ScatterElements", "ScatterND"} {
		r[op] = same
	}
	for _, op := range []string{"Not", "IsNaN", "IsInf"} {
		r[op] = predicate
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Mod",
		"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Where"} {
		r[op] = elementwise
	}
	for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
		"ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum"} {
		r[op] = reduce
	}
	return r
}()

// Ops lists the op types inference has a rule for, sorted.
func Ops() []string { return slices.Sorted(maps.Keys(rules)) }

func (f *Inference) node(p *pb.NodeProto) []*Info {
	r, ok := rules[p.GetOpType()]
	if !ok || (len(p.GetInput()) == 0 && p.GetOpType() != "Constant") {
		return nil
	}
	n := node{NodeProto: p, in: make([]*Info, len(p.GetInput()))}
	for i, name := range p.GetInput() {
		if name != "" {
			n.in[i] = f.Get(name)
		}
	}
	return r(f, n)
}

func ranked(elem pb.TensorProto_DataType, dims []Dim) *Info {
	return &Info{Elem: elem, Ranked: true, Dims: dims}
}

func one(t *Info) []*Info { return []*Info{t} }

// like returns a tensor of x's shape with element type elem.
func like(x *Info, elem pb.TensorProto_DataType) *Info {
	return &Info{Elem: elem, Ranked: x.Ranked, Dims: x.Dims}
}

func same(_ *Inference, n node) []*Info { return one(like(n.x(0), n.x(0).Elem)) }

func predicate(_ *Inference, n node) []*Info { return one(like(n.x(0), pb.TensorProto_BOOL)) }

func constant(_ *Inference, n node) []*Info {
	if t := constantTensor(n.NodeProto); t != nil {
		return one(TensorInfo(t))
	}
	return nil
}

func identity(_ *Inference, n node) []*Info {
	x := n.x(0)
	return one(&Info{Elem: x.Elem, Ranked: x.Ranked, Dims: x.Dims, Val: x.Val})
}

func negate(_ *Inference, n node) []*Info {
	x := n.x(0)
	o := like(x, x.Elem)
	for _, d := range x.Val {
		o.Val = append(o.Val, neg(d))
	}
	return one(o)
}

func cast(_ *Inference, n node) []*Info {
	x := n.x(0)
	o := like(x, pb.TensorProto_DataType(onnxgraph.AttrIntOr(n.NodeProto, "to", 0)))
	if isInt(o.Elem) {
		o.Val = x.Val
	}
	return one(o)
}

// dropout's second output is the (boolean) mask.
func dropout(_ *Inference, n node) []*Info {
	x := n.x(0)
	return []*Info{like(x, x.Elem), like(x, pb.TensorProto_BOOL)}
}

// layerNorm's optional outputs are the mean and inverse standard deviation, reduced from axis on, in
// stash_type (float unless set).
func layerNorm(_ *Inference, n node) []*Info {
	x := n.x(0)
	o := one(like(x, x.Elem))
	if !x.Ranked {
		return o
	}
	a, ok := NormAxis(onnxgraph.AttrIntOr(n.NodeProto, "axis", -1), len(x.Dims))
	if !ok {
		return o
	}
	md := slices.Clone(x.Dims[:a])
	for range len(x.Dims) - a {
		md = append(md, Known(1))
	}
	stash := pb.TensorProto_DataType(onnxgraph.AttrIntOr(n.NodeProto, "stash_type", int64(pb.TensorProto_FLOAT)))
	return append(o, ranked(stash, md), ranked(stash, slices.Clone(md)))
}

// elementwise covers the broadcasting ops; comparisons and logic give booleans, Where the type of its values.
func elementwise(f *Inference, n node) []*Info {
	first := 0
	if n.GetOpType() == "Where" {
		first = 1
	}
	elem := n.x(min(first, len(n.in)-1)).Elem
	switch n.GetOpType() {
	case "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor":
		elem = pb.TensorProto_BOOL
	}
	var shapes [][]Dim
	for i := range n.in {
		t := n.x(i)
		if !t.Ranked {
			return one(&Info{Elem: elem})
		}
		shapes = append(shapes, t.Dims)
	}
	o := ranked(elem, f.Broadcast(shapes...))
	if len(n.in) == 2 {
		o.Val = f.arith(n.GetOpType(), n.x(0), n.x(1))
	}
	return one(o)
}

// arith propagates small integer values through Add/Sub/Mul/Div (shape arithmetic). Flat values line up
// only when the shapes are equal or one side holds a single value.
func (f *Inference) arith(op string, a, b *Info) []Dim {
	if len(a.Val) == 0 || len(b.Val) == 0 || !isInt(a.Elem) || !a.Ranked || !b.Ranked {
		return nil
	}
	if len(a.Val) != 1 && len(b.Val) != 1 && !slices.Equal(a.Dims, b.Dims) {
		return nil
	}
	out := make([]Dim, max(len(a.Val), len(b.Val)))
	for i := range out {
		x, y := a.Val[min(i, len(a.Val)-1)], b.Val[min(i, len(b.Val)-1)]
		switch op {
		case "Add":
			out[i] = f.Add(x, y)
		case "Sub":
			out[i] = f.Add(x, neg(y))
		case "Mul":
			out[i] = f.Mul(x, y)
		case "Div":
			out[i] = f.Div(x, y)
		default:
			return nil
		}
	}
	return out
}

func conv(f *Inference, n node) []*Info {
	x, w := n.x(0), n.x(1)
	o := &Info{Elem: x.Elem}
	if !x.Ranked || !w.Ranked || len(x.Dims) < 3 || len(w.Dims) != len(x.Dims) {
		return one(o)
	}
	sp := len(x.Dims) - 2
	o.Ranked, o.Dims = true, []Dim{x.Dims[0], w.Dims[0]}
	ks, ok := kernelShape(n.NodeProto, w)
	if !ok {
		for range sp {
			o.Dims = append(o.Dims, f.fresh())
		}
		return one(o)
	}
	cp, err := ConvParams(n.NodeProto, sp, ks)
	for i := range sp {
		h := x.Dims[2+i]
		if err != nil || !h.IsKnown() {
			if err == nil && cp.AutoPad == "" && cp.Strides[i] == 1 && cp.Pads[i]+cp.Pads[i+sp] == cp.Dil[i]*(ks[i]-1) {
				o.Dims = append(o.Dims, h) // 'same' padding keeps a symbolic size
				continue
			}
			o.Dims = append(o.Dims, f.fresh())
			continue
		}
		var out int64
		switch cp.AutoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out = (h.C + cp.Strides[i] - 1) / cp.Strides[i]
		default:
			out = (h.C+cp.Pads[i]+cp.Pads[i+sp]-cp.Dil[i]*(ks[i]-1)-1)/cp.Strides[i] + 1
		}
		o.Dims = append(o.Dims, Known(out))
	}
	return one(o)
}

// kernelShape returns a Conv's kernel_shape, from the attribute or else the weights' spatial dims.
func kernelShape(n *pb.NodeProto, w *Info) ([]int64, bool) {
	sp := len(w.Dims) - 2
	if ks := onnxgraph.AttrIntsOr(n, "kernel_shape", nil); len(ks) == sp {
		return ks, true
	}
	ks := make([]int64, sp)
	for i := range ks {
		if !w.Dims[2+i].IsKnown() {
			return nil, false
		}
		ks[i] = w.Dims[2+i].C
	}
	return ks, true
}

// convTranspose: out = stride*(in-1) + output_padding + dilation*(k-1) + 1 - pads, or output_shape when given.
func convTranspose(f *Inference, n node) []*Info {
	x, w := n.x(0), n.x(1)
	o := &Info{Elem: x.Elem}
	if !x.Ranked || !w.Ranked || len(x.Dims) < 3 || len(w.Dims) != len(x.Dims) {
		return one(o)
	}
	sp := len(x.Dims) - 2
	group := onnxgraph.AttrIntOr(n.NodeProto, "group", 1)
	o.Ranked, o.Dims = true, []Dim{x.Dims[0], f.Mul(w.Dims[1], Known(group))}
	ks, ok := kernelShape(n.NodeProto, w)
	var cp ConvAttrs
	var err error
	if ok {
		cp, err = ConvParams(n.NodeProto, sp, ks)
	}
	outPad := onnxgraph.AttrIntsOr(n.NodeProto, "output_padding", make([]int64, sp))
	outShape := onnxgraph.AttrIntsOr(n.NodeProto, "output_shape", nil)
	for i := range sp {
		h := x.Dims[2+i]
		switch {
		case len(outShape) == sp:
			o.Dims = append(o.Dims, Known(outShape[i]))
		case !ok || err != nil || !h.IsKnown() || len(outPad) != sp:
			o.Dims = append(o.Dims, f.fresh())
		case cp.AutoPad == "SAME_UPPER" || cp.AutoPad == "SAME_LOWER":
			o.Dims = append(o.Dims, Known(h.C*cp.Strides[i]))
		default:
			o.Dims = append(o.Dims, Known(cp.Strides[i]*(h.C-1)+outPad[i]+cp.Dil[i]*(ks[i]-1)+1-cp.Pads[i]-cp.Pads[i+sp]))
		}
	}
	return one(o)
}

func matmul(f *Inference, n node) []*Info {
	a, b := n.x(0), n.x(1)
	o := &Info{Elem: a.Elem}
	if !a.Ranked || !b.Ranked || len(a.Dims) == 0 || len(b.Dims) == 0 {
		return one(o)
	}
	ad, bd := a.Dims, b.Dims
	if len(ad) == 1 {
		ad = []Dim{Known(1), ad[0]}
	}
	if len(bd) == 1 {
		bd = []Dim{bd[0], Known(1)}
	}
	dims := f.Broadcast(ad[:len(ad)-2], bd[:len(bd)-2])
	if len(a.Dims) > 1 {
		dims = append(dims, ad[len(ad)-2])
	}
	if len(b.Dims) > 1 {
		dims = append(dims, bd[len(bd)-1])
	}
	o.Ranked, o.Dims = true, dims
	return one(o)
}

func gemm(_ *Inference, n node) []*Info {
	a, b := n.x(0), n.x(1)
	o := &Info{Elem: a.Elem}
	if a.Rank() == 2 && b.Rank() == 2 {
		m, nn := a.Dims[0], b.Dims[1]
		if onnxgraph.AttrIntOr(n.NodeProto, "transA", 0) != 0 {
			m = a.Dims[1]
		}
		if onnxgraph.AttrIntOr(n.NodeProto, "transB", 0) != 0 {
			nn = b.Dims[0]
		}
		o.Ranked, o.Dims = true, []Dim{m, nn}
	}
	return one(o)
}

func reshape(f *Inference, n node) []*Info {
	x, s := n.x(0), n.x(1)
	o := &Info{Elem: x.Elem}
	if s.Val == nil {
		if s.Rank() == 1 && s.Dims[0].IsKnown() && s.Dims[0].C <= maxValElems { // the rank, not a corrupt size
			o.Ranked = true
			for range s.Dims[0].C {
				o.Dims = append(o.Dims, f.fresh())
			}
		}
		return one(o)
	}
	allowZero := onnxgraph.AttrIntOr(n.NodeProto, "allowzero", 0) != 0
	o.Ranked = true
	o.Dims = make([]Dim, len(s.Val))
	infer := -1
	for i, d := range s.Val {
		switch {
		case d.IsKnown() && d.C == -1:
			infer = i
		case d.IsKnown() && d.C == 0 && !allowZero:
			if x.Ranked && i < len(x.Dims) {
				o.Dims[i] = x.Dims[i]
			} else {
				o.Dims[i] = f.fresh()
			}
		default:
			o.Dims[i] = d
		}
	}
	if infer >= 0 {
		if x.Ranked {
			rest := Known(1)
			for i, d := range o.Dims {
				if i != infer {
					rest = f.Mul(rest, d)
				}
			}
			o.Dims[infer] = f.Div(f.Prod(x.Dims), rest)
		} else {
			o.Dims[infer] = f.fresh()
		}
	}
	o.Val = x.Val // reshaping keeps the flat values
	return one(o)
}

func flatten(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	if x.Ranked {
		a := onnxgraph.AttrIntOr(n.NodeProto, "axis", 1)
		if a < 0 {
			a += int64(len(x.Dims))
		}
		if a >= 0 && a <= int64(len(x.Dims)) {
			o.Ranked, o.Dims = true, []Dim{f.Prod(x.Dims[:a]), f.Prod(x.Dims[a:])}
		}
	}
	return one(o)
}

func transpose(_ *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	if !x.Ranked {
		return one(o)
	}
	perm := onnxgraph.AttrIntsOr(n.NodeProto, "perm", nil)
	if perm == nil {
		for i := len(x.Dims) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != len(x.Dims) {
		return one(o)
	}
	dims := []Dim{}
	for _, p := range perm {
		if p < 0 || int(p) >= len(x.Dims) {
			return one(o)
		}
		dims = append(dims, x.Dims[p])
	}
	o.Ranked, o.Dims = true, dims
	return one(o)
}

// AxesOf returns a node's axes, from its attribute (older opsets) or its input at position idx (newer ones):
// the axes, whether they are known, and whether the node gives any.
func (f *Inference) AxesOf(n *pb.NodeProto, idx int) (axes []int64, ok, present bool) {
	if a := onnxgraph.Attr(n, "axes"); a != nil {
		return a.GetInts(), true, true
	}
	if len(n.GetInput()) > idx && n.GetInput()[idx] != "" {
		v, ok := f.Get(n.GetInput()[idx]).KnownVals()
		return v, ok, true
	}
	return nil, true, false
}

func squeeze(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	axes, ok, present := f.AxesOf(n.NodeProto, 1)
	if !x.Ranked || !ok {
		return one(o)
	}
	drop := map[int]bool{}
	if !present || len(axes) == 0 {
		for i, d := range x.Dims {
			if d.IsOne() {
				drop[i] = true
			} else if !d.IsKnown() {
				return one(o) // a symbol might be 1
			}
		}
	}
	for _, a := range axes {
		if i, ok := NormAxis(a, len(x.Dims)); ok {
			drop[i] = true
		}
	}
	o.Ranked, o.Dims = true, []Dim{}
	for i, d := range x.Dims {
		if !drop[i] {
			o.Dims = append(o.Dims, d)
		}
	}
	o.Val = x.Val
	return one(o)
}

func unsqueeze(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	axes, ok, _ := f.AxesOf(n.NodeProto, 1)
	if !x.Ranked || !ok {
		return one(o)
	}
	r := len(x.Dims) + len(axes)
	ins := map[int]bool{}
	for _, a := range axes {
		if i, ok := NormAxis(a, r); ok {
			ins[i] = true
		}
	}
	o.Ranked, o.Dims = true, []Dim{}
	j := 0
	for i := range r {
		if ins[i] {
			o.Dims = append(o.Dims, Known(1))
		} else if j < len(x.Dims) {
			o.Dims = append(o.Dims, x.Dims[j])
			j++
		}
	}
	o.Val = x.Val
	return one(o)
}

func concat(f *Inference, n node) []*Info {
	first := n.x(0)
	o := &Info{Elem: first.Elem}
	var vals []Dim
	valsOK := true
	var dims []Dim
	for k := range n.in {
		t := n.x(k)
		if t.Val == nil {
			valsOK = false
		} else {
			vals = append(vals, t.Val...)
		}
		if !t.Ranked {
			dims = nil
			break
		}
		a, ok := NormAxis(onnxgraph.AttrIntOr(n.NodeProto, "axis", 0), len(t.Dims))
		if !ok {
			dims = nil
			break
		}
		if k == 0 {
			dims = slices.Clone(t.Dims)
			continue
		}
		if len(t.Dims) != len(dims) {
			dims = nil
			break
		}
		dims[a] = f.Add(dims[a], t.Dims[a])
	}
	if dims != nil {
		o.Ranked, o.Dims = true, dims
	}
	if valsOK && first.Rank() == 1 {
		o.Val = vals
	}
	return one(o)
}

// SplitSizes returns a Split node's piece sizes along its axis, the axis, and whether the sizes are known.
func (f *Inference) SplitSizes(n *pb.NodeProto, x *Info) ([]Dim, int, bool) {
	if !x.Ranked {
		return nil, 0, false
	}
	a, ok := NormAxis(onnxgraph.AttrIntOr(n, "axis", 0), len(x.Dims))
	if !ok {
		return nil, 0, false
	}
	nout := len(n.GetOutput())
	if nout == 0 {
		return nil, a, false
	}
	var sizes []Dim
	if s := onnxgraph.AttrIntsOr(n, "split", nil); s != nil {
		for _, v := range s {
			sizes = append(sizes, Known(v))
		}
	} else if len(n.GetInput()) > 1 && n.GetInput()[1] != "" {
		v := f.Get(n.GetInput()[1]).Val
		if v == nil {
			return nil, a, false
		}
		sizes = v
	} else {
		d := x.Dims[a]
		if !d.IsKnown() {
			if nout == 1 {
				return []Dim{d}, a, true
			}
			return nil, a, false
		}
		per := (d.C + int64(nout) - 1) / int64(nout) // opset 18 allows a smaller last piece
		for i := range nout {
			sizes = append(sizes, Known(min(per, d.C-per*int64(i))))
		}
	}
	return sizes, a, len(sizes) == nout
}

func split(f *Inference, n node) []*Info {
	x := n.x(0)
	sizes, a, ok := f.SplitSizes(n.NodeProto, x)
	out := make([]*Info, len(n.GetOutput()))
	for i := range out {
		out[i] = &Info{Elem: x.Elem}
		if x.Ranked {
			d := slices.Clone(x.Dims)
			if ok {
				d[a] = sizes[i]
			} else if a < len(d) {
				d[a] = f.fresh()
			}
			out[i].Ranked, out[i].Dims = true, d
		}
	}
	return out
}

func slice(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	if !x.Ranked {
		return one(o)
	}
	o.Ranked, o.Dims = true, slices.Clone(x.Dims)
	s, ok := f.SliceParams(n.NodeProto, len(x.Dims))
	if !ok { // any axis may change
		for i := range o.Dims {
			o.Dims[i] = f.fresh()
		}
		return one(o)
	}
	for i, a := range s.Axes {
		_, _, d, ok := SliceBounds(s.Starts[i], s.Ends[i], s.Steps[i], x.Dims[a])
		if !ok {
			d = f.fresh()
		}
		o.Dims[a] = d
	}
	if x.Val != nil && len(x.Dims) == 1 && len(s.Axes) == 1 {
		st, _, d, ok := SliceBounds(s.Starts[0], s.Ends[0], s.Steps[0], Known(int64(len(x.Val))))
		if ok {
			o.Val = []Dim{}
			for i := range d.C {
				o.Val = append(o.Val, x.Val[st+i*s.Steps[0]])
			}
		}
	}
	return one(o)
}

func gather(_ *Inference, n node) []*Info {
	x, idx := n.x(0), n.x(1)
	o := &Info{Elem: x.Elem}
	if !x.Ranked || !idx.Ranked {
		return one(o)
	}
	a, ok := NormAxis(onnxgraph.AttrIntOr(n.NodeProto, "axis", 0), len(x.Dims))
	if !ok {
		return one(o)
	}
	o.Ranked = true
	o.Dims = append(append(slices.Clone(x.Dims[:a]), idx.Dims...), x.Dims[a+1:]...)
	if x.Val != nil && len(x.Dims) == 1 {
		if iv, ok := idx.KnownVals(); ok {
			var vals []Dim
			for _, i := range iv {
				if i < 0 {
					i += int64(len(x.Val))
				}
				if i < 0 || i >= int64(len(x.Val)) {
					return one(o)
				}
				vals = append(vals, x.Val[i])
			}
			o.Val = vals
		}
	}
	return one(o)
}

// shapeOp is Shape: its values are the input's dims from start to end, which is what makes shape arithmetic
// resolve symbolically.
func shapeOp(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: pb.TensorProto_INT64, Ranked: true}
	if !x.Ranked {
		o.Dims = []Dim{f.fresh()}
		return one(o)
	}
	r := int64(len(x.Dims))
	start, end := onnxgraph.AttrIntOr(n.NodeProto, "start", 0), onnxgraph.AttrIntOr(n.NodeProto, "end", r)
	start, end = clampRange(start, r), clampRange(end, r)
	end = max(end, start)
	o.Val = slices.Clone(x.Dims[start:end])
	o.Dims = []Dim{Known(end - start)}
	return one(o)
}

func size(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: pb.TensorProto_INT64, Ranked: true, Dims: []Dim{}}
	if x.Ranked {
		o.Val = []Dim{f.Prod(x.Dims)}
	}
	return one(o)
}

func expand(f *Inference, n node) []*Info {
	x, s := n.x(0), n.x(1)
	o := &Info{Elem: x.Elem}
	if x.Ranked && s.Val != nil {
		o.Ranked, o.Dims = true, f.Broadcast(x.Dims, s.Val)
	}
	return one(o)
}

func constantOfShape(_ *Inference, n node) []*Info {
	o := &Info{Elem: pb.TensorProto_FLOAT}
	if a := onnxgraph.Attr(n.NodeProto, "value"); a != nil && a.GetT() != nil {
		o.Elem = pb.TensorProto_DataType(a.GetT().GetDataType())
	}
	if v := n.x(0).Val; v != nil {
		o.Ranked, o.Dims = true, slices.Clone(v)
	}
	return one(o)
}

func reduce(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	axes, ok, present := f.AxesOf(n.NodeProto, 1)
	if !x.Ranked || !ok {
		return one(o)
	}
	keep := onnxgraph.AttrIntOr(n.NodeProto, "keepdims", 1) != 0
	red := map[int]bool{}
	if !present || len(axes) == 0 {
		if onnxgraph.AttrIntOr(n.NodeProto, "noop_with_empty_axes", 0) != 0 {
			return one(like(x, x.Elem))
		}
		for i := range x.Dims {
			red[i] = true
		}
	}
	for _, a := range axes {
		if i, ok := NormAxis(a, len(x.Dims)); ok {
			red[i] = true
		}
	}
	o.Ranked, o.Dims = true, []Dim{}
	for i, d := range x.Dims {
		switch {
		case !red[i]:
			o.Dims = append(o.Dims, d)
		case keep:
			o.Dims = append(o.Dims, Known(1))
		}
	}
	return one(o)
}

func argReduce(_ *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: pb.TensorProto_INT64}
	if !x.Ranked {
		return one(o)
	}
	a, ok := NormAxis(onnxgraph.AttrIntOr(n.NodeProto, "axis", 0), len(x.Dims))
	if !ok {
		return one(o)
	}
	o.Ranked, o.Dims = true, []Dim{}
	for i, d := range x.Dims {
		if i != a {
			o.Dims = append(o.Dims, d)
		} else if onnxgraph.AttrIntOr(n.NodeProto, "keepdims", 1) != 0 {
			o.Dims = append(o.Dims, Known(1))
		}
	}
	return one(o)
}

// topK gives the k largest values and their (int64) indices along axis.
func topK(f *Inference, n node) []*Info {
	x := n.x(0)
	vals, idx := &Info{Elem: x.Elem}, &Info{Elem: pb.TensorProto_INT64}
	if !x.Ranked {
		return []*Info{vals, idx}
	}
	a, ok := NormAxis(onnxgraph.AttrIntOr(n.NodeProto, "axis", -1), len(x.Dims))
	if !ok {
		return []*Info{vals, idx}
	}
	d := slices.Clone(x.Dims)
	if k := n.x(1).Val; len(k) == 1 {
		d[a] = k[0]
	} else {
		d[a] = f.fresh()
	}
	vals.Ranked, vals.Dims = true, d
	idx.Ranked, idx.Dims = true, slices.Clone(d)
	return []*Info{vals, idx}
}

func globalPool(_ *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	if x.Rank() >= 2 {
		o.Ranked, o.Dims = true, slices.Clone(x.Dims[:2])
		for range len(x.Dims) - 2 {
			o.Dims = append(o.Dims, Known(1))
		}
	}
	return one(o)
}

// pad is inferred for constant pads over every axis (no axes input).
func pad(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: x.Elem}
	if !x.Ranked || n.has(3) {
		return one(o)
	}
	if pads, ok := n.x(1).KnownVals(); ok && len(pads) == 2*len(x.Dims) {
		o.Ranked, o.Dims = true, []Dim{}
		for i, d := range x.Dims {
			o.Dims = append(o.Dims, f.Add(d, Known(pads[i]+pads[i+len(x.Dims)])))
		}
	}
	return one(o)
}

func tile(f *Inference, n node) []*Info {
	x, r := n.x(0), n.x(1)
	o := &Info{Elem: x.Elem}
	if x.Ranked && len(r.Val) == len(x.Dims) {
		o.Ranked, o.Dims = true, []Dim{}
		for i, d := range x.Dims {
			o.Dims = append(o.Dims, f.Mul(d, r.Val[i]))
		}
	}
	return one(o)
}

// nonZero's count of non-zero elements is data, so a fresh symbol.
func nonZero(f *Inference, n node) []*Info {
	x := n.x(0)
	o := &Info{Elem: pb.TensorProto_INT64}
	if x.Ranked {
		o.Ranked, o.Dims = true, []Dim{Known(int64(len(x.Dims))), f.fresh()}
	}
	return one(o)
}

func rangeOp(f *Inference, n node) []*Info {
	return one(ranked(n.x(0).Elem, []Dim{f.fresh()}))
}
