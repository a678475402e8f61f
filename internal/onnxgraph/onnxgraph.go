// Package onnxgraph holds small helpers over the generated ONNX protobuf types: reading and writing model
// files, building nodes and attributes, converting tensors, and indexing a graph. It knows nothing of chess or
// of ONNX Runtime; internal/model and its rewrites (hooks, backward graphs) are built on it.
package onnxgraph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/proto"

	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// ErrNotONNX reports bytes that do not decode as an ONNX ModelProto with a graph.
var ErrNotONNX = errors.New("not an onnx model")

// Read loads an ONNX model file.
func Read(path string) (*pb.ModelProto, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: read %s: %w", path, err)
	}
	m, err := Unmarshal(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %s: %w", path, err)
	}
	return m, raw, nil
}

// Unmarshal decodes a serialized ModelProto and checks it has a graph.
func Unmarshal(raw []byte) (*pb.ModelProto, error) {
	m := &pb.ModelProto{}
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	if m.GetGraph() == nil || len(m.GetGraph().GetNode()) == 0 {
		return nil, fmt.Errorf("%w: no graph nodes", ErrNotONNX)
	}
	return m, nil
}

// Marshal serializes a model deterministically, so equal graphs give equal bytes (and cache keys).
func Marshal(m *pb.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: marshal: %w", err)
	}
	return b, nil
}

// Clone deep-copies a model so rewrites never touch the original.
func Clone(m *pb.ModelProto) *pb.ModelProto { return proto.Clone(m).(*pb.ModelProto) }

// Node builds a NodeProto.
func Node(op, name string, inputs, outputs []string, attrs ...*pb.AttributeProto) *pb.NodeProto {
	return &pb.NodeProto{OpType: proto.String(op), Name: proto.String(name), Input: inputs, Output: outputs, Attribute: attrs}
}

// AttrInt builds an INT attribute.
func AttrInt(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrInts builds an INTS attribute.
func AttrInts(name string, v ...int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INTS.Enum(), Ints: v}
}

// AttrFloat builds a FLOAT attribute.
func AttrFloat(name string, v float32) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrString builds a STRING attribute.
func AttrString(name, v string) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// AttrTensor builds a TENSOR attribute (as used by Constant).
func AttrTensor(name string, t *pb.TensorProto) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_TENSOR.Enum(), T: t}
}

// Attr returns the node's attribute called name, or nil.
func Attr(n *pb.NodeProto, name string) *pb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrIntOr returns an INT attribute's value or def when absent.
func AttrIntOr(n *pb.NodeProto, name string, def int64) int64 {
	if a := Attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// AttrIntsOr returns an INTS attribute's value or def when absent.
func AttrIntsOr(n *pb.NodeProto, name string, def []int64) []int64 {
	if a := Attr(n, name); a != nil {
		return a.GetInts()
	}
	return def
}

// AttrFloatOr returns a FLOAT attribute's value or def when absent.
func AttrFloatOr(n *pb.NodeProto, name string, def float32) float32 {
	if a := Attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// Float32Tensor builds a FLOAT initializer stored as raw little-endian bytes (the compact form ORT reads fastest).
func Float32Tensor(name string, dims []int64, data []float32) *pb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &pb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(pb.TensorProto_FLOAT)), RawData: raw}
}

// Int64Tensor builds an INT64 initializer (shapes, axes, indices).
func Int64Tensor(name string, dims []int64, data []int64) *pb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &pb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(pb.TensorProto_INT64)), RawData: raw}
}

// Float32s decodes a FLOAT, FLOAT16 or DOUBLE tensor's values as float32.
func Float32s(t *pb.TensorProto) ([]float32, error) {
	n := NumElements(t.GetDims())
	switch pb.TensorProto_DataType(t.GetDataType()) {
	case pb.TensorProto_FLOAT:
		if raw := t.GetRawData(); len(raw) > 0 {
			if len(raw) != 4*n {
				return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes for %d floats", t.GetName(), len(raw), n)
			}
			out := make([]float32, n)
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			return out, nil
		}
		if len(t.GetFloatData()) != n {
			return nil, fmt.Errorf("onnx: tensor %q: %d floats for shape %v", t.GetName(), len(t.GetFloatData()), t.GetDims())
		}
		return append([]float32(nil), t.GetFloatData()...), nil
	case pb.TensorProto_DOUBLE:
		out := make([]float32, n)
		if raw := t.GetRawData(); len(raw) > 0 {
			if len(raw) != 8*n {
				return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes for %d doubles", t.GetName(), len(raw), n)
			}
			for i := range out {
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
			return out, nil
		}
		for i, v := range t.GetDoubleData() {
			out[i] = float32(v)
		}
		return out, nil
	case pb.TensorProto_FLOAT16:
		out := make([]float32, n)
		if raw := t.GetRawData(); len(raw) > 0 {
			if len(raw) != 2*n {
				return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes for %d halfs", t.GetName(), len(raw), n)
			}
			for i := range out {
				out[i] = HalfToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			return out, nil
		}
		for i, v := range t.GetInt32Data() {
			out[i] = HalfToFloat32(uint16(v))
		}
		return out, nil
	}
	return nil, fmt.Errorf("onnx: tensor %q: data type %d is not a float type", t.GetName(), t.GetDataType())
}

// Int64s decodes an INT64 or INT32 tensor's values.
func Int64s(t *pb.TensorProto) ([]int64, error) {
	n := NumElements(t.GetDims())
	switch pb.TensorProto_DataType(t.GetDataType()) {
	case pb.TensorProto_INT64:
		if raw := t.GetRawData(); len(raw) > 0 {
			if len(raw) != 8*n {
				return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes for %d int64s", t.GetName(), len(raw), n)
			}
			out := make([]int64, n)
			for i := range out {
				out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
			return out, nil
		}
		return append([]int64(nil), t.GetInt64Data()...), nil
	case pb.TensorProto_INT32:
		out := make([]int64, n)
		if raw := t.GetRawData(); len(raw) > 0 {
			if len(raw) != 4*n {
				return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes for %d int32s", t.GetName(), len(raw), n)
			}
			for i := range out {
				out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			}
			return out, nil
		}
		for i, v := range t.GetInt32Data() {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("onnx: tensor %q: data type %d is not an integer type", t.GetName(), t.GetDataType())
}

// HalfToFloat32 converts an IEEE 754 half-precision value.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// NumElements is the product of dims (1 for a scalar).
func NumElements(dims []int64) int {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return n
}

// ValueInfo builds a tensor ValueInfoProto; a dim < 0 becomes a symbolic dimension named "batch".
func ValueInfo(name string, elem pb.TensorProto_DataType, dims ...int64) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		if d < 0 {
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}})
		} else {
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &pb.ValueInfoProto{
		Name: proto.String(name),
		Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{ElemType: proto.Int32(int32(elem)), Shape: shape}}},
	}
}

