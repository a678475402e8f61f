package model

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// graphHashTag starts every canonical encoding, so a change of the encoding changes every hash.
const graphHashTag = "lczerolens-graph/1"

// GraphHash returns the hex sha256 of m's computation: opsets, the graph's inputs (names, element types,
// ranks and fixed dimensions), outputs, nodes (op, domain, inputs, outputs, attributes) and initializers
// (names, types, dimensions and values). It leaves out what does not change what the network computes or how
// its modules are named: producer, doc strings, node names, value_info annotations, symbolic dimension names,
// the order of nodes and initializers, and whether a tensor's values are stored as raw bytes or typed fields.
// An lc0 weight file converted here and the ONNX file lc0's leela2onnx made from it thus hash the same, and
// probes or dictionaries trained on one apply to the other.
func GraphHash(m *pb.ModelProto) string {
	var e canon
	e.str(graphHashTag)
	ops := slices.Clone(m.GetOpsetImport())
	slices.SortFunc(ops, func(a, b *pb.OperatorSetIdProto) int { return cmp.Compare(a.GetDomain(), b.GetDomain()) })
	e.int(int64(len(ops)))
	for _, o := range ops {
		e.str(o.GetDomain())
		e.int(o.GetVersion())
	}
	e.graph(m.GetGraph())
	sum := sha256.Sum256(e.b.Bytes())
	return hex.EncodeToString(sum[:])
}

// canon writes a self-delimiting encoding: every string and list is length-prefixed, so distinct structures
// never encode to the same bytes.
type canon struct{ b bytes.Buffer }

func (e *canon) int(v int64) {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(v))
	e.b.Write(buf[:])
}

func (e *canon) bytes(s []byte) {
	e.int(int64(len(s)))
	e.b.Write(s)
}

func (e *canon) str(s string) { e.bytes([]byte(s)) }

func (e *canon) strs(ss []string) { list(e, ss, e.str) }

// list writes xs length-prefixed, each item by put.
func list[T any](e *canon, xs []T, put func(T)) {
	e.int(int64(len(xs)))
	for _, x := range xs {
		put(x)
	}
}

// sortedList writes xs as the sorted list of their encodings by put: for what the file orders as the
// exporter chooses.
func sortedList[T any](e *canon, xs []T, put func(*canon, T)) {
	items := make([][]byte, 0, len(xs))
	for _, x := range xs {
		var ie canon
		put(&ie, x)
		items = append(items, ie.b.Bytes())
	}
	e.sorted(items)
}

func (e *canon) f32(x float32) { e.int(int64(math.Float32bits(x))) }

func (e *canon) graph(g *pb.GraphProto) {
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var ins []*pb.ValueInfoProto
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] { // older exporters list initializers as inputs too
			ins = append(ins, in)
		}
	}
	list(e, ins, e.valueInfo)
	list(e, g.GetOutput(), e.valueInfo)
	// Nodes and initializers are hashed as sorted lists of their encodings: their order in the file is the
	// exporter's choice (any topological order computes the same).
	sortedList(e, g.GetNode(), (*canon).node)
	sortedList(e, g.GetInitializer(), (*canon).tensor)
	sortedList(e, g.GetSparseInitializer(), func(se *canon, t *pb.SparseTensorProto) {
		se.tensor(t.GetValues())
		se.tensor(t.GetIndices())
		list(se, t.GetDims(), se.int)
	})
}

func (e *canon) sorted(items [][]byte) {
	slices.SortFunc(items, bytes.Compare)
	e.int(int64(len(items)))
	for _, it := range items {
		e.bytes(it)
	}
}

func (e *canon) valueInfo(v *pb.ValueInfoProto) {
	e.str(v.GetName())
	tt := v.GetType().GetTensorType()
	e.int(int64(tt.GetElemType()))
	dims := tt.GetShape().GetDim()
	e.int(int64(len(dims)))
	for _, d := range dims {
		if _, fixed := d.GetValue().(*pb.TensorShapeProto_Dimension_DimValue); !fixed {
			e.int(-1) // symbolic: its name ("batch", "N") is the exporter's
			continue
		}
		e.int(d.GetDimValue())
	}
}

func (e *canon) node(n *pb.NodeProto) {
	e.str(n.GetDomain())
	e.str(n.GetOpType())
	e.strs(n.GetInput())
	e.strs(n.GetOutput())
	attrs := slices.Clone(n.GetAttribute())
	slices.SortFunc(attrs, func(a, b *pb.AttributeProto) int { return cmp.Compare(a.GetName(), b.GetName()) })
	list(e, attrs, e.attr)
}

func (e *canon) attr(a *pb.AttributeProto) {
	e.str(a.GetName())
	e.int(int64(a.GetType()))
	e.str(a.GetRefAttrName())
	switch a.GetType() {
	case pb.AttributeProto_FLOAT:
		e.f32(a.GetF())
	case pb.AttributeProto_INT:
		e.int(a.GetI())
	case pb.AttributeProto_STRING:
		e.bytes(a.GetS())
	case pb.AttributeProto_TENSOR:
		e.tensor(a.GetT())
	case pb.AttributeProto_GRAPH:
		e.graph(a.GetG())
	case pb.AttributeProto_FLOATS:
		list(e, a.GetFloats(), e.f32)
	case pb.AttributeProto_INTS:
		list(e, a.GetInts(), e.int)
	case pb.AttributeProto_STRINGS:
		list(e, a.GetStrings(), e.bytes)
	case pb.AttributeProto_TENSORS:
		list(e, a.GetTensors(), e.tensor)
	case pb.AttributeProto_GRAPHS:
		list(e, a.GetGraphs(), e.graph)
	default: // sparse tensors, type protos: rare enough to hash as serialized
		e.message(a)
	}
}

// tensor encodes a tensor's name, type, dims and values, the values as little-endian bytes of their type
// whether the file holds them as raw_data or in the typed fields.
func (e *canon) tensor(t *pb.TensorProto) {
	e.str(t.GetName())
	e.int(int64(t.GetDataType()))
	list(e, t.GetDims(), e.int)
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL {
		e.message(t) // the data is elsewhere: hash the reference
		return
	}
	switch pb.TensorProto_DataType(t.GetDataType()) {
	case pb.TensorProto_FLOAT:
		if v, err := onnxgraph.Float32s(t); err == nil {
			list(e, v, e.f32)
			return
		}
	case pb.TensorProto_INT64, pb.TensorProto_INT32:
		if v, err := onnxgraph.Int64s(t); err == nil {
			list(e, v, e.int)
			return
		}
	case pb.TensorProto_DOUBLE:
		if v, err := onnxgraph.Float64s(t); err == nil {
			list(e, v, func(x float64) { e.int(int64(math.Float64bits(x))) })
			return
		}
	}
	// Other types (half floats, bytes, strings): raw bytes when the file has them, else the typed fields.
	if raw := t.GetRawData(); len(raw) > 0 {
		e.bytes(raw)
		return
	}
	c := proto.Clone(t).(*pb.TensorProto)
	c.Name, c.DocString = nil, nil
	e.message(c)
}

func (e *canon) message(m proto.Message) {
	raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	e.bytes(raw)
}

// Matches reports whether n is the network a file (a probe, a dictionary) was trained on, given the sha256
// and graph hash the file recorded: by the graph when the file has one, so a weight file and its ONNX export
// are interchangeable; by the file's bytes for files written before graph hashes (graph "").
func (n *Network) Matches(sha256, graph string) bool {
	if graph != "" {
		return graph == n.GraphSHA256
	}
	return sha256 == n.SHA256
}
