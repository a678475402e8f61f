package autograd

import (
	"fmt"
	"math"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// dim is one tensor dimension: the value c when s is empty, else c times the symbol s. Symbols are the graph's
// dim_params (lc0 uses "batch") or fresh "?N" names for sizes nothing pins down, so two dims are equal exactly
// when they are known to be. Tracking c*batch lets Reshape(-1) after a batch fold (e.g. [B,64,176] -> [B*64,176])
// keep exact static shapes, which is what lets most broadcast reductions be planned statically.
type dim struct {
	c int64
	s string
}

func known(v int64) dim     { return dim{c: v} }
func (d dim) isKnown() bool { return d.s == "" }
func (d dim) isOne() bool   { return d.s == "" && d.c == 1 }
func (d dim) String() string {
	if d.s == "" {
		return fmt.Sprint(d.c)
	}
	if d.c == 1 {
		return d.s
	}
	return fmt.Sprintf("%d*%s", d.c, d.s)
}

// tinfo is what inference knows of a tensor. val holds the values of small integer tensors (shapes, axes,
// indices), symbolically, so shape arithmetic (Shape -> Slice -> Concat -> Expand) resolves.
type tinfo struct {
	elem   pb.TensorProto_DataType // 0 when unknown
	ranked bool
	dims   []dim
	val    []dim
}

func (t *tinfo) rank() int {
	if t == nil || !t.ranked {
		return -1
	}
	return len(t.dims)
}

// static reports whether every dim is a known number.
func (t *tinfo) static() bool {
	if t == nil || !t.ranked {
		return false
	}
	for _, d := range t.dims {
		if !d.isKnown() {
			return false
		}
	}
	return true
}

func (t *tinfo) ints() []int64 {
	out := make([]int64, len(t.dims))
	for i, d := range t.dims {
		out[i] = d.c
	}
	return out
}

// knownVals returns val as plain numbers when all are known.
func (t *tinfo) knownVals() ([]int64, bool) {
	if t == nil || t.val == nil {
		return nil, false
	}
	out := make([]int64, len(t.val))
	for i, d := range t.val {
		if !d.isKnown() {
			return nil, false
		}
		out[i] = d.c
	}
	return out, true
}

func sameDims(a, b []dim) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// inference holds the inferred info of every tensor of a graph.
type inference struct {
	info map[string]*tinfo
	nsym int
}

func (f *inference) fresh() dim {
	f.nsym++
	return dim{c: 1, s: fmt.Sprintf("?%d", f.nsym)}
}

func (f *inference) get(name string) *tinfo {
	if t, ok := f.info[name]; ok {
		return t
	}
	return &tinfo{}
}

func (f *inference) mul(a, b dim) dim {
	switch {
	case a.isKnown() && b.isKnown():
		return known(a.c * b.c)
	case a.isKnown():
		if a.c == 0 {
			return known(0)
		}
		return dim{c: a.c * b.c, s: b.s}
	case b.isKnown():
		if b.c == 0 {
			return known(0)
		}
		return dim{c: a.c * b.c, s: a.s}
	}
	return f.fresh()
}

func (f *inference) prod(ds []dim) dim {
	p := known(1)
	for _, d := range ds {
		p = f.mul(p, d)
	}
	return p
}

// div divides a by b when the result is exact.
func (f *inference) div(a, b dim) dim {
	switch {
	case b.isKnown() && b.c != 0 && a.c%b.c == 0:
		return dim{c: a.c / b.c, s: a.s}
	case !b.isKnown() && a.s == b.s && b.c != 0 && a.c%b.c == 0:
		return known(a.c / b.c)
	}
	return f.fresh()
}

func (f *inference) add(a, b dim) dim {
	switch {
	case a.isKnown() && b.isKnown():
		return known(a.c + b.c)
	case a.s == b.s:
		return dim{c: a.c + b.c, s: a.s}
	}
	return f.fresh()
}

// broadcast applies numpy broadcasting to dims, trusting the model to be valid where a symbol meets a number.
func (f *inference) broadcast(shapes ...[]dim) []dim {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]dim, r)
	for i := range out {
		out[i] = known(1)
	}
	for _, s := range shapes {
		off := r - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case d.isOne():
			case o.isOne():
				out[off+i] = d
			case o == d:
			case o.isKnown():
			case d.isKnown():
				out[off+i] = d
			default:
				out[off+i] = f.fresh()
			}
		}
	}
	return out
}

