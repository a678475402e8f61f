package model

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/model/shape"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// ruleCase is a small graph around one op: X is the float input [batch, x...] (x is [4,6] when nil), every
// node output is checked.
type ruleCase struct {
	name  string
	opset int64 // 20 when 0
	x     []int64
	nodes []*pb.NodeProto
	inits []*pb.TensorProto
	// open: the op's output size is data (NonZero, Range), so dims the engine leaves open are not compared.
	open bool
}

// nd builds a node from space-separated input and output names; "_" is an absent optional input.
func nd(op, ins, outs string, attrs ...*pb.AttributeProto) *pb.NodeProto {
	in := strings.Fields(ins)
	for i, s := range in {
		if s == "_" {
			in[i] = ""
		}
	}
	return onnxgraph.Node(op, op+":"+outs, in, strings.Fields(outs), attrs...)
}

func i64(name string, dims []int64, v ...int64) *pb.TensorProto {
	return onnxgraph.Int64Tensor(name, dims, v)
}

// f32 is a float initializer of the given dims holding small varied values.
func f32(name string, dims ...int64) *pb.TensorProto {
	v := make([]float32, onnxgraph.NumElements(dims))
	for i := range v {
		v[i] = float32(i%5) - 1.5
	}
	return onnxgraph.Float32Tensor(name, dims, v)
}

