package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestHookPlanKeepsHeads hooks random subsets of maia-1100's modules and checks that the heads do not move,
// that hooked tensors have their inferred shapes, and that hooked Relu outputs are the Relu of their hooked
// inputs.
func TestHookPlanKeepsHeads(t *testing.T) {
	rt := testRuntime(t)
	path := filepath.Join(sharedDir(t), "models", "maia-1100.onnx")
	n, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := testutil.ReadRefdump(t, refdumpFor(t, path))[:8]
	var planes []float32
	for _, rec := range recs {
		planes = append(planes, testutil.DecodePlanes(t, rec)...)
	}
	batch := len(recs)
	base, err := n.Forward(rt, planes, batch)
	if err != nil {
		t.Fatal(err)
	}
	producer := onnxgraph.NewIndex(n.Proto.GetGraph()).Producer
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 12; trial++ {
		var hooks []string
		for _, m := range n.Modules {
			if rng.IntN(4) == 0 || (trial == 0) {
				if rng.IntN(2) == 0 {
					hooks = append(hooks, m.Name)
				} else {
					hooks = append(hooks, m.Tensor)
				}
			}
		}
		rng.Shuffle(len(hooks), func(i, j int) { hooks[i], hooks[j] = hooks[j], hooks[i] })
		p, err := n.HookPlan(hooks)
		if err != nil {
			t.Fatal(err)
		}
		res, err := rt.Run(p, map[string]Tensor{n.Input: {Shape: []int64{int64(batch), Planes, 8, 8}, Data: planes}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := n.DecodeHeads(res, batch)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got.Policy, base.Policy); d > 1e-6 {
			t.Errorf("trial %d (%d hooks): policy moved by %g", trial, len(hooks), d)
		}
		if d := maxDiff(got.WDL, base.WDL); d > 1e-6 {
			t.Errorf("trial %d (%d hooks): wdl moved by %g", trial, len(hooks), d)
		}
		for _, h := range hooks {
			m, _ := n.Module(h)
			out, ok := res[m.Tensor]
			if !ok {
				t.Fatalf("hook %s: not in outputs", h)
			}
			want := append([]int64{int64(batch)}, m.Shape[1:]...)
			if !slices.Equal(out.Shape, want) {
				t.Errorf("hook %s: shape %v, want %v", h, out.Shape, want)
			}
			if node := producer[m.Tensor]; node.GetOpType() == "Relu" {
				if in, ok := res[node.GetInput()[0]]; ok {
					for i, v := range in.Data {
						if out.Data[i] != float32(math.Max(float64(v), 0)) {
							t.Fatalf("hook %s: relu(%g) = %g", h, v, out.Data[i])
						}
					}
				}
			}
		}
	}
}

func TestHookPlanErrors(t *testing.T) {
	n := Demo()
	for _, tc := range []struct {
		name  string
		hooks []string
	}{
		{"unknown", []string{"block9/conv1"}},
		{"graph input", []string{"/input/planes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.HookPlan(tc.hooks)
			if err == nil {
				t.Fatal("no error")
			}
			checkOneLine(t, err)
		})
	}
}

// TestHookPlanCached checks that equal hook lists give the same plan and distinct lists distinct keys.
func TestHookPlanCached(t *testing.T) {
	n := Demo()
	a, err := n.HookPlan([]string{"block0/conv1/relu"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := n.HookPlan([]string{"/block0/conv1/relu"})
	c, _ := n.HookPlan(nil)
	if a != b {
		t.Error("module and tensor name gave different plans")
	}
	if a.Key == c.Key {
		t.Error("hooked and plain plans share a key")
	}
	if !slices.Equal(c.Outputs, []string{PolicyName, WDLName}) {
		t.Errorf("plain outputs %v", c.Outputs)
	}
	if got := a.Outputs[len(a.Outputs)-1]; got != "/block0/conv1/relu" {
		t.Errorf("last output %q", got)
	}
}

// TestNewPlan reads inputs and outputs from a graph built elsewhere and runs it.
func TestNewPlan(t *testing.T) {
	rt := testRuntime(t)
	g := &pb.GraphProto{
		Node:        []*pb.NodeProto{onnxgraph.Node("Mul", "double", []string{"x", "two"}, []string{"y"})},
		Input:       []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, -1, 2)},
		Output:      []*pb.ValueInfoProto{onnxgraph.ValueInfo("y", pb.TensorProto_FLOAT, -1, 2)},
		Initializer: []*pb.TensorProto{onnxgraph.Float32Tensor("two", []int64{1}, []float32{2})},
	}
	g.Input = append(g.Input, onnxgraph.ValueInfo("two", pb.TensorProto_FLOAT, 1)) // old-style initializer input
	p, err := NewPlan(onnxgraph.NewModel(g, 17))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Inputs, []string{"x"}) || !slices.Equal(p.Outputs, []string{"y"}) {
		t.Fatalf("inputs %v outputs %v", p.Inputs, p.Outputs)
	}
	res, err := rt.Run(p, map[string]Tensor{"x": {Shape: []int64{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if y := res["y"]; !slices.Equal(y.Data, []float32{2, 4, 6, 8, 10, 12}) || !slices.Equal(y.Shape, []int64{3, 2}) {
		t.Errorf("y = %v %v", y.Shape, y.Data)
	}
	for _, tc := range []struct {
		name    string
		inputs  map[string]Tensor
		outputs []string
	}{
		{"missing input", map[string]Tensor{}, nil},
		{"unknown input", map[string]Tensor{"x": {Shape: []int64{1, 2}, Data: []float32{1, 2}}, "z": {}}, nil},
		{"short data", map[string]Tensor{"x": {Shape: []int64{2, 2}, Data: []float32{1, 2}}}, nil},
		{"unknown output", map[string]Tensor{"x": {Shape: []int64{1, 2}, Data: []float32{1, 2}}}, []string{"w"}},
		{"bad rank", map[string]Tensor{"x": {Shape: []int64{2}, Data: []float32{1, 2}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.Run(p, tc.inputs, tc.outputs)
			if err == nil {
				t.Fatal("no error")
			}
			checkOneLine(t, err)
		})
	}
}
