package model

import (
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// TestGraphHashWeightsAndExport: an lc0 weight file converted here and lc0's own ONNX export of it hash the
// same (their file hashes differ), a net of the same architecture with other weights does not.
func TestGraphHashWeightsAndExport(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "models")
	load := func(name string) *Network {
		n, err := Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	onnx, weights, other := load("maia-1100.onnx"), load("maia-1100.pb.gz"), load("maia-1900.onnx")
	if onnx.SHA256 == weights.SHA256 {
		t.Fatal("the two files have the same sha256: the test shows nothing")
	}
	if len(onnx.GraphSHA256) != 64 || onnx.GraphSHA256 != weights.GraphSHA256 {
		t.Errorf("maia-1100: onnx graph %s, weights graph %s: want equal", onnx.GraphSHA256, weights.GraphSHA256)
	}
	if other.GraphSHA256 == onnx.GraphSHA256 {
		t.Errorf("maia-1900 hashes as maia-1100 (%s)", other.GraphSHA256)
	}
	tiny := load("tinygyal-8.pb")
	if tinyOnnx := load("tinygyal-8.onnx"); tiny.GraphSHA256 != tinyOnnx.GraphSHA256 {
		t.Errorf("tinygyal-8: weights %s, onnx %s", tiny.GraphSHA256, tinyOnnx.GraphSHA256)
	}
}

// TestGraphHashCanonical edits a small graph: what an exporter may choose freely keeps the hash, any change
// to the computation changes it.
func TestGraphHashCanonical(t *testing.T) {
	base := func() *pb.ModelProto {
		g := &pb.GraphProto{
			Name: proto.String("g"),
			Node: []*pb.NodeProto{
				onnxgraph.Node("Conv", "/conv", []string{"/input/planes", "w"}, []string{"/conv"}, onnxgraph.AttrInts("pads", 1, 1, 1, 1)),
				onnxgraph.Node("Relu", "/relu", []string{"/conv"}, []string{"/relu"}),
			},
			Initializer: []*pb.TensorProto{onnxgraph.Float32Tensor("w", []int64{2, 112, 3, 3}, make([]float32, 2*112*9)),
				onnxgraph.Int64Tensor("shape", []int64{2}, []int64{-1, 128})},
			Input:  []*pb.ValueInfoProto{onnxgraph.ValueInfo("/input/planes", pb.TensorProto_FLOAT, -1, 112, 8, 8)},
			Output: []*pb.ValueInfoProto{onnxgraph.ValueInfo("/relu", pb.TensorProto_FLOAT, -1, 2, 8, 8)},
		}
		return onnxgraph.NewModel(g, 17)
	}
	want := GraphHash(base())
	same := map[string]func(m *pb.ModelProto){
		"producer and doc": func(m *pb.ModelProto) {
			m.ProducerName, m.DocString = proto.String("other"), proto.String("doc")
			m.Graph.Name = proto.String("other")
		},
		"node names": func(m *pb.ModelProto) { m.Graph.Node[0].Name = proto.String("renamed") },
		"node order": func(m *pb.ModelProto) { slices.Reverse(m.Graph.Node) },
		"initializer order": func(m *pb.ModelProto) {
			slices.Reverse(m.Graph.Initializer)
		},
		"float_data instead of raw": func(m *pb.ModelProto) {
			w := m.Graph.Initializer[0]
			v, _ := onnxgraph.Float32s(w)
			w.RawData, w.FloatData = nil, v
		},
		"int64_data instead of raw": func(m *pb.ModelProto) {
			s := m.Graph.Initializer[1]
			v, _ := onnxgraph.Int64s(s)
			s.RawData, s.Int64Data = nil, v
		},
		"symbolic dim name": func(m *pb.ModelProto) {
			m.Graph.Input[0].Type.GetTensorType().Shape.Dim[0].Value = &pb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
		},
		"value_info": func(m *pb.ModelProto) {
			m.Graph.ValueInfo = append(m.Graph.ValueInfo, onnxgraph.ValueInfo("/conv", pb.TensorProto_FLOAT, -1, 2, 8, 8))
		},
		"initializer listed as input": func(m *pb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, onnxgraph.ValueInfo("w", pb.TensorProto_FLOAT, 2, 112, 3, 3))
		},
	}
	for name, edit := range same {
		m := base()
		edit(m)
		if got := GraphHash(m); got != want {
			t.Errorf("%s changes the hash", name)
		}
	}
	differ := map[string]func(m *pb.ModelProto){
		"one weight bit": func(m *pb.ModelProto) { m.Graph.Initializer[0].RawData[100] ^= 1 },
		"an attribute":   func(m *pb.ModelProto) { m.Graph.Node[0].Attribute[0].Ints[0] = 0 },
		"an op":          func(m *pb.ModelProto) { m.Graph.Node[1].OpType = proto.String("Sigmoid") },
		"a tensor name": func(m *pb.ModelProto) {
			m.Graph.Node[1].Output[0] = "/relu2"
		},
		"wiring": func(m *pb.ModelProto) { m.Graph.Node[1].Input[0] = "/input/planes" },
		"an int": func(m *pb.ModelProto) {
			m.Graph.Initializer[1] = onnxgraph.Int64Tensor("shape", []int64{2}, []int64{-1, 64})
		},
		"a dim": func(m *pb.ModelProto) { m.Graph.Initializer[0].Dims[0] = 1 },
		"opset": func(m *pb.ModelProto) { m.OpsetImport[0].Version = proto.Int64(18) },
		"outputs": func(m *pb.ModelProto) {
			m.Graph.Output = append(m.Graph.Output, onnxgraph.ValueInfo("/conv", pb.TensorProto_FLOAT))
		},
	}
	for name, edit := range differ {
		m := base()
		edit(m)
		if got := GraphHash(m); got == want {
			t.Errorf("%s leaves the hash unchanged", name)
		}
	}
}