func dimsFromValueInfo(v *pb.ValueInfoProto, f *inference) *tinfo {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return &tinfo{}
	}
	t := &tinfo{elem: pb.TensorProto_DataType(tt.GetElemType())}
	if tt.Shape == nil {
		return t
	}
	t.ranked = true
	for _, d := range tt.GetShape().GetDim() {
		if p := d.GetDimParam(); p != "" {
			t.dims = append(t.dims, dim{c: 1, s: p})
		} else if _, ok := d.GetValue().(*pb.TensorShapeProto_Dimension_DimValue); ok {
			t.dims = append(t.dims, known(d.GetDimValue()))
		} else {
			t.dims = append(t.dims, f.fresh())
		}
	}
	return t
}

// maxValElems bounds the integer tensors whose values inference tracks.
const maxValElems = 64

func tensorInfo(t *pb.TensorProto) *tinfo {
	ti := &tinfo{elem: pb.TensorProto_DataType(t.GetDataType()), ranked: true}
	for _, d := range t.GetDims() {
		ti.dims = append(ti.dims, known(d))
	}
	if ti.elem == pb.TensorProto_INT64 || ti.elem == pb.TensorProto_INT32 {
		if onnxgraph.NumElements(t.GetDims()) <= maxValElems {
			if v, err := onnxgraph.Int64s(t); err == nil {
				ti.val = make([]dim, len(v))
				for i, x := range v {
					ti.val[i] = known(x)
				}
			}
		}
	}
	return ti
}

// constantTensor returns a Constant node's value as a tensor (value, value_float(s), value_int(s)).
func constantTensor(n *pb.NodeProto) *pb.TensorProto {
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "value":
			return a.GetT()
		case "value_float":
			return onnxgraph.Float32Tensor("", nil, []float32{a.GetF()})
		case "value_floats":
			return onnxgraph.Float32Tensor("", []int64{int64(len(a.GetFloats()))}, a.GetFloats())
		case "value_int":
			return onnxgraph.Int64Tensor("", nil, []int64{a.GetI()})
		case "value_ints":
			return onnxgraph.Int64Tensor("", []int64{int64(len(a.GetInts()))}, a.GetInts())
		}
	}
	return nil
}

// infer runs shape and type inference over g. It never fails: what it cannot work out stays unknown, and the
// gradient rules then fall back to run-time shapes.
func infer(g *pb.GraphProto) *inference {
	f := &inference{info: map[string]*tinfo{}}
	for _, v := range g.GetInput() {
		f.info[v.GetName()] = dimsFromValueInfo(v, f)
	}
	for _, t := range g.GetInitializer() {
		in, isInput := f.info[t.GetName()]
		switch {
		case !isInput:
			f.info[t.GetName()] = tensorInfo(t)
		case !in.ranked:
			// An initializer that is also an input is only a default: its dims stand in for an open declaration,
			// its values are not trusted.
			ti := tensorInfo(t)
			ti.val = nil
			f.info[t.GetName()] = ti
		}
	}
	hints := map[string]*pb.ValueInfoProto{}
	for _, v := range g.GetValueInfo() {
		hints[v.GetName()] = v
	}
	for _, n := range g.GetNode() {
		outs := f.node(n)
		for i, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			var t *tinfo
			if i < len(outs) && outs[i] != nil {
				t = outs[i]
			} else {
				t = &tinfo{}
			}
			if h, ok := hints[o]; ok {
				ht := dimsFromValueInfo(h, f)
				if t.elem == 0 {
					t.elem = ht.elem
				}
				if !t.ranked && ht.ranked {
					t.ranked, t.dims = true, ht.dims
				}
			}
			f.info[o] = t
		}
	}
	return f
}

func isFloat(e pb.TensorProto_DataType) bool {
	return e == pb.TensorProto_FLOAT || e == pb.TensorProto_DOUBLE || e == pb.TensorProto_FLOAT16 || e == pb.TensorProto_BFLOAT16
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(a int64, rank int) (int, bool) {
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, false
	}
	return int(a), true
}

func ranked(elem pb.TensorProto_DataType, dims []dim) *tinfo {
	return &tinfo{elem: elem, ranked: true, dims: dims}
}

