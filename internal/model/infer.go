package model

import (
	"fmt"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// tinfo is what static inference knows of one tensor: its element type, its shape for a fixed batch (nil
// when unknown) and, for small integer tensors (shapes, axes), its value.
type tinfo struct {
	dtype pb.TensorProto_DataType
	shape []int64
	known bool // shape is known
	value []int64
}

// inferShapes computes every tensor's type and shape for the given batch size without running the graph, so
// that module listings and hook plans need no ONNX Runtime. Ops it does not know leave their outputs (and
// what depends on them) unknown; a test checks it against ONNX Runtime on every reference net.
func inferShapes(g *pb.GraphProto, batch int64) map[string]*tinfo {
	ti := map[string]*tinfo{}
	for _, t := range g.GetInitializer() {
		ti[t.GetName()] = constInfo(t)
	}
	for _, in := range g.GetInput() {
		if _, isInit := ti[in.GetName()]; isInit {
			continue
		}
		tt := in.GetType().GetTensorType()
		info := &tinfo{dtype: pb.TensorProto_DataType(tt.GetElemType()), known: tt.GetShape() != nil}
		for _, d := range tt.GetShape().GetDim() {
			if d.GetDimParam() != "" || d.GetDimValue() <= 0 {
				info.shape = append(info.shape, batch)
			} else {
				info.shape = append(info.shape, d.GetDimValue())
			}
		}
		ti[in.GetName()] = info
	}
	for _, n := range g.GetNode() {
		outs := inferNode(n, ti)
		for i, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if i < len(outs) && outs[i] != nil {
				ti[o] = outs[i]
			} else {
				ti[o] = &tinfo{dtype: guessType(n, ti)}
			}
		}
	}
	return ti
}

func constInfo(t *pb.TensorProto) *tinfo {
	info := &tinfo{dtype: pb.TensorProto_DataType(t.GetDataType()), shape: append([]int64{}, t.GetDims()...), known: true}
	for _, d := range t.GetDims() {
		if d < 0 {
			info.known = false // a corrupt file; leave the tensor unknown rather than trust it
			return info
		}
	}
	n := onnxgraph.NumElements(t.GetDims())
	if (info.dtype == pb.TensorProto_INT64 || info.dtype == pb.TensorProto_INT32) && n <= 64 &&
		(len(t.GetRawData()) > 0 || len(t.GetInt64Data())+len(t.GetInt32Data()) == n) {
		if v, err := onnxgraph.Int64s(t); err == nil && len(v) == n {
			info.value = v
		}
	}
	return info
}

// guessType gives an output's element type when its shape could not be inferred.
func guessType(n *pb.NodeProto, ti map[string]*tinfo) pb.TensorProto_DataType {
	switch n.GetOpType() {
	case "Shape", "Size", "ArgMax", "ArgMin", "NonZero", "TopK":
		return pb.TensorProto_INT64
	case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf":
		return pb.TensorProto_BOOL
	case "Cast":
		return pb.TensorProto_DataType(onnxgraph.AttrIntOr(n, "to", int64(pb.TensorProto_FLOAT)))
	case "Where":
		if len(n.GetInput()) > 1 {
			if t := ti[n.GetInput()[1]]; t != nil {
				return t.dtype
			}
		}
	}
	if len(n.GetInput()) > 0 {
		if t := ti[n.GetInput()[0]]; t != nil && t.dtype != pb.TensorProto_UNDEFINED {
			return t.dtype
		}
	}
	return pb.TensorProto_FLOAT
}

var unaryOps = map[string]bool{
	"Relu": true, "Sigmoid": true, "Tanh": true, "Softplus": true, "Selu": true, "Elu": true, "LeakyRelu": true,
	"Exp": true, "Log": true, "Sqrt": true, "Neg": true, "Abs": true, "Erf": true, "Softmax": true,
	"LogSoftmax": true, "Identity": true, "Mish": true, "Gelu": true, "HardSigmoid": true, "HardSwish": true,
	"Reciprocal": true, "Floor": true, "Ceil": true, "Sign": true, "Not": true, "Dropout": true, "Clip": true,
	"Cast": true, "BatchNormalization": true, "InstanceNormalization": true, "Round": true, "Sin": true,
	"Cos": true, "PRelu": true, "ThresholdedRelu": true, "Softsign": true, "IsNaN": true, "IsInf": true,
}

var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true, "Min": true, "Sum": true,
	"Mean": true, "Equal": true, "Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true,
	"And": true, "Or": true, "Xor": true, "Where": true, "Mod": true,
}

