package shape

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// foldGraph is lc0's attention-body batch fold: [B,112,8,8] -> [B*64,112] -> MatMul -> [B*64,32], then back to
// [B,64,32] with a target computed from Shape(X), then an op inference has no rule for.
func foldGraph() *pb.GraphProto {
	x := onnxgraph.ValueInfo("X", pb.TensorProto_FLOAT, -1, 112, 8, 8)
	return &pb.GraphProto{
		Input: []*pb.ValueInfoProto{x},
		Initializer: []*pb.TensorProto{
			onnxgraph.Int64Tensor("flat", []int64{2}, []int64{-1, 112}),
			onnxgraph.Float32Tensor("W", []int64{112, 32}, make([]float32, 112*32)),
			onnxgraph.Int64Tensor("zero", nil, []int64{0}),
			onnxgraph.Int64Tensor("axes0", []int64{1}, []int64{0}),
			onnxgraph.Int64Tensor("rest", []int64{2}, []int64{64, 32}),
		},
		Node: []*pb.NodeProto{
			onnxgraph.Node("Transpose", "t", []string{"X"}, []string{"T"}, onnxgraph.AttrInts("perm", 0, 2, 3, 1)),
			onnxgraph.Node("Reshape", "r", []string{"T", "flat"}, []string{"F"}),
			onnxgraph.Node("MatMul", "m", []string{"F", "W"}, []string{"M"}),
			onnxgraph.Node("Shape", "s", []string{"X"}, []string{"S"}),
			onnxgraph.Node("Gather", "g", []string{"S", "zero"}, []string{"B"}),
			onnxgraph.Node("Unsqueeze", "u", []string{"B", "axes0"}, []string{"B1"}),
			onnxgraph.Node("Concat", "c", []string{"B1", "rest"}, []string{"target"}, onnxgraph.AttrInt("axis", 0)),
			onnxgraph.Node("Reshape", "back", []string{"M", "target"}, []string{"Y"}),
			onnxgraph.Node("NoSuchOp", "x", []string{"Y"}, []string{"Z"}),
			onnxgraph.Node("Relu", "z", []string{"Z"}, []string{"R"}),
		},
		Output: []*pb.ValueInfoProto{{Name: proto.String("R")}},
	}
}

func TestBatchFold(t *testing.T) {
	f := Infer(foldGraph())
	batch := Dim{C: 1, S: "batch"}
	for _, c := range []struct {
		name string
		want []Dim
	}{
		{"T", []Dim{batch, Known(8), Known(8), Known(112)}},
		{"F", []Dim{{C: 64, S: "batch"}, Known(112)}},
		{"M", []Dim{{C: 64, S: "batch"}, Known(32)}},
		{"target", []Dim{Known(3)}},
		{"Y", []Dim{batch, Known(64), Known(32)}},
	} {
		got := f.Get(c.name)
		if !got.Ranked || !slices.Equal(got.Dims, c.want) || got.Elem == 0 {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if v := f.Get("target").Val; !slices.Equal(v, []Dim{batch, Known(64), Known(32)}) {
		t.Errorf("target values %v, want [batch 64 32]", v)
	}
	for _, c := range []struct {
		name  string
		batch int64
		want  []int64
	}{{"F", 5, []int64{320, 112}}, {"Y", 5, []int64{5, 64, 32}}, {"Y", 1, []int64{1, 64, 32}}} {
		got, ok := f.Concrete(f.Get(c.name), c.batch)
		if !ok || !slices.Equal(got, c.want) {
			t.Errorf("%s at batch %d: %v %v, want %v", c.name, c.batch, got, ok, c.want)
		}
	}
	// No rule: unknown, and so is what follows; never a guess.
	for _, name := range []string{"Z", "R"} {
		if got := f.Get(name); got.Ranked || got.Elem != 0 {
			t.Errorf("%s: got %v, want unknown", name, got)
		}
		if _, ok := f.Concrete(f.Get(name), 1); ok {
			t.Errorf("%s: concrete shape for an unknown tensor", name)
		}
	}
}

// TestValueInfo: a declaration keeps what is certain (numbers, the input's dim_param) and leaves the rest
// open, so that any batch size fits.
func TestValueInfo(t *testing.T) {
	f := Infer(foldGraph())
	for _, c := range []struct {
		name   string
		values []int64  // -1: open
		params []string // "" unless a dim_param
	}{
		{"Y", []int64{-1, 64, 32}, []string{"batch", "", ""}},
		{"F", []int64{-1, 112}, []string{"", ""}},
	} {
		v := f.Get(c.name).ValueInfo("v")
		tt := v.GetType().GetTensorType()
		if pb.TensorProto_DataType(tt.GetElemType()) != pb.TensorProto_FLOAT || len(tt.GetShape().GetDim()) != len(c.values) {
			t.Fatalf("%s: declared %v", c.name, v)
		}
		for i, d := range tt.GetShape().GetDim() {
			_, hasValue := d.GetValue().(*pb.TensorShapeProto_Dimension_DimValue)
			if (c.values[i] >= 0) != hasValue || (hasValue && d.GetDimValue() != c.values[i]) || d.GetDimParam() != c.params[i] {
				t.Errorf("%s dim %d: declared %v, want value %d param %q", c.name, i, d, c.values[i], c.params[i])
			}
		}
	}
	if v := f.Get("Z").ValueInfo("z"); v.GetType().GetTensorType().GetShape() != nil {
		t.Errorf("unknown tensor declared with a shape: %v", v)
	}
}

func TestOpsSorted(t *testing.T) {
	ops := Ops()
	if !slices.IsSorted(ops) || len(slices.Compact(slices.Clone(ops))) != len(ops) || len(ops) == 0 {
		t.Errorf("Ops() = %v, want sorted unique names", ops)
	}
}
