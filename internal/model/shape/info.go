package shape

import (
	"fmt"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// Info is what inference knows of one tensor. Val holds the values of small integer tensors (shapes, axes,
// indices), symbolically, so shape arithmetic (Shape -> Gather -> Concat -> Reshape) resolves.
type Info struct {
	Elem   pb.TensorProto_DataType // 0 when unknown
	Ranked bool                    // the rank, len(Dims), is known
	Dims   []Dim
	Val    []Dim // flat values, nil when not tracked
}

// Rank returns the tensor's rank, -1 when unknown.
func (t *Info) Rank() int {
	if t == nil || !t.Ranked {
		return -1
	}
	return len(t.Dims)
}

// Static reports whether every dim is a known number.
func (t *Info) Static() bool {
	if t == nil || !t.Ranked {
		return false
	}
	for _, d := range t.Dims {
		if !d.IsKnown() {
			return false
		}
	}
	return true
}

// Ints returns the dims' numbers; meaningful when Static.
func (t *Info) Ints() []int64 {
	out := make([]int64, len(t.Dims))
	for i, d := range t.Dims {
		out[i] = d.C
	}
	return out
}

// KnownVals returns Val as plain numbers when all are known.
func (t *Info) KnownVals() ([]int64, bool) {
	if t == nil || t.Val == nil {
		return nil, false
	}
	out := make([]int64, len(t.Val))
	for i, d := range t.Val {
		if !d.IsKnown() {
			return nil, false
		}
		out[i] = d.C
	}
	return out, true
}

// ValueInfo declares a graph input or output named name with t's element type (float when unknown) and
// shape. Dims inference could not pin down are left open, a lone input symbol stays a dim_param, so ONNX
// Runtime checks only what is certain and any batch size fits.
func (t *Info) ValueInfo(name string) *pb.ValueInfoProto {
	elem := t.Elem
	if elem == 0 {
		elem = pb.TensorProto_FLOAT
	}
	v := onnxgraph.UntypedOutput(name, elem)
	if t.Ranked {
		shape := &pb.TensorShapeProto{Dim: []*pb.TensorShapeProto_Dimension{}}
		for _, d := range t.Dims {
			dd := &pb.TensorShapeProto_Dimension{}
			switch {
			case d.IsKnown():
				dd.Value = &pb.TensorShapeProto_Dimension_DimValue{DimValue: d.C}
			case d.C == 1 && d.S != "" && d.S[0] != '?':
				dd.Value = &pb.TensorShapeProto_Dimension_DimParam{DimParam: d.S}
			}
			shape.Dim = append(shape.Dim, dd)
		}
		v.GetType().GetTensorType().Shape = shape
	}
	return v
}

// IsFloat reports whether e is a floating-point element type.
func IsFloat(e pb.TensorProto_DataType) bool {
	return e == pb.TensorProto_FLOAT || e == pb.TensorProto_DOUBLE || e == pb.TensorProto_FLOAT16 || e == pb.TensorProto_BFLOAT16
}

func isInt(e pb.TensorProto_DataType) bool {
	return e == pb.TensorProto_INT64 || e == pb.TensorProto_INT32
}

// maxValElems bounds the integer tensors whose values inference tracks.
const maxValElems = 64

// TensorInfo describes a constant tensor (an initializer or a Constant's value), with its values when it is
// a small integer tensor. A negative dim (a corrupt file) leaves it unranked rather than trusted.
func TensorInfo(t *pb.TensorProto) *Info {
	ti := &Info{Elem: pb.TensorProto_DataType(t.GetDataType()), Ranked: true, Dims: []Dim{}}
	for _, d := range t.GetDims() {
		if d < 0 {
			return &Info{Elem: ti.Elem}
		}
		ti.Dims = append(ti.Dims, Known(d))
	}
	if isInt(ti.Elem) && onnxgraph.NumElements(t.GetDims()) <= maxValElems {
		if v, err := onnxgraph.Int64s(t); err == nil && len(v) == onnxgraph.NumElements(t.GetDims()) {
			ti.Val = make([]Dim, len(v))
			for i, x := range v {
				ti.Val[i] = Known(x)
			}
		}
	}
	return ti
}

// Inference holds the inferred info of every tensor of a graph.
type Inference struct {
	info map[string]*Info
	nsym int
	// inputSyms are the symbols of the graph inputs' open dims: the batch, which Concrete sets.
	inputSyms map[string]bool
}

// Get returns what is known of the tensor name (an empty Info when nothing is).
func (f *Inference) Get(name string) *Info {
	if t, ok := f.info[name]; ok {
		return t
	}
	return &Info{}
}

// Set records t for a tensor added to the graph after inference ran (a backward graph's constants).
func (f *Inference) Set(name string, t *Info) { f.info[name] = t }

// Concrete returns t's shape for one batch size: each input symbol (the graph inputs' open dims) set to
// batch. ok is false when t is unranked or a dim depends on a size inference could not pin down.
func (f *Inference) Concrete(t *Info, batch int64) ([]int64, bool) {
	if t == nil || !t.Ranked {
		return nil, false
	}
	out := make([]int64, len(t.Dims))
	for i, d := range t.Dims {
		switch {
		case d.IsKnown() && d.C >= 0:
			out[i] = d.C
		case !d.IsKnown() && d.C > 0 && f.inputSyms[d.S]:
			out[i] = d.C * batch
		default:
			return nil, false
		}
	}
	return out, true
}

// Infer runs shape and type inference over g, whose nodes must be in topological order (as ONNX requires).
// It never fails: what it cannot work out stays unknown.
func Infer(g *pb.GraphProto) *Inference {
	f := &Inference{info: map[string]*Info{}, inputSyms: map[string]bool{}}
	inits := map[string]*pb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	for _, v := range g.GetInput() {
		t := f.fromValueInfo(v)
		if _, isInit := inits[v.GetName()]; !isInit {
			for _, d := range t.Dims {
				if !d.IsKnown() {
					f.inputSyms[d.S] = true
				}
			}
		}
		f.info[v.GetName()] = t
	}
	for _, t := range g.GetInitializer() {
		in, isInput := f.info[t.GetName()]
		switch {
		case !isInput:
			f.info[t.GetName()] = TensorInfo(t)
		case !in.Ranked:
			// An initializer that is also an input is only a default: its dims stand in for an open declaration,
			// its values are not trusted.
			ti := TensorInfo(t)
			ti.Val = nil
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
			t := &Info{}
			if i < len(outs) && outs[i] != nil {
				t = outs[i]
			}
			if h, ok := hints[o]; ok {
				ht := f.fromValueInfo(h)
				if t.Elem == 0 {
					t.Elem = ht.Elem
				}
				if !t.Ranked && ht.Ranked {
					t.Ranked, t.Dims = true, ht.Dims
				}
			}
			f.info[o] = t
		}
	}
	return f
}

// fromValueInfo reads a declared type: dim_params become symbols, open dims fresh ones.
func (f *Inference) fromValueInfo(v *pb.ValueInfoProto) *Info {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return &Info{}
	}
	t := &Info{Elem: pb.TensorProto_DataType(tt.GetElemType())}
	if tt.Shape == nil {
		return t
	}
	t.Ranked, t.Dims = true, []Dim{}
	for _, d := range tt.GetShape().GetDim() {
		if p := d.GetDimParam(); p != "" {
			t.Dims = append(t.Dims, Dim{C: 1, S: p})
		} else if _, ok := d.GetValue().(*pb.TensorShapeProto_Dimension_DimValue); ok && d.GetDimValue() >= 0 {
			t.Dims = append(t.Dims, Known(d.GetDimValue()))
		} else {
			t.Dims = append(t.Dims, f.fresh())
		}
	}
	return t
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

// String writes t as float32[batch,64,8,8] for error messages and tests.
func (t *Info) String() string {
	if t == nil || !t.Ranked {
		return fmt.Sprintf("%v[?]", t.elemName())
	}
	return fmt.Sprintf("%v%v", t.elemName(), t.Dims)
}

func (t *Info) elemName() string {
	if t == nil || t.Elem == 0 {
		return "?"
	}
	return t.Elem.String()
}
