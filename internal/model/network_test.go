package model

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

func checkOneLine(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); strings.Contains(msg, "\n") || msg == "" {
		t.Errorf("error is not one line: %q", msg)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notLc0 := func(name string, g *pb.GraphProto) string {
		raw, err := onnxgraph.Marshal(onnxgraph.NewModel(g, 17))
		if err != nil {
			t.Fatal(err)
		}
		return write(name, raw)
	}
	relu := &pb.GraphProto{
		Node:   []*pb.NodeProto{onnxgraph.Node("Relu", "r", []string{"x"}, []string{"y"})},
		Input:  []*pb.ValueInfoProto{onnxgraph.ValueInfo("x", pb.TensorProto_FLOAT, -1, 3, 224, 224)},
		Output: []*pb.ValueInfoProto{onnxgraph.ValueInfo("y", pb.TensorProto_FLOAT, -1, 3, 224, 224)},
	}
	noPolicy := &pb.GraphProto{
		Node:   []*pb.NodeProto{onnxgraph.Node("Relu", "r", []string{InputName}, []string{"y"})},
		Input:  []*pb.ValueInfoProto{onnxgraph.ValueInfo(InputName, pb.TensorProto_FLOAT, -1, 112, 8, 8)},
		Output: []*pb.ValueInfoProto{onnxgraph.ValueInfo("y", pb.TensorProto_FLOAT, -1, 112, 8, 8)},
	}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "nope.onnx"), "no such file"},
		{"text", write("notes.onnx", []byte("hello, this is not a network\n")), "not an onnx model"},
		{"empty", write("empty.onnx", nil), "not an onnx model"},
		{"lc0 weights", write("net.pb.gz", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}), "truncated lc0 weights file"},
		{"image net", notLc0("image.onnx", relu), "not an lc0 network: no float input of shape [batch,112,8,8]"},
		{"no policy", notLc0("nopolicy.onnx", noPolicy), "not an lc0 network: no policy output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path)
			if err == nil {
				t.Fatal("no error")
			}
			checkOneLine(t, err)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q: want it to name %s and say %q", err, tc.path, tc.want)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	n := Demo()
	for _, tc := range []struct {
		pattern string
		want    []string
		err     string
	}{
		{`^block0/conv2/relu$`, []string{"block0/conv2/relu"}, ""},
		{`^block0/conv\d$`, []string{"block0/conv1", "block0/conv2"}, ""},
		{`^output/`, []string{"output/wdl", "output/policy"}, ""}, // graph order
		{`(`, nil, "invalid regular expression"},
		{`^nothing$`, nil, "lczerolens model modules --model"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			got, err := n.Select(tc.pattern)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				checkOneLine(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("got %v, want %v", names, tc.want)
			}
		})
	}
}

// TestInfo checks body sizes against the table in the models README.
func TestInfo(t *testing.T) {
	sh := sharedDir(t)
	for _, tc := range []struct {
		net             string
		body            string
		blocks, filters int
		heads           Heads
	}{
		{"tinygyal-8", "residual", 2, 16, Heads{Policy: PolicyName, Value: ValueName}},
		{"meangirl-8", "residual", 4, 32, Heads{Policy: PolicyName, Value: ValueName}},
		{"goodgyal-5", "residual", 5, 48, Heads{Policy: PolicyName, Value: ValueName}},
		{"maia-1100", "residual", 6, 64, Heads{Policy: PolicyName, WDL: WDLName}},
		{"synthetic/se_convpol_mlh", "residual", 2, 32, Heads{Policy: PolicyName, WDL: WDLName, MLH: MLHName}},
		{"synthetic/ab_pemap_classical", "attention", 2, 64, Heads{Policy: PolicyName, WDL: WDLName, MLH: MLHName}},
	} {
		t.Run(tc.net, func(t *testing.T) {
			n, err := Load(filepath.Join(sh, "models", tc.net+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			in := n.Info()
			if in.Body != tc.body || in.Blocks != tc.blocks || in.Filters != tc.filters || in.Heads != tc.heads {
				t.Errorf("body %s %dx%d heads %+v, want %s %dx%d %+v", in.Body, in.Blocks, in.Filters, in.Heads, tc.body, tc.blocks, tc.filters, tc.heads)
			}
			if in.Opset != 17 || len(in.Inputs) != 1 || !slices.Equal(in.Inputs[0].Shape, []int64{-1, 112, 8, 8}) {
				t.Errorf("opset %d inputs %+v", in.Opset, in.Inputs)
			}
			if in.Body == "residual" && !in.SE {
				t.Error("SE not detected")
			}
			var nodes int
			for _, c := range in.OpCountList() {
				nodes += c.Count
			}
			if nodes != in.Nodes || nodes != len(n.Proto.GetGraph().GetNode()) {
				t.Errorf("op counts sum to %d, %d nodes", nodes, in.Nodes)
			}
		})
	}
}