// axesOf returns a node's axes, from its attribute (older opsets) or its input at position idx (newer ones).
func (f *inference) axesOf(n *pb.NodeProto, idx int) ([]int64, bool, bool) {
	if a := onnxgraph.Attr(n, "axes"); a != nil {
		return a.GetInts(), true, true
	}
	if len(n.GetInput()) > idx && n.GetInput()[idx] != "" {
		v, ok := f.get(n.GetInput()[idx]).knownVals()
		return v, ok, true
	}
	return nil, true, false
}

func (f *inference) node(n *pb.NodeProto) []*tinfo {
	if len(n.GetInput()) == 0 && n.GetOpType() != "Constant" {
		return nil
	}
	in := func(i int) *tinfo {
		if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
			return nil
		}
		return f.get(n.GetInput()[i])
	}
	x := in(0)
	if x == nil {
		x = &tinfo{}
	}
	same := func() []*tinfo { return []*tinfo{{elem: x.elem, ranked: x.ranked, dims: x.dims}} }
	switch n.GetOpType() {
	case "Constant":
		if t := constantTensor(n); t != nil {
			return []*tinfo{tensorInfo(t)}
		}
		return nil
	case "Identity":
		return []*tinfo{{elem: x.elem, ranked: x.ranked, dims: x.dims, val: x.val}}
	case "Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Exp", "Log", "Sqrt", "Reciprocal",
		"Selu", "Elu", "LeakyRelu", "HardSigmoid", "HardSwish", "Erf", "Softmax", "LogSoftmax",
		"Floor", "Ceil", "Round", "Sin", "Cos", "Mish", "Clip", "BatchNormalization", "LRN":
		return same()
	case "Neg", "Abs", "Sign":
		o := same()
		if x.val != nil && n.GetOpType() == "Neg" {
			for _, d := range x.val {
				o[0].val = append(o[0].val, dim{c: -d.c, s: d.s})
			}
		}
		return o
	case "Dropout":
		o := same()
		return append(o, &tinfo{elem: pb.TensorProto_BOOL, ranked: x.ranked, dims: x.dims})
	case "Not", "IsNaN", "IsInf":
		return []*tinfo{{elem: pb.TensorProto_BOOL, ranked: x.ranked, dims: x.dims}}
	case "Cast":
		o := &tinfo{elem: pb.TensorProto_DataType(onnxgraph.AttrIntOr(n, "to", 0)), ranked: x.ranked, dims: x.dims}
		if !isFloat(o.elem) {
			o.val = x.val
		}
		return []*tinfo{o}
	case "LayerNormalization":
		o := same()
		if x.ranked {
			if a, ok := normAxis(onnxgraph.AttrIntOr(n, "axis", -1), len(x.dims)); ok {
				md := append([]dim(nil), x.dims[:a]...)
				for range len(x.dims) - a {
					md = append(md, known(1))
				}
				stash := pb.TensorProto_FLOAT
				o = append(o, ranked(stash, md), ranked(stash, md))
			}
		}
		return o
	case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Mod",
		"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Where":
		first := 0
		if n.GetOpType() == "Where" {
			first = 1
		}
		var shapes [][]dim
		all := true
		for i := range n.GetInput() {
			t := in(i)
			if t == nil || !t.ranked {
				all = false
				break
			}
			shapes = append(shapes, t.dims)
		}
		elem := f.get(n.GetInput()[min(first, len(n.GetInput())-1)]).elem
		switch n.GetOpType() {
		case "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor":
			elem = pb.TensorProto_BOOL
		}
		if !all {
			return []*tinfo{{elem: elem}}
		}
		o := ranked(elem, f.broadcast(shapes...))
		if len(n.GetInput()) == 2 {
			o.val = f.arith(n.GetOpType(), in(0), in(1))
		}
		return []*tinfo{o}
	case "Conv", "ConvTranspose":
		return []*tinfo{f.conv(n, x, in(1))}
	case "MatMul":
		return []*tinfo{f.matmul(x, in(1))}
	case "Gemm":
		b := in(1)
		o := &tinfo{elem: x.elem}
		if x.rank() == 2 && b.rank() == 2 {
			m, k := x.dims[0], x.dims[1]
			if onnxgraph.AttrIntOr(n, "transA", 0) != 0 {
				m = k
			}
			nn := b.dims[1]
			if onnxgraph.AttrIntOr(n, "transB", 0) != 0 {
				nn = b.dims[0]
			}
			o.ranked, o.dims = true, []dim{m, nn}
		}
		return []*tinfo{o}
	case "Reshape":
		return []*tinfo{f.reshape(n, x, in(1))}
	case "Flatten":
		o := &tinfo{elem: x.elem}
		if x.ranked {
			a := onnxgraph.AttrIntOr(n, "axis", 1)
			if a < 0 {
				a += int64(len(x.dims))
			}
			if a >= 0 && a <= int64(len(x.dims)) {
				o.ranked, o.dims = true, []dim{f.prod(x.dims[:a]), f.prod(x.dims[a:])}
			}
		}
		return []*tinfo{o}
	case "Transpose":
		o := &tinfo{elem: x.elem}
		if x.ranked {
			perm := onnxgraph.AttrIntsOr(n, "perm", nil)
			if perm == nil {
				for i := len(x.dims) - 1; i >= 0; i-- {
					perm = append(perm, int64(i))
				}
			}
			if len(perm) == len(x.dims) {
				o.ranked = true
				for _, p := range perm {
					if p < 0 || int(p) >= len(x.dims) {
						return []*tinfo{{elem: x.elem}}
					}
					o.dims = append(o.dims, x.dims[p])
				}
			}
		}
		return []*tinfo{o}
	case "Squeeze":
		o := &tinfo{elem: x.elem}
		axes, ok, present := f.axesOf(n, 1)
		if x.ranked && ok {
			drop := map[int]bool{}
			if !present {
				for i, d := range x.dims {
					if d.isOne() {
						drop[i] = true
					} else if !d.isKnown() {
						return []*tinfo{o}
					}
				}
			}
			for _, a := range axes {
				if i, ok := normAxis(a, len(x.dims)); ok {
					drop[i] = true
				}
			}
			o.ranked, o.dims = true, []dim{}
			for i, d := range x.dims {
				if !drop[i] {
					o.dims = append(o.dims, d)
				}
			}
			if len(x.val) == 1 && len(o.dims) == 0 {
				o.val = x.val
			}
		}
		return []*tinfo{o}
	case "Unsqueeze":
		o := &tinfo{elem: x.elem}
		axes, ok, _ := f.axesOf(n, 1)
		if x.ranked && ok {
			r := len(x.dims) + len(axes)
			ins := map[int]bool{}
			for _, a := range axes {
				if i, ok := normAxis(a, r); ok {
					ins[i] = true
				}
			}
			o.ranked, o.dims = true, []dim{}
			j := 0
			for i := range r {
				if ins[i] {
					o.dims = append(o.dims, known(1))
				} else if j < len(x.dims) {
					o.dims = append(o.dims, x.dims[j])
					j++
				}
			}
			if x.val != nil && len(x.dims) <= 1 {
				o.val = x.val
			}
		}
		return []*tinfo{o}
	case "Concat":
		return []*tinfo{f.concat(n)}
	case "Split":
		return f.split(n, x)
	case "Slice":
		return []*tinfo{f.slice(n, x)}
	case "Gather":
		return []*tinfo{f.gather(n, x, in(1))}
	case "Shape":
		o := &tinfo{elem: pb.TensorProto_INT64, ranked: true}
		if !x.ranked {
			o.dims = []dim{f.fresh()}
			return []*tinfo{o}
		}
		r := int64(len(x.dims))
		start, end := onnxgraph.AttrIntOr(n, "start", 0), onnxgraph.AttrIntOr(n, "end", r)
		start, end = clampRange(start, r), clampRange(end, r)
		if end < start {
			end = start
		}
		o.val = append([]dim{}, x.dims[start:end]...)
		o.dims = []dim{known(end - start)}
		return []*tinfo{o}
	case "Size":
		o := &tinfo{elem: pb.TensorProto_INT64, ranked: true, dims: []dim{}}
		if x.ranked {
			o.val = []dim{f.prod(x.dims)}
		}
		return []*tinfo{o}
	case "Expand":
		o := &tinfo{elem: x.elem}
		s := in(1)
		if x.ranked && s != nil && s.val != nil {
			o.ranked, o.dims = true, f.broadcast(x.dims, s.val)
		}
		return []*tinfo{o}
	case "ConstantOfShape":
		o := &tinfo{elem: pb.TensorProto_FLOAT}
		if a := onnxgraph.Attr(n, "value"); a != nil && a.GetT() != nil {
			o.elem = pb.TensorProto_DataType(a.GetT().GetDataType())
		}
		if x.val != nil {
			o.ranked, o.dims = true, append([]dim{}, x.val...)
		}
		return []*tinfo{o}
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum":
		o := &tinfo{elem: x.elem}
		axes, ok, present := f.axesOf(n, 1)
		if !x.ranked || !ok {
			return []*tinfo{o}
		}
		keep := onnxgraph.AttrIntOr(n, "keepdims", 1) != 0
		red := map[int]bool{}
		if !present || len(axes) == 0 {
			if onnxgraph.AttrIntOr(n, "noop_with_empty_axes", 0) != 0 {
				return same()
			}
			for i := range x.dims {
				red[i] = true
			}
		}
		for _, a := range axes {
			if i, ok := normAxis(a, len(x.dims)); ok {
				red[i] = true
			}
		}
		o.ranked, o.dims = true, []dim{}
		for i, d := range x.dims {
			switch {
			case !red[i]:
				o.dims = append(o.dims, d)
			case keep:
				o.dims = append(o.dims, known(1))
			}
		}
		return []*tinfo{o}
	case "ArgMax", "ArgMin":
		o := &tinfo{elem: pb.TensorProto_INT64}
		if x.ranked {
			if a, ok := normAxis(onnxgraph.AttrIntOr(n, "axis", 0), len(x.dims)); ok {
				o.ranked, o.dims = true, []dim{}
				for i, d := range x.dims {
					if i != a {
						o.dims = append(o.dims, d)
					} else if onnxgraph.AttrIntOr(n, "keepdims", 1) != 0 {
						o.dims = append(o.dims, known(1))
					}
				}
			}
		}
		return []*tinfo{o}
	case "GlobalAveragePool", "GlobalMaxPool":
		o := &tinfo{elem: x.elem}
		if x.rank() >= 2 {
			o.ranked, o.dims = true, append([]dim{}, x.dims[:2]...)
			for range len(x.dims) - 2 {
				o.dims = append(o.dims, known(1))
			}
		}
		return []*tinfo{o}
	case "Pad":
		o := &tinfo{elem: x.elem}
		if p := in(1); x.ranked && p != nil {
			if pads, ok := p.knownVals(); ok && len(pads) == 2*len(x.dims) && len(n.GetInput()) < 4 {
				o.ranked = true
				for i, d := range x.dims {
					o.dims = append(o.dims, f.add(d, known(pads[i]+pads[i+len(x.dims)])))
				}
			}
		}
		return []*tinfo{o}
	case "Tile":
		o := &tinfo{elem: x.elem}
		if r := in(1); x.ranked && r != nil && len(r.val) == len(x.dims) {
			o.ranked = true
			for i, d := range x.dims {
				o.dims = append(o.dims, f.mul(d, r.val[i]))
			}
		}
		return []*tinfo{o}
	case "ScatterElements", "ScatterND":
		return same()
	case "NonZero":
		o := &tinfo{elem: pb.TensorProto_INT64}
		if x.ranked {
			o.ranked, o.dims = true, []dim{known(int64(len(x.dims))), f.fresh()}
		}
		return []*tinfo{o}
	case "Range":
		return []*tinfo{{elem: x.elem, ranked: true, dims: []dim{f.fresh()}}}
	}
	return nil
}

