package model

import (
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// tinyLc0 is a small graph with lc0's interface: planes -> flatten -> gathered policy logits and a WDL
// softmax (weights-free, so that fuzzing stays fast).
func tinyLc0(t testing.TB) []byte {
	idx := make([]int64, PolicySize)
	for i := range idx {
		idx[i] = int64(i * 3)
	}
	g := &pb.GraphProto{
		Node: []*pb.NodeProto{
			onnxgraph.Node("Reshape", "/flatten", []string{InputName, "/shape"}, []string{"/flatten"}),
			onnxgraph.Node("Gather", PolicyName, []string{"/flatten", "/policy_idx"}, []string{PolicyName}, onnxgraph.AttrInt("axis", 1)),
			onnxgraph.Node("Gather", "/value", []string{"/flatten", "/value_idx"}, []string{"/value"}, onnxgraph.AttrInt("axis", 1)),
			onnxgraph.Node("Softmax", WDLName, []string{"/value"}, []string{WDLName}, onnxgraph.AttrInt("axis", 1)),
		},
		Initializer: []*pb.TensorProto{
			onnxgraph.Int64Tensor("/shape", []int64{2}, []int64{-1, Planes * 64}),
			onnxgraph.Int64Tensor("/policy_idx", []int64{PolicySize}, idx),
			onnxgraph.Int64Tensor("/value_idx", []int64{3}, []int64{0, 1, 2}),
		},
		Input:  []*pb.ValueInfoProto{onnxgraph.ValueInfo(InputName, pb.TensorProto_FLOAT, -1, Planes, 8, 8)},
		Output: []*pb.ValueInfoProto{onnxgraph.ValueInfo(PolicyName, pb.TensorProto_FLOAT, -1, PolicySize), onnxgraph.ValueInfo(WDLName, pb.TensorProto_FLOAT, -1, 3)},
	}
	raw, err := onnxgraph.Marshal(onnxgraph.NewModel(g, 17))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTinyLc0Loads(t *testing.T) {
	n, err := LoadBytes("tiny", tinyLc0(t))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := n.Module("flatten"); len(m.Shape) != 2 || m.Shape[0] != 1 || m.Shape[1] != Planes*64 {
		t.Errorf("flatten shape %v", m.Shape)
	}
	if n.Heads != (Heads{Policy: PolicyName, WDL: WDLName}) {
		t.Errorf("heads %+v", n.Heads)
	}
	// Runs too: policy i is plane value 3i.
	rt := testRuntime(t)
	planes := make([]float32, Planes*64)
	for i := range planes {
		planes[i] = float32(i)
	}
	h, err := n.Forward(rt, planes, 1)
	if err != nil {
		t.Fatal(err)
	}
	if h.Policy[100] != 300 || h.WDL[2] <= h.WDL[1] {
		t.Errorf("policy[100] %g wdl %v", h.Policy[100], h.WDL)
	}
}

// FuzzLoadBytes: whatever the bytes, loading and inspecting a network returns an error or a usable
// network, never a panic.
func FuzzLoadBytes(f *testing.F) {
	f.Add(tinyLc0(f))
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b, 0x08})
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := LoadBytes("fuzz", raw)
		if err != nil {
			return
		}
		_ = n.Info()
		var hooks []string
		for _, m := range n.Modules {
			if m.DType == "float32" {
				hooks = append(hooks, m.Name)
			}
		}
		if _, err := n.HookPlan(hooks); err != nil {
			t.Fatalf("hook plan of a loaded network: %v", err)
		}
		_, _ = n.Select(".")
	})
}