// inferNode returns the infos of n's outputs, nil entries where unknown.
func inferNode(n *pb.NodeProto, ti map[string]*tinfo) []*tinfo {
	in := make([]*tinfo, len(n.GetInput()))
	for i, name := range n.GetInput() {
		if name != "" {
			in[i] = ti[name]
		}
	}
	shapeOf := func(i int) ([]int64, bool) {
		if i >= len(in) || in[i] == nil || !in[i].known {
			return nil, false
		}
		return in[i].shape, true
	}
	valueOf := func(i int) ([]int64, bool) {
		if i >= len(in) || in[i] == nil || in[i].value == nil {
			return nil, false
		}
		return in[i].value, true
	}
	out := func(shape []int64) []*tinfo {
		return []*tinfo{{dtype: guessType(n, ti), shape: shape, known: true}}
	}
	op := n.GetOpType()
	switch {
	case op == "Constant":
		if a := onnxgraph.Attr(n, "value"); a != nil && a.GetT() != nil {
			return []*tinfo{constInfo(a.GetT())}
		}
		if a := onnxgraph.Attr(n, "value_ints"); a != nil {
			return []*tinfo{{dtype: pb.TensorProto_INT64, shape: []int64{int64(len(a.GetInts()))}, known: true, value: a.GetInts()}}
		}
		if a := onnxgraph.Attr(n, "value_int"); a != nil {
			return []*tinfo{{dtype: pb.TensorProto_INT64, shape: []int64{}, known: true, value: []int64{a.GetI()}}}
		}
		if a := onnxgraph.Attr(n, "value_float"); a != nil {
			return []*tinfo{{dtype: pb.TensorProto_FLOAT, shape: []int64{}, known: true}}
		}
		if a := onnxgraph.Attr(n, "value_floats"); a != nil {
			return []*tinfo{{dtype: pb.TensorProto_FLOAT, shape: []int64{int64(len(a.GetFloats()))}, known: true}}
		}
		return nil
	case unaryOps[op]:
		s, ok := shapeOf(0)
		if !ok {
			return nil
		}
		res := out(s)
		if op == "Cast" {
			if v, ok := valueOf(0); ok {
				res[0].value = v
			}
		}
		return res
	case op == "LayerNormalization":
		s, ok := shapeOf(0)
		if !ok {
			return nil
		}
		axis := normAxis(onnxgraph.AttrIntOr(n, "axis", -1), len(s))
		stat := append([]int64{}, s...)
		for i := axis; i >= 0 && i < len(stat); i++ {
			stat[i] = 1
		}
		res := out(s)
		res = append(res, &tinfo{dtype: pb.TensorProto_FLOAT, shape: stat, known: true}, &tinfo{dtype: pb.TensorProto_FLOAT, shape: stat, known: true})
		return res
	case broadcastOps[op]:
		var s []int64 // Where's condition broadcasts like the values
		for i := range in {
			si, ok := shapeOf(i)
			if !ok {
				return nil
			}
			if s, ok = broadcast(s, si); !ok {
				return nil
			}
		}
		return out(s)
	case op == "MatMul":
		a, ok1 := shapeOf(0)
		b, ok2 := shapeOf(1)
		if !ok1 || !ok2 {
			return nil
		}
		s, ok := matmulShape(a, b)
		if !ok {
			return nil
		}
		return out(s)
	case op == "Gemm":
		a, ok1 := shapeOf(0)
		b, ok2 := shapeOf(1)
		if !ok1 || !ok2 || len(a) != 2 || len(b) != 2 {
			return nil
		}
		m, nn := a[0], b[1]
		if onnxgraph.AttrIntOr(n, "transA", 0) != 0 {
			m = a[1]
		}
		if onnxgraph.AttrIntOr(n, "transB", 0) != 0 {
			nn = b[0]
		}
		return out([]int64{m, nn})
	case op == "Conv":
		x, ok1 := shapeOf(0)
		w, ok2 := shapeOf(1)
		if !ok1 || !ok2 || len(x) < 3 || len(w) != len(x) {
			return nil
		}
		s, ok := convShape(n, x, w)
		if !ok {
			return nil
		}
		return out(s)
	case op == "GlobalAveragePool" || op == "GlobalMaxPool":
		x, ok := shapeOf(0)
		if !ok || len(x) < 2 {
			return nil
		}
		s := append([]int64{}, x[:2]...)
		for range x[2:] {
			s = append(s, 1)
		}
		return out(s)
	case op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin" || op == "ReduceProd" ||
		op == "ReduceL2" || op == "ReduceL1" || op == "ReduceSumSquare" || op == "ReduceLogSumExp":
		x, ok := shapeOf(0)
		if !ok {
			return nil
		}
		axes := onnxgraph.AttrIntsOr(n, "axes", nil)
		if len(n.GetInput()) > 1 && n.GetInput()[1] != "" {
			if axes, ok = valueOf(1); !ok {
				return nil
			}
		}
		keep := onnxgraph.AttrIntOr(n, "keepdims", 1) != 0
		if len(axes) == 0 && onnxgraph.AttrIntOr(n, "noop_with_empty_axes", 0) != 0 {
			return out(x)
		}
		reduced := map[int]bool{}
		for _, a := range axes {
			reduced[normAxis(a, len(x))] = true
		}
		var s []int64
		for i, d := range x {
			switch {
			case len(axes) == 0 || reduced[i]:
				if keep {
					s = append(s, 1)
				}
			default:
				s = append(s, d)
			}
		}
		if s == nil {
			s = []int64{}
		}
		return out(s)
	case op == "Reshape":
		x, ok1 := shapeOf(0)
		target, ok2 := valueOf(1)
		if !ok1 || !ok2 {
			return nil
		}
		s, ok := reshapeShape(x, target, onnxgraph.AttrIntOr(n, "allowzero", 0) != 0)
		if !ok {
			return nil
		}
		res := out(s)
		if v, ok := valueOf(0); ok {
			res[0].value = v
		}
		return res
	case op == "Flatten":
		x, ok := shapeOf(0)
		if !ok {
			return nil
		}
		axis := normAxis(onnxgraph.AttrIntOr(n, "axis", 1), len(x)+1)
		a, b := int64(1), int64(1)
		for i, d := range x {
			if i < axis {
				a *= d
			} else {
				b *= d
			}
		}
		return out([]int64{a, b})
	case op == "Split":
		x, ok := shapeOf(0)
		if !ok {
			return nil
		}
		axis := normAxis(onnxgraph.AttrIntOr(n, "axis", 0), len(x))
		if axis < 0 || axis >= len(x) {
			return nil
		}
		parts := onnxgraph.AttrIntsOr(n, "split", nil)
		if len(n.GetInput()) > 1 && n.GetInput()[1] != "" {
			if parts, ok = valueOf(1); !ok {
				return nil
			}
		}
		k := int64(len(n.GetOutput()))
		if k == 0 {
			return nil
		}
		if len(parts) == 0 {
			size := (x[axis] + k - 1) / k
			for i := int64(0); i < k; i++ {
				p := size
				if rest := x[axis] - i*size; rest < size {
					p = rest
				}
				parts = append(parts, p)
			}
		}
		var res []*tinfo
		for _, p := range parts {
			s := append([]int64{}, x...)
			s[axis] = p
			res = append(res, &tinfo{dtype: in[0].dtype, shape: s, known: true})
		}
		return res
	case op == "Gather":
		x, ok1 := shapeOf(0)
		idx, ok2 := shapeOf(1)
		if !ok1 || !ok2 {
			return nil
		}
		axis := normAxis(onnxgraph.AttrIntOr(n, "axis", 0), len(x))
		if axis < 0 || axis >= len(x) {
			return nil
		}
		s := append(append(append([]int64{}, x[:axis]...), idx...), x[axis+1:]...)
		res := out(s)
		if v, ok := valueOf(0); ok && len(x) == 1 {
			if iv, ok := valueOf(1); ok {
				var g []int64
				for _, i := range iv {
					if i < 0 {
						i += int64(len(v))
					}
					if i < 0 || i >= int64(len(v)) {
						return res
					}
					g = append(g, v[i])
				}
				res[0].value = g
			}
		}
		return res
	case op == "Transpose":
		x, ok := shapeOf(0)
		if !ok {
			return nil
		}
		perm := onnxgraph.AttrIntsOr(n, "perm", nil)
		if perm == nil {
			for i := len(x) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != len(x) {
			return nil
		}
		s := make([]int64, len(x))
		for i, p := range perm {
			if p < 0 || int(p) >= len(x) {
				return nil
			}
			s[i] = x[p]
		}
		return out(s)
	case op == "Slice":
		return inferSlice(n, in, shapeOf, valueOf, out)
	case op == "Concat":
		var s []int64
		var vals []int64
		allVals := true
		axis := onnxgraph.AttrIntOr(n, "axis", 0)
		for i := range in {
			si, ok := shapeOf(i)
			if !ok {
				return nil
			}
			a := normAxis(axis, len(si))
			if a < 0 || a >= len(si) {
				return nil
			}
			if s == nil {
				s = append([]int64{}, si...)
			} else {
				if len(si) != len(s) {
					return nil
				}
				s[a] += si[a]
			}
			if v, ok := valueOf(i); ok && len(si) == 1 {
				vals = append(vals, v...)
			} else {
				allVals = false
			}
		}
		res := out(s)
		if allVals {
			res[0].value = vals
		}
		return res
	case op == "Shape":
		x, ok := shapeOf(0)
		if !ok {
			return nil
		}
		start := normAxis(onnxgraph.AttrIntOr(n, "start", 0), len(x))
		end := len(x)
		if a := onnxgraph.Attr(n, "end"); a != nil {
			end = normAxis(a.GetI(), len(x))
		}
		start, end = clamp(start, 0, len(x)), clamp(end, 0, len(x))
		if end < start {
			end = start
		}
		v := append([]int64{}, x[start:end]...)
		return []*tinfo{{dtype: pb.TensorProto_INT64, shape: []int64{int64(len(v))}, known: true, value: v}}
	case op == "Expand":
		x, ok1 := shapeOf(0)
		target, ok2 := valueOf(1)
		if !ok1 || !ok2 {
			return nil
		}
		s, ok := broadcast(x, target)
		if !ok {
			return nil
		}
		return out(s)
	case op == "Tile":
		x, ok1 := shapeOf(0)
		reps, ok2 := valueOf(1)
		if !ok1 || !ok2 || len(reps) != len(x) {
			return nil
		}
		s := make([]int64, len(x))
		for i := range x {
			s[i] = x[i] * reps[i]
		}
		return out(s)
	case op == "Unsqueeze" || op == "Squeeze":
		x, ok := shapeOf(0)
		if !ok {
			return nil
		}
		axes := onnxgraph.AttrIntsOr(n, "axes", nil)
		if len(n.GetInput()) > 1 && n.GetInput()[1] != "" {
			if axes, ok = valueOf(1); !ok {
				return nil
			}
		}
		var s []int64
		if op == "Unsqueeze" {
			rank := len(x) + len(axes)
			set := map[int]bool{}
			for _, a := range axes {
				set[normAxis(a, rank)] = true
			}
			j := 0
			for i := 0; i < rank; i++ {
				if set[i] {
					s = append(s, 1)
				} else if j < len(x) {
					s = append(s, x[j])
					j++
				}
			}
		} else {
			set := map[int]bool{}
			for _, a := range axes {
				set[normAxis(a, len(x))] = true
			}
			for i, d := range x {
				if (len(axes) == 0 && d == 1) || set[i] {
					continue
				}
				s = append(s, d)
			}
		}
		if s == nil {
			s = []int64{}
		}
		res := out(s)
		if v, ok := valueOf(0); ok {
			res[0].value = v
		}
		return res
	case op == "ConstantOfShape":
		target, ok := valueOf(0)
		if !ok {
			return nil
		}
		dt := pb.TensorProto_FLOAT
		if a := onnxgraph.Attr(n, "value"); a != nil && a.GetT() != nil {
			dt = pb.TensorProto_DataType(a.GetT().GetDataType())
		}
		return []*tinfo{{dtype: dt, shape: append([]int64{}, target...), known: true}}
	}
	return nil
}

func inferSlice(n *pb.NodeProto, in []*tinfo, shapeOf func(int) ([]int64, bool), valueOf func(int) ([]int64, bool),
	out func([]int64) []*tinfo) []*tinfo {
	x, ok := shapeOf(0)
	if !ok {
		return nil
	}
	starts, ok1 := valueOf(1)
	ends, ok2 := valueOf(2)
	if !ok1 || !ok2 || len(starts) != len(ends) {
		return nil
	}
	axes := make([]int64, len(starts))
	for i := range axes {
		axes[i] = int64(i)
	}
	if len(in) > 3 && in[3] != nil {
		if axes, ok = valueOf(3); !ok || len(axes) != len(starts) {
			return nil
		}
	}
	steps := make([]int64, len(starts))
	for i := range steps {
		steps[i] = 1
	}
	if len(in) > 4 && in[4] != nil {
		if steps, ok = valueOf(4); !ok || len(steps) != len(starts) {
			return nil
		}
	}
	s := append([]int64{}, x...)
	type rng struct{ start, end, step int64 }
	ranges := map[int]rng{}
	for i := range starts {
		a := normAxis(axes[i], len(x))
		if a < 0 || a >= len(x) || steps[i] == 0 {
			return nil
		}
		d := x[a]
		st, en, step := starts[i], ends[i], steps[i]
		if st < 0 {
			st += d
		}
		if en < 0 {
			en += d
		}
		var cnt int64
		if step > 0 {
			st, en = clamp64(st, 0, d), clamp64(en, 0, d)
			if en > st {
				cnt = (en - st + step - 1) / step
			}
		} else {
			st, en = clamp64(st, 0, d-1), clamp64(en, -1, d-1)
			if st > en {
				cnt = (st - en - step - 1) / -step
			}
		}
		s[a] = cnt
		ranges[a] = rng{st, en, step}
	}
	res := out(s)
	if v, ok := valueOf(0); ok && len(x) == 1 && int64(len(v)) == x[0] {
		if r, ok := ranges[0]; ok {
			var sv []int64
			for i := int64(0); i < s[0]; i++ {
				sv = append(sv, v[r.start+i*r.step])
			}
			res[0].value = sv
		}
	}
	return res
}

func convShape(n *pb.NodeProto, x, w []int64) ([]int64, bool) {
	spatial := len(x) - 2
	kernel := onnxgraph.AttrIntsOr(n, "kernel_shape", w[2:])
	strides := onnxgraph.AttrIntsOr(n, "strides", nil)
	dil := onnxgraph.AttrIntsOr(n, "dilations", nil)
	pads := onnxgraph.AttrIntsOr(n, "pads", nil)
	autoPad := "NOTSET"
	if a := onnxgraph.Attr(n, "auto_pad"); a != nil {
		autoPad = string(a.GetS())
	}
	if len(kernel) != spatial {
		return nil, false
	}
	s := []int64{x[0], w[0]}
	for i := 0; i < spatial; i++ {
		st, d := int64(1), int64(1)
		if i < len(strides) {
			st = strides[i]
		}
		if i < len(dil) {
			d = dil[i]
		}
		var p int64
		if len(pads) == 2*spatial {
			p = pads[i] + pads[i+spatial]
		}
		in := x[2+i]
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			s = append(s, (in+st-1)/st)
			continue
		case "VALID":
			p = 0
		}
		ek := d*(kernel[i]-1) + 1
		s = append(s, (in+p-ek)/st+1)
	}
	return s, true
}