func clampRange(v, r int64) int64 {
	if v < 0 {
		v += r
	}
	return max(0, min(v, r))
}

// arith propagates small integer values through Add/Sub/Mul/Div (shape arithmetic).
func (f *inference) arith(op string, a, b *tinfo) []dim {
	if a == nil || b == nil || a.val == nil || b.val == nil || !isIntElem(a.elem) {
		return nil
	}
	n := max(len(a.val), len(b.val))
	if (len(a.val) != n && len(a.val) != 1) || (len(b.val) != n && len(b.val) != 1) {
		return nil
	}
	out := make([]dim, n)
	for i := range out {
		x, y := a.val[min(i, len(a.val)-1)], b.val[min(i, len(b.val)-1)]
		switch op {
		case "Add":
			out[i] = f.add(x, y)
		case "Sub":
			out[i] = f.add(x, dim{c: -y.c, s: y.s})
		case "Mul":
			out[i] = f.mul(x, y)
		case "Div":
			out[i] = f.div(x, y)
		default:
			return nil
		}
	}
	return out
}

func isIntElem(e pb.TensorProto_DataType) bool {
	return e == pb.TensorProto_INT64 || e == pb.TensorProto_INT32
}

func (f *inference) conv(n *pb.NodeProto, x, w *tinfo) *tinfo {
	o := &tinfo{elem: x.elem}
	if !x.ranked || w == nil || !w.ranked || len(x.dims) < 3 || len(w.dims) != len(x.dims) {
		return o
	}
	sp := len(x.dims) - 2
	group := onnxgraph.AttrIntOr(n, "group", 1)
	o.ranked = true
	if n.GetOpType() == "ConvTranspose" {
		o.dims = []dim{x.dims[0], f.mul(w.dims[1], known(group))}
		for range sp {
			o.dims = append(o.dims, f.fresh())
		}
		return o
	}
	o.dims = []dim{x.dims[0], w.dims[0]}
	ks := onnxgraph.AttrIntsOr(n, "kernel_shape", nil)
	if len(ks) != sp {
		ks = make([]int64, sp)
		for i := range ks {
			if !w.dims[2+i].isKnown() {
				for range sp {
					o.dims = append(o.dims, f.fresh())
				}
				return o
			}
			ks[i] = w.dims[2+i].c
		}
	}
	cp, err := convParams(n, sp, ks)
	for i := range sp {
		h := x.dims[2+i]
		if err != nil || !h.isKnown() {
			if err == nil && cp.autoPad == "" && cp.strides[i] == 1 && cp.pads[i]+cp.pads[i+sp] == cp.dil[i]*(ks[i]-1) {
				o.dims = append(o.dims, h) // 'same' padding keeps a symbolic size
				continue
			}
			o.dims = append(o.dims, f.fresh())
			continue
		}
		var out int64
		switch cp.autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out = (h.c + cp.strides[i] - 1) / cp.strides[i]
		default:
			out = (h.c+cp.pads[i]+cp.pads[i+sp]-cp.dil[i]*(ks[i]-1)-1)/cp.strides[i] + 1
		}
		o.dims = append(o.dims, known(out))
	}
	return o
}