// ruleCases exercise every rule of package shape, in the forms the spec allows (attributes of older opsets,
// inputs of newer ones, negative axes, strides, padding modes), and the value tracking of shape arithmetic:
// a Reshape whose target is computed from Shape(X) only gets a concrete shape when the values resolve.
func ruleCases() []ruleCase {
	var cs []ruleCase
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Exp", "Log", "Sqrt",
		"Reciprocal", "Selu", "Elu", "LeakyRelu", "ThresholdedRelu", "HardSigmoid", "HardSwish", "Erf", "Gelu",
		"Mish", "Softmax", "LogSoftmax", "Floor", "Ceil", "Round", "Sin", "Cos", "Abs", "Sign", "Clip", "Neg",
		"Identity", "IsNaN", "IsInf"} {
		cs = append(cs, ruleCase{name: op, nodes: []*pb.NodeProto{nd(op, "X", "Y")}})
	}
	// Broadcasting: W [6] and V [4,1] against X [batch,4,6].
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Equal", "Greater", "Less", "GreaterOrEqual",
		"LessOrEqual"} {
		cs = append(cs, ruleCase{name: op, nodes: []*pb.NodeProto{nd(op, "X W", "Y"), nd(op, "V X", "Z")},
			inits: []*pb.TensorProto{f32("W", 6), f32("V", 4, 1)}})
	}
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		cs = append(cs, ruleCase{name: op, nodes: []*pb.NodeProto{nd(op, "V X W", "Y")},
			inits: []*pb.TensorProto{f32("W", 6), f32("V", 4, 1)}})
	}
	for _, op := range []string{"And", "Or", "Xor"} {
		cs = append(cs, ruleCase{name: op, nodes: []*pb.NodeProto{nd("Greater", "X W", "A"), nd("Less", "V W", "B"),
			nd(op, "A B", "Y"), nd("Not", "Y", "Z")}, inits: []*pb.TensorProto{f32("W", 6), f32("V", 4, 1)}})
	}
	cs = append(cs,
		ruleCase{name: "Mod", nodes: []*pb.NodeProto{nd("Mod", "X W", "Y", onnxgraph.AttrInt("fmod", 1))},
			inits: []*pb.TensorProto{f32("W", 4, 1)}},
		ruleCase{name: "PRelu", nodes: []*pb.NodeProto{nd("PRelu", "X W", "Y")}, inits: []*pb.TensorProto{f32("W", 6)}},
		ruleCase{name: "Where", nodes: []*pb.NodeProto{nd("Greater", "V W", "C"), nd("Where", "C X W", "Y")},
			inits: []*pb.TensorProto{f32("W", 6), f32("V", 4, 1)}},
		ruleCase{name: "Constant", nodes: []*pb.NodeProto{
			nd("Constant", "", "A", onnxgraph.AttrInts("value_ints", 2, -1)),
			nd("Constant", "", "B", onnxgraph.AttrFloat("value_float", 2)),
			nd("Constant", "", "C", onnxgraph.AttrTensor("value", f32("", 3, 2))),
			nd("Reshape", "X A", "Y")}},
		ruleCase{name: "Cast", nodes: []*pb.NodeProto{nd("Cast", "X", "A", onnxgraph.AttrInt("to", int64(pb.TensorProto_INT64))),
			nd("Shape", "X", "S"), nd("Cast", "S", "T", onnxgraph.AttrInt("to", int64(pb.TensorProto_INT32))),
			nd("Cast", "T", "U", onnxgraph.AttrInt("to", int64(pb.TensorProto_INT64))), nd("Reshape", "X U", "Y")}},
		ruleCase{name: "Dropout", nodes: []*pb.NodeProto{nd("Dropout", "X", "Y M")}},
		ruleCase{name: "BatchNormalization", nodes: []*pb.NodeProto{nd("BatchNormalization", "X S B S V", "Y")},
			inits: []*pb.TensorProto{f32("S", 4), f32("B", 4), onnxgraph.Float32Tensor("V", []int64{4}, []float32{1, 2, 3, 4})}},
		ruleCase{name: "InstanceNormalization", nodes: []*pb.NodeProto{nd("InstanceNormalization", "X S B", "Y")},
			inits: []*pb.TensorProto{f32("S", 4), f32("B", 4)}},
		ruleCase{name: "LRN", x: []int64{3, 5, 5}, nodes: []*pb.NodeProto{nd("LRN", "X", "Y", onnxgraph.AttrInt("size", 3))}},
		ruleCase{name: "LayerNormalization", nodes: []*pb.NodeProto{
			nd("LayerNormalization", "X S B", "Y M R"),
			nd("LayerNormalization", "X T", "Z N Q", onnxgraph.AttrInt("axis", 1))},
			inits: []*pb.TensorProto{f32("S", 6), f32("B", 6), f32("T", 4, 6)}},
		ruleCase{name: "ScatterElements", nodes: []*pb.NodeProto{nd("ScatterElements", "X I U", "Y", onnxgraph.AttrInt("axis", 2))},
			inits: []*pb.TensorProto{i64("I", []int64{1, 2, 1}, 3, 5), f32("U", 1, 2, 1)}},
		ruleCase{name: "ScatterND", nodes: []*pb.NodeProto{nd("ScatterND", "X I U", "Y")},
			inits: []*pb.TensorProto{i64("I", []int64{1, 1}, 0), f32("U", 1, 4, 6)}},
		ruleCase{name: "Conv", x: []int64{2, 7, 6}, nodes: []*pb.NodeProto{
			nd("Conv", "X W B", "Y", onnxgraph.AttrInts("pads", 1, 0, 1, 1), onnxgraph.AttrInts("strides", 2, 1)),
			nd("Conv", "X W", "Z", onnxgraph.AttrString("auto_pad", "SAME_UPPER"), onnxgraph.AttrInts("strides", 2, 3)),
			nd("Conv", "X W", "D", onnxgraph.AttrString("auto_pad", "VALID"), onnxgraph.AttrInts("dilations", 2, 1)),
			nd("Conv", "X G", "H", onnxgraph.AttrInt("group", 2), onnxgraph.AttrInts("kernel_shape", 1, 1))},
			inits: []*pb.TensorProto{f32("W", 3, 2, 3, 3), f32("B", 3), f32("G", 4, 1, 1, 1)}},
		ruleCase{name: "ConvTranspose", x: []int64{2, 5, 4}, nodes: []*pb.NodeProto{
			nd("ConvTranspose", "X W", "Y", onnxgraph.AttrInts("strides", 2, 3), onnxgraph.AttrInts("pads", 1, 0, 1, 1),
				onnxgraph.AttrInts("output_padding", 1, 0)),
			nd("ConvTranspose", "X W", "Z", onnxgraph.AttrString("auto_pad", "SAME_UPPER"), onnxgraph.AttrInts("strides", 2, 2)),
			nd("ConvTranspose", "X W", "S", onnxgraph.AttrInts("strides", 2, 2), onnxgraph.AttrInts("output_shape", 10, 9)),
			nd("ConvTranspose", "X G", "H", onnxgraph.AttrInt("group", 2), onnxgraph.AttrInts("dilations", 2, 1))},
			inits: []*pb.TensorProto{f32("W", 2, 3, 3, 3), f32("G", 2, 2, 3, 3)}},
		ruleCase{name: "MatMul", nodes: []*pb.NodeProto{nd("MatMul", "X W", "Y"), nd("MatMul", "X V", "Z"), nd("MatMul", "U X", "Q"),
			nd("Unsqueeze", "X A", "X4"), nd("MatMul", "X4 T", "R")},
			inits: []*pb.TensorProto{f32("W", 6, 5), f32("V", 6), f32("U", 4), f32("T", 3, 6, 2), i64("A", []int64{1}, 1)}},
		ruleCase{name: "Gemm", nodes: []*pb.NodeProto{nd("Flatten", "X", "F"), nd("Gemm", "F W C", "Y", onnxgraph.AttrInt("transB", 1)),
			nd("Gemm", "V F", "Z", onnxgraph.AttrInt("transA", 1), onnxgraph.AttrInt("transB", 1))},
			inits: []*pb.TensorProto{f32("W", 5, 24), f32("C", 5), f32("V", 24, 3)}},
		ruleCase{name: "Reshape", nodes: []*pb.NodeProto{nd("Reshape", "X A", "Y"), nd("Reshape", "Y B", "Z"), nd("Reshape", "Z C", "Q")},
			inits: []*pb.TensorProto{i64("A", []int64{2}, -1, 6), i64("B", []int64{3}, 0, 2, -1), i64("C", []int64{4}, -1, 4, 3, 2)}},
		ruleCase{name: "Flatten", nodes: []*pb.NodeProto{nd("Flatten", "X", "Y", onnxgraph.AttrInt("axis", 2)),
			nd("Flatten", "X", "Z", onnxgraph.AttrInt("axis", -1)), nd("Flatten", "X", "Q", onnxgraph.AttrInt("axis", 0))}},
		ruleCase{name: "Transpose", nodes: []*pb.NodeProto{nd("Transpose", "X", "Y", onnxgraph.AttrInts("perm", 2, 0, 1)), nd("Transpose", "X", "Z")}},
		ruleCase{name: "Squeeze", nodes: []*pb.NodeProto{nd("Unsqueeze", "X A", "U"), nd("Squeeze", "U A", "Y"), nd("Squeeze", "C", "Z"),
			nd("Squeeze", "U B", "Q")},
			inits: []*pb.TensorProto{i64("A", []int64{1}, 1), i64("B", []int64{1}, -3), f32("C", 1, 4, 1)}},
		ruleCase{name: "Squeeze/opset11", opset: 11, nodes: []*pb.NodeProto{nd("Unsqueeze", "X", "U", onnxgraph.AttrInts("axes", 0, -1)),
			nd("Squeeze", "U", "Y", onnxgraph.AttrInts("axes", -1)), nd("Split", "X", "P Q", onnxgraph.AttrInt("axis", 2), onnxgraph.AttrInts("split", 2, 4)),
			nd("ReduceMean", "X", "R", onnxgraph.AttrInts("axes", 1))}},
		ruleCase{name: "Unsqueeze", nodes: []*pb.NodeProto{nd("Unsqueeze", "X A", "Y")}, inits: []*pb.TensorProto{i64("A", []int64{2}, 0, -1)}},
		ruleCase{name: "Concat", nodes: []*pb.NodeProto{nd("Concat", "X X", "Y", onnxgraph.AttrInt("axis", 1)),
			nd("Concat", "X X", "Z", onnxgraph.AttrInt("axis", 0)), nd("Concat", "X X", "Q", onnxgraph.AttrInt("axis", -1))}},
		ruleCase{name: "Split", nodes: []*pb.NodeProto{nd("Split", "X", "A B C", onnxgraph.AttrInt("axis", 2), onnxgraph.AttrInt("num_outputs", 3)),
			nd("Split", "X S", "D E", onnxgraph.AttrInt("axis", -2)), nd("Split", "X", "F", onnxgraph.AttrInt("num_outputs", 1)),
			nd("Slice", "X Z F5 T", "G"), nd("Split", "G", "H I J", onnxgraph.AttrInt("axis", 2), onnxgraph.AttrInt("num_outputs", 3))},
			inits: []*pb.TensorProto{i64("S", []int64{2}, 1, 3), i64("Z", []int64{1}, 0), i64("F5", []int64{1}, 5), i64("T", []int64{1}, 2)}},
		ruleCase{name: "Slice", nodes: []*pb.NodeProto{
			nd("Slice", "X A B C", "Y"),
			nd("Slice", "X D E C F", "Z"),
			nd("Slice", "X Z0 M Z0", "W"),
			nd("Slice", "X Z0 M", "Q")},
			inits: []*pb.TensorProto{i64("A", []int64{1}, 1), i64("B", []int64{1}, -1), i64("C", []int64{1}, 2),
				i64("D", []int64{1}, -1), i64("E", []int64{1}, -100), i64("F", []int64{1}, -2),
				i64("Z0", []int64{1}, 0), i64("M", []int64{1}, math.MaxInt64)}},
		ruleCase{name: "Gather", nodes: []*pb.NodeProto{nd("Gather", "X I", "Y", onnxgraph.AttrInt("axis", 1)),
			nd("Gather", "X J", "Z", onnxgraph.AttrInt("axis", -1)), nd("Gather", "X K", "Q")},
			inits: []*pb.TensorProto{i64("I", []int64{2}, 0, 2), i64("J", nil, 3), i64("K", []int64{2, 2}, 0, 0, 0, 0)}},
		ruleCase{name: "Shape", nodes: []*pb.NodeProto{nd("Shape", "X", "A", onnxgraph.AttrInt("start", 1)),
			nd("Shape", "X", "B", onnxgraph.AttrInt("start", -1)), nd("Shape", "X", "C", onnxgraph.AttrInt("end", -1)),
			nd("Concat", "M C", "D", onnxgraph.AttrInt("axis", 0)), nd("Reshape", "X D", "Y")},
			inits: []*pb.TensorProto{i64("M", []int64{1}, 6)}},
		// Shape arithmetic: [b,4,6] -> /[1,2,1] -> *[2,1,1] -> -[0,0,1] -> +[0,0,1] -> Neg twice = [2b,2,6].
		ruleCase{name: "ShapeArithmetic", nodes: []*pb.NodeProto{nd("Shape", "X", "S"), nd("Div", "S D", "A"), nd("Mul", "A M", "B"),
			nd("Sub", "B O", "C"), nd("Add", "C O", "E"), nd("Neg", "E", "N"), nd("Neg", "N", "P"), nd("Reshape", "X P", "Y")},
			inits: []*pb.TensorProto{i64("D", []int64{3}, 1, 2, 1), i64("M", []int64{3}, 2, 1, 1), i64("O", []int64{3}, 0, 0, 1)}},
		// Values through Gather, Unsqueeze, Squeeze, Concat and Slice (reversed, strided): targets [4b,6],
		// [b,24] and [6,4,b].
		ruleCase{name: "ShapeValues", nodes: []*pb.NodeProto{nd("Shape", "X", "S"), nd("Gather", "S Z", "B"), nd("Mul", "B F", "B4"),
			nd("Unsqueeze", "B4 Z1", "U"), nd("Squeeze", "U Z1", "V"), nd("Unsqueeze", "V Z1", "W"),
			nd("Concat", "W L", "T", onnxgraph.AttrInt("axis", 0)), nd("Reshape", "X T", "Y"),
			nd("Slice", "S A E", "G"), nd("ReduceProd", "G", "K", onnxgraph.AttrInt("keepdims", 1)),
			nd("Slice", "S M1 Big Z1 M1", "H"), nd("Slice", "S M1 Big Z1 M2", "H2"), nd("Reshape", "X H", "R")},
			inits: []*pb.TensorProto{i64("Z", nil, 0), i64("F", nil, 4), i64("Z1", []int64{1}, 0), i64("L", []int64{1}, 6),
				i64("A", []int64{1}, 1), i64("E", []int64{1}, 3), i64("M1", []int64{1}, -1), i64("M2", []int64{1}, -2),
				i64("Big", []int64{1}, -100)}},
		ruleCase{name: "Size", nodes: []*pb.NodeProto{nd("Size", "X", "S"), nd("Unsqueeze", "S Z", "U"), nd("Reshape", "X U", "Y")},
			inits: []*pb.TensorProto{i64("Z", []int64{1}, 0)}},
		ruleCase{name: "Expand", nodes: []*pb.NodeProto{nd("Shape", "X", "S"), nd("Expand", "V S", "Y"), nd("Expand", "X T", "Z")},
			inits: []*pb.TensorProto{f32("V", 4, 1), i64("T", []int64{4}, 2, 1, 1, 1)}},
		ruleCase{name: "ConstantOfShape", nodes: []*pb.NodeProto{nd("Shape", "X", "S"), nd("ConstantOfShape", "S", "Y"),
			nd("ConstantOfShape", "S", "Z", onnxgraph.AttrTensor("value", i64("", []int64{1}, 7)))}},
		ruleCase{name: "GlobalPool", x: []int64{2, 5, 4}, nodes: []*pb.NodeProto{nd("GlobalAveragePool", "X", "Y"), nd("GlobalMaxPool", "X", "Z")}},
		ruleCase{name: "Pad", nodes: []*pb.NodeProto{nd("Pad", "X P", "Y"), nd("Pad", "X P C", "Z", onnxgraph.AttrString("mode", "reflect"))},
			inits: []*pb.TensorProto{i64("P", []int64{6}, 0, 1, 2, 0, 3, 0), onnxgraph.Float32Tensor("C", nil, []float32{0})}},
		ruleCase{name: "Tile", nodes: []*pb.NodeProto{nd("Tile", "X R", "Y")}, inits: []*pb.TensorProto{i64("R", []int64{3}, 2, 1, 3)}},
		ruleCase{name: "NonZero", open: true, nodes: []*pb.NodeProto{nd("NonZero", "X", "Y")}},
		ruleCase{name: "Range", open: true, nodes: []*pb.NodeProto{nd("Range", "A L D", "Y")},
			inits: []*pb.TensorProto{i64("A", nil, 0), i64("L", nil, 5), i64("D", nil, 2)}},
		ruleCase{name: "TopK", nodes: []*pb.NodeProto{nd("TopK", "X K", "V I"), nd("TopK", "X K", "W J", onnxgraph.AttrInt("axis", 1))},
			inits: []*pb.TensorProto{i64("K", []int64{1}, 2)}},
		ruleCase{name: "ArgMax", nodes: []*pb.NodeProto{nd("ArgMax", "X", "Y", onnxgraph.AttrInt("axis", 1), onnxgraph.AttrInt("keepdims", 0)),
			nd("ArgMin", "X", "Z", onnxgraph.AttrInt("axis", -1))}},
	)
	for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum"} {
		cs = append(cs, ruleCase{name: op, nodes: []*pb.NodeProto{nd(op, "X A", "Y"), nd(op, "X B", "Z", onnxgraph.AttrInt("keepdims", 0)),
			nd(op, "X", "Q", onnxgraph.AttrInt("keepdims", 0)), nd(op, "X", "R"),
			nd(op, "X E", "N", onnxgraph.AttrInt("noop_with_empty_axes", 1))},
			inits: []*pb.TensorProto{i64("A", []int64{1}, 1), i64("B", []int64{2}, -1, 0), i64("E", []int64{0})}})
	}
	return cs
}