func reshapeShape(x, target []int64, allowZero bool) ([]int64, bool) {
	total := int64(1)
	for _, d := range x {
		total *= d
	}
	s := make([]int64, len(target))
	infer := -1
	prod := int64(1)
	for i, d := range target {
		switch {
		case d == 0 && !allowZero:
			if i >= len(x) {
				return nil, false
			}
			s[i] = x[i]
		case d == -1:
			if infer >= 0 {
				return nil, false
			}
			infer = i
			continue
		default:
			s[i] = d
		}
		prod *= s[i]
	}
	if infer >= 0 {
		if prod == 0 || total%prod != 0 {
			return nil, false
		}
		s[infer] = total / prod
	} else if prod != total {
		return nil, false
	}
	return s, true
}

func matmulShape(a, b []int64) ([]int64, bool) {
	if len(a) == 0 || len(b) == 0 {
		return nil, false
	}
	a1, b1 := len(a) == 1, len(b) == 1
	if a1 {
		a = []int64{1, a[0]}
	}
	if b1 {
		b = []int64{b[0], 1}
	}
	if a[len(a)-1] != b[len(b)-2] {
		return nil, false
	}
	batch, ok := broadcast(a[:len(a)-2], b[:len(b)-2])
	if !ok {
		return nil, false
	}
	s := append([]int64{}, batch...)
	if !a1 {
		s = append(s, a[len(a)-2])
	}
	if !b1 {
		s = append(s, b[len(b)-1])
	}
	return s, true
}

// broadcast applies numpy broadcasting; a nil a is the identity.
func broadcast(a, b []int64) ([]int64, bool) {
	if a == nil {
		return append([]int64{}, b...), true
	}
	n := max(len(a), len(b))
	s := make([]int64, n)
	for i := 0; i < n; i++ {
		da, db := int64(1), int64(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			s[i] = da
		case da == 1:
			s[i] = db
		default:
			return nil, false
		}
	}
	return s, true
}

func normAxis(a int64, rank int) int {
	if a < 0 {
		a += int64(rank)
	}
	return int(a)
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

func clamp64(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

// dtypeName names an element type the way users read it.
func dtypeName(t pb.TensorProto_DataType) string {
	switch t {
	case pb.TensorProto_FLOAT:
		return "float32"
	case pb.TensorProto_FLOAT16:
		return "float16"
	case pb.TensorProto_DOUBLE:
		return "float64"
	case pb.TensorProto_INT64:
		return "int64"
	case pb.TensorProto_INT32:
		return "int32"
	case pb.TensorProto_BOOL:
		return "bool"
	}
	return fmt.Sprintf("type%d", int32(t))
}