// convAttrs are a Conv node's geometry with defaults filled in.
type convAttrs struct {
	strides, dil, pads []int64
	autoPad            string
	group              int64
}

func convParams(n *pb.NodeProto, sp int, ks []int64) (convAttrs, error) {
	ones := func() []int64 {
		o := make([]int64, sp)
		for i := range o {
			o[i] = 1
		}
		return o
	}
	c := convAttrs{
		strides: onnxgraph.AttrIntsOr(n, "strides", ones()),
		dil:     onnxgraph.AttrIntsOr(n, "dilations", ones()),
		pads:    onnxgraph.AttrIntsOr(n, "pads", make([]int64, 2*sp)),
		group:   onnxgraph.AttrIntOr(n, "group", 1),
	}
	if a := onnxgraph.Attr(n, "auto_pad"); a != nil {
		c.autoPad = string(a.GetS())
		if c.autoPad == "NOTSET" {
			c.autoPad = ""
		}
	}
	if len(c.strides) != sp || len(c.dil) != sp || len(c.pads) != 2*sp || len(ks) != sp {
		return c, fmt.Errorf("conv attributes do not match %d spatial dims", sp)
	}
	switch c.autoPad {
	case "VALID":
		c.pads = make([]int64, 2*sp)
	case "SAME_UPPER", "SAME_LOWER":
		// Stride-1 'same' padding does not depend on the input size; larger strides do, and are resolved by the
		// caller from static shapes when it needs them.
		for i := range sp {
			if c.strides[i] != 1 {
				return c, nil
			}
			total := c.dil[i] * (ks[i] - 1)
			small, big := total/2, total-total/2
			if c.autoPad == "SAME_UPPER" {
				c.pads[i], c.pads[i+sp] = small, big
			} else {
				c.pads[i], c.pads[i+sp] = big, small
			}
		}
		c.autoPad = ""
	}
	return c, nil
}