// UntypedOutput builds a graph output with only an element type, leaving the shape for the runtime to infer.
func UntypedOutput(name string, elem pb.TensorProto_DataType) *pb.ValueInfoProto {
	return &pb.ValueInfoProto{
		Name: proto.String(name),
		Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{ElemType: proto.Int32(int32(elem))}}},
	}
}

// Index maps a graph's tensor names to what produces and consumes them.
type Index struct {
	Producer     map[string]*pb.NodeProto   // tensor -> node that outputs it
	Consumers    map[string][]*pb.NodeProto // tensor -> nodes that read it
	Initializers map[string]*pb.TensorProto // name -> initializer (Constant nodes included)
	Inputs       map[string]*pb.ValueInfoProto
	Outputs      map[string]*pb.ValueInfoProto
}

// NewIndex indexes g. Constant nodes' values are listed with the initializers, since rewrites treat both as fixed.
func NewIndex(g *pb.GraphProto) *Index {
	ix := &Index{
		Producer:     map[string]*pb.NodeProto{},
		Consumers:    map[string][]*pb.NodeProto{},
		Initializers: map[string]*pb.TensorProto{},
		Inputs:       map[string]*pb.ValueInfoProto{},
		Outputs:      map[string]*pb.ValueInfoProto{},
	}
	for _, t := range g.GetInitializer() {
		ix.Initializers[t.GetName()] = t
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			ix.Producer[o] = n
		}
		for _, in := range n.GetInput() {
			if in != "" {
				ix.Consumers[in] = append(ix.Consumers[in], n)
			}
		}
		if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 {
			if a := Attr(n, "value"); a != nil && a.GetT() != nil {
				ix.Initializers[n.GetOutput()[0]] = a.GetT()
			}
		}
	}
	for _, v := range g.GetInput() {
		ix.Inputs[v.GetName()] = v
	}
	for _, v := range g.GetOutput() {
		ix.Outputs[v.GetName()] = v
	}
	return ix
}

// OpsetVersion returns the model's default-domain opset version (0 when absent).
func OpsetVersion(m *pb.ModelProto) int64 {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}

// NewModel wraps a graph in a ModelProto with the given default-domain opset (IR version 8 suits opset 17).
func NewModel(g *pb.GraphProto, opset int64) *pb.ModelProto {
	return &pb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("lczerolens"),
		OpsetImport:  []*pb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		Graph:        g,
	}
}

// Float64Tensor builds a DOUBLE initializer stored as raw little-endian bytes.
func Float64Tensor(name string, dims []int64, data []float64) *pb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	return &pb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(pb.TensorProto_DOUBLE)), RawData: raw}
}

// Float64s decodes a FLOAT, FLOAT16 or DOUBLE tensor's values as float64, keeping doubles exact.
func Float64s(t *pb.TensorProto) ([]float64, error) {
	if pb.TensorProto_DataType(t.GetDataType()) != pb.TensorProto_DOUBLE {
		f, err := Float32s(t)
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out, nil
	}
	n := NumElements(t.GetDims())
	if raw := t.GetRawData(); len(raw) > 0 {
		if len(raw) != 8*n {
			return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes for %d doubles", t.GetName(), len(raw), n)
		}
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	if len(t.GetDoubleData()) != n {
		return nil, fmt.Errorf("onnx: tensor %q: %d doubles for shape %v", t.GetName(), len(t.GetDoubleData()), t.GetDims())
	}
	return append([]float64(nil), t.GetDoubleData()...), nil
}

// FloatTensor builds a FLOAT or DOUBLE initializer (chosen by elem) from float64 values.
func FloatTensor(name string, elem pb.TensorProto_DataType, dims []int64, data []float64) (*pb.TensorProto, error) {
	switch elem {
	case pb.TensorProto_DOUBLE:
		return Float64Tensor(name, dims, data), nil
	case pb.TensorProto_FLOAT:
		f := make([]float32, len(data))
		for i, v := range data {
			f[i] = float32(v)
		}
		return Float32Tensor(name, dims, f), nil
	}
	return nil, fmt.Errorf("onnx: tensor %q: element type %v is not float or double", name, elem)
}

// Int32Tensor builds an INT32 initializer (gather indices, slice bounds) stored as raw little-endian bytes.
func Int32Tensor(name string, dims []int64, data []int32) *pb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(v))
	}
	return &pb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(pb.TensorProto_INT32)), RawData: raw}
}