// TestShapeRulesAgainstORT runs every rule of package shape on small graphs and compares the inferred
// shapes and element types of every tensor, at two batch sizes, with what ONNX Runtime produces. It also
// fails when a rule has no case here, so a new rule comes with its check.
func TestShapeRulesAgainstORT(t *testing.T) {
	rt := testRuntime(t)
	covered := map[string]bool{}
	for _, c := range ruleCases() {
		for _, n := range c.nodes {
			covered[n.GetOpType()] = true
		}
		t.Run(c.name, func(t *testing.T) {
			opset := c.opset
			if opset == 0 {
				opset = 20
			}
			x := c.x
			if x == nil {
				x = []int64{4, 6}
			}
			in := onnxgraph.ValueInfo("X", pb.TensorProto_FLOAT, append([]int64{-1}, x...)...)
			g := &pb.GraphProto{Name: proto.String(c.name), Input: []*pb.ValueInfoProto{in}, Node: c.nodes, Initializer: c.inits}
			inf := shape.Infer(g)
			// Every tensor comes out through Unsqueeze(axis 0), whose shape is the tensor's with a leading 1: the
			// binding cannot return rank-0 tensors.
			probe := slices.Clone(c.nodes)
			for _, n := range c.nodes {
				for _, o := range n.GetOutput() {
					if opset < 13 {
						probe = append(probe, nd("Unsqueeze", o, o+"/probe", onnxgraph.AttrInts("axes", 0)))
					} else {
						probe = append(probe, nd("Unsqueeze", o+" probe/axes", o+"/probe"))
					}
					g.Output = append(g.Output, &pb.ValueInfoProto{Name: proto.String(o + "/probe")})
				}
			}
			g.Node = probe
			g.Initializer = append(slices.Clone(c.inits), i64("probe/axes", []int64{1}, 0))
			m := onnxgraph.NewModel(g, opset)
			m.IrVersion = proto.Int64(9)
			p, err := NewPlan(m)
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range []int64{2, 3} {
				data := make([]float32, batch*int64(onnxgraph.NumElements(x)))
				for i := range data {
					data[i] = float32(i%7) - 3
				}
				got, err := rt.outputMetas(p, map[string]Tensor{"X": {Shape: append([]int64{batch}, x...), Data: data}})
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range c.nodes {
					for _, o := range n.GetOutput() {
						info, want := inf.Get(o), got[o+"/probe"]
						if len(want.shape) == 0 || want.shape[0] != 1 {
							t.Fatalf("batch %d: %s: probe shape %v", batch, o, want.shape)
						}
						want.shape = want.shape[1:]
						if msg := compareRule(inf, info, batch, want, c.open); msg != "" {
							t.Errorf("batch %d: %s %s: %s", batch, n.GetOpType(), o, msg)
						}
					}
				}
			}
		})
	}
	for _, op := range shape.Ops() {
		if !covered[op] {
			t.Errorf("%s: a shape rule with no case in ruleCases", op)
		}
	}
}

// compareRule returns what is wrong with info against ONNX Runtime's output at batch, "" when nothing is.
func compareRule(inf *shape.Inference, info *shape.Info, batch int64, want outputMeta, open bool) string {
	if dtypeName(info.Elem) != want.dtype {
		return fmt.Sprintf("element type %s, onnx runtime %s", dtypeName(info.Elem), want.dtype)
	}
	if s, ok := inf.Concrete(info, batch); ok {
		if !slices.Equal(s, want.shape) {
			return fmt.Sprintf("inferred %v (%v), onnx runtime %v", s, info.Dims, want.shape)
		}
		return ""
	}
	if !open || info.Rank() != len(want.shape) {
		return fmt.Sprintf("inferred %v, not a concrete shape; onnx runtime %v", info, want.shape)
	}
	for i, d := range info.Dims {
		if s, ok := inf.Concrete(&shape.Info{Ranked: true, Dims: []shape.Dim{d}}, batch); ok && s[0] != want.shape[i] {
			return fmt.Sprintf("inferred %v, onnx runtime %v", info.Dims, want.shape)
		}
	}
	return ""
}