func (f *inference) matmul(a, b *tinfo) *tinfo {
	o := &tinfo{elem: a.elem}
	if !a.ranked || b == nil || !b.ranked || len(a.dims) == 0 || len(b.dims) == 0 {
		return o
	}
	ad, bd := a.dims, b.dims
	if len(ad) == 1 {
		ad = []dim{known(1), ad[0]}
	}
	if len(bd) == 1 {
		bd = []dim{bd[0], known(1)}
	}
	dims := f.broadcast(ad[:len(ad)-2], bd[:len(bd)-2])
	if len(a.dims) > 1 {
		dims = append(dims, ad[len(ad)-2])
	}
	if len(b.dims) > 1 {
		dims = append(dims, bd[len(bd)-1])
	}
	o.ranked, o.dims = true, dims
	return o
}

func (f *inference) reshape(n *pb.NodeProto, x, s *tinfo) *tinfo {
	o := &tinfo{elem: x.elem}
	if s == nil {
		return o
	}
	if s.val == nil {
		if s.rank() == 1 && s.dims[0].isKnown() {
			o.ranked = true
			for range s.dims[0].c {
				o.dims = append(o.dims, f.fresh())
			}
		}
		return o
	}
	allowZero := onnxgraph.AttrIntOr(n, "allowzero", 0) != 0
	o.ranked = true
	o.dims = make([]dim, len(s.val))
	infer := -1
	for i, d := range s.val {
		switch {
		case d.isKnown() && d.c == -1:
			infer = i
		case d.isKnown() && d.c == 0 && !allowZero:
			if x.ranked && i < len(x.dims) {
				o.dims[i] = x.dims[i]
			} else {
				o.dims[i] = f.fresh()
			}
		default:
			o.dims[i] = d
		}
	}
	if infer >= 0 {
		if x.ranked {
			rest := known(1)
			for i, d := range o.dims {
				if i != infer {
					rest = f.mul(rest, d)
				}
			}
			o.dims[infer] = f.div(f.prod(x.dims), rest)
		} else {
			o.dims[infer] = f.fresh()
		}
	}
	if x.val != nil {
		o.val = x.val
	}
	return o
}

func (f *inference) concat(n *pb.NodeProto) *tinfo {
	first := f.get(n.GetInput()[0])
	o := &tinfo{elem: first.elem}
	var vals []dim
	valsOK := true
	var dims []dim
	for k, name := range n.GetInput() {
		t := f.get(name)
		if t.val == nil {
			valsOK = false
		} else {
			vals = append(vals, t.val...)
		}
		if !t.ranked {
			dims = nil
			break
		}
		a, ok := normAxis(onnxgraph.AttrIntOr(n, "axis", 0), len(t.dims))
		if !ok {
			dims = nil
			break
		}
		if k == 0 {
			dims = append([]dim{}, t.dims...)
			continue
		}
		if len(t.dims) != len(dims) {
			dims = nil
			break
		}
		dims[a] = f.add(dims[a], t.dims[a])
	}
	if dims != nil {
		o.ranked, o.dims = true, dims
	}
	if valsOK && first.rank() == 1 {
		o.val = vals
	}
	return o
}

// splitSizes returns a Split node's piece sizes along its axis when they can be known.
func (f *inference) splitSizes(n *pb.NodeProto, x *tinfo) ([]dim, int, bool) {
	if !x.ranked {
		return nil, 0, false
	}
	a, ok := normAxis(onnxgraph.AttrIntOr(n, "axis", 0), len(x.dims))
	if !ok {
		return nil, 0, false
	}
	nout := len(n.GetOutput())
	var sizes []dim
	if s := onnxgraph.AttrIntsOr(n, "split", nil); s != nil {
		for _, v := range s {
			sizes = append(sizes, known(v))
		}
	} else if len(n.GetInput()) > 1 && n.GetInput()[1] != "" {
		v := f.get(n.GetInput()[1]).val
		if v == nil {
			return nil, a, false
		}
		sizes = v
	} else {
		d := x.dims[a]
		if !d.isKnown() {
			if nout == 1 {
				return []dim{d}, a, true
			}
			return nil, a, false
		}
		per := (d.c + int64(nout) - 1) / int64(nout) // opset 18 allows a smaller last piece
		for i := range nout {
			sizes = append(sizes, known(min(per, d.c-per*int64(i))))
		}
	}
	return sizes, a, len(sizes) == nout
}

func (f *inference) split(n *pb.NodeProto, x *tinfo) []*tinfo {
	sizes, a, ok := f.splitSizes(n, x)
	out := make([]*tinfo, len(n.GetOutput()))
	for i := range out {
		out[i] = &tinfo{elem: x.elem}
		if x.ranked {
			d := append([]dim{}, x.dims...)
			if ok {
				d[a] = sizes[i]
			} else if a < len(d) {
				d[a] = f.fresh()
			}
			out[i].ranked, out[i].dims = true, d
		}
	}
	return out
}

// sliceSpec is a Slice node's constant parameters normalised per axis.
type sliceSpec struct {
	axes, starts, ends, steps []int64
}

func (f *inference) sliceParams(n *pb.NodeProto, rank int) (sliceSpec, bool) {
	var s sliceSpec
	get := func(i int) ([]int64, bool, bool) {
		if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
			return nil, true, false
		}
		v, ok := f.get(n.GetInput()[i]).knownVals()
		return v, ok, true
	}
	var ok, present bool
	if s.starts, ok, _ = get(1); !ok || s.starts == nil {
		return s, false
	}
	if s.ends, ok, _ = get(2); !ok || len(s.ends) != len(s.starts) {
		return s, false
	}
	if s.axes, ok, present = get(3); !ok {
		return s, false
	}
	if !present {
		for i := range s.starts {
			s.axes = append(s.axes, int64(i))
		}
	}
	if s.steps, ok, present = get(4); !ok {
		return s, false
	}
	if !present {
		for range s.starts {
			s.steps = append(s.steps, 1)
		}
	}
	if len(s.axes) != len(s.starts) || len(s.steps) != len(s.starts) {
		return s, false
	}
	for i, a := range s.axes {
		na, ok := normAxis(a, rank)
		if !ok || s.steps[i] == 0 {
			return s, false
		}
		s.axes[i] = int64(na)
	}
	return s, true
}

// sliceBounds resolves one axis of a slice against its size: the clamped start, end, and output length. With
// an unknown size it succeeds only for the 'whole axis' form (start 0, end past any size, step 1).
func sliceBounds(start, end, step int64, d dim) (int64, int64, dim, bool) {
	if !d.isKnown() {
		if start == 0 && step == 1 && end >= math.MaxInt32 {
			return 0, -1, d, true
		}
		return 0, 0, dim{}, false
	}
	size := d.c
	if start < 0 {
		start += size
	}
	if end < 0 {
		end += size
	}
	if step > 0 {
		start, end = max(0, min(start, size)), max(0, min(end, size))
		return start, end, known(max(0, (end-start+step-1)/step)), true
	}
	start, end = max(-1, min(start, size-1)), max(-1, min(end, size-1))
	return start, end, known(max(0, (start-end-step-1)/(-step))), true
}

func (f *inference) slice(n *pb.NodeProto, x *tinfo) *tinfo {
	o := &tinfo{elem: x.elem}
	if !x.ranked {
		return o
	}
	o.ranked, o.dims = true, append([]dim{}, x.dims...)
	s, ok := f.sliceParams(n, len(x.dims))
	if !ok { // any axis may change
		for i := range o.dims {
			o.dims[i] = f.fresh()
		}
		return o
	}
	for i, a := range s.axes {
		_, _, d, ok := sliceBounds(s.starts[i], s.ends[i], s.steps[i], x.dims[a])
		if !ok {
			d = f.fresh()
		}
		o.dims[a] = d
	}
	if x.val != nil && len(x.dims) == 1 && len(s.axes) == 1 && s.steps[0] == 1 {
		st, en, _, ok := sliceBounds(s.starts[0], s.ends[0], 1, known(int64(len(x.val))))
		if ok && en >= st {
			o.val = append([]dim{}, x.val[st:en]...)
		}
	}
	return o
}

func (f *inference) gather(n *pb.NodeProto, x, idx *tinfo) *tinfo {
	o := &tinfo{elem: x.elem}
	if !x.ranked || idx == nil || !idx.ranked {
		return o
	}
	a, ok := normAxis(onnxgraph.AttrIntOr(n, "axis", 0), len(x.dims))
	if !ok {
		return o
	}
	o.ranked = true
	o.dims = append(append(append([]dim{}, x.dims[:a]...), idx.dims...), x.dims[a+1:]...)
	if x.val != nil && len(x.dims) == 1 {
		if iv, ok := idx.knownVals(); ok {
			for _, i := range iv {
				if i < 0 {
					i += int64(len(x.val))
				}
				if i < 0 || i >= int64(len(x.val)) {
					return o
				}
				o.val = append(o.val, x.val[i])
			}
		}
	}
	return o
}
