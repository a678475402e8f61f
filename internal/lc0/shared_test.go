package lc0

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	onnxpb "github.com/lczerolens/lczerolens/internal/onnxpb"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// SharedDir is ../shared beside the checkout; tests skip unless it holds the reference nets. It is exported
// for the external test package.
func SharedDir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(testutil.Shared(t, "models"))
}

// SharedNets lists the lc0 weight files in ../shared/models and ../shared/models/synthetic, each with the
// ONNX file lc0's leela2onnx made from it.
func SharedNets(t testing.TB) (weights, onnx []string) {
	t.Helper()
	sh := SharedDir(t)
	real, _ := filepath.Glob(filepath.Join(sh, "models", "*.pb*"))
	syn, _ := filepath.Glob(filepath.Join(sh, "models", "synthetic", "*.pb.gz"))
	for _, p := range append(real, syn...) {
		weights = append(weights, p)
		onnx = append(onnx, strings.TrimSuffix(strings.TrimSuffix(p, ".gz"), ".pb")+".onnx")
	}
	if len(real) != 8 || len(syn) != 6 {
		t.Fatalf("%d real and %d synthetic nets in %s, want 8 and 6", len(real), len(syn), sh)
	}
	return weights, onnx
}

// TestMatchesLc0Export converts every net in ../shared and compares the graph with lc0's own export: the
// same nodes in the same order (op, name, inputs, outputs, attributes), the same graph inputs and outputs,
// and the same initializers bit for bit, batch norm folding and LINEAR16 decoding included. Module names
// (node outputs) are thereby the same as well.
func TestMatchesLc0Export(t *testing.T) {
	weights, exports := SharedNets(t)
	for i, path := range weights {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Convert(n, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := onnxgraph.Read(exports[i])
			if err != nil {
				t.Fatal(err)
			}
			if diff := graphDiff(got.GetGraph(), want.GetGraph()); diff != "" {
				t.Error(diff)
			}
			if onnxgraph.OpsetVersion(got) != onnxgraph.OpsetVersion(want) || got.GetIrVersion() != want.GetIrVersion() {
				t.Errorf("opset %d ir %d, lc0 has opset %d ir %d", onnxgraph.OpsetVersion(got), got.GetIrVersion(),
					onnxgraph.OpsetVersion(want), want.GetIrVersion())
			}
		})
	}
}

// graphDiff describes the first differences between two graphs, "" when they match.
func graphDiff(got, want *onnxpb.GraphProto) string {
	var out []string
	gn, wn := got.GetNode(), want.GetNode()
	if len(gn) != len(wn) {
		out = append(out, fmt.Sprintf("%d nodes, lc0 has %d", len(gn), len(wn)))
	}
	for i := range min(len(gn), len(wn)) {
		if !proto.Equal(gn[i], wn[i]) {
			out = append(out, fmt.Sprintf("node %d: got %v\nlc0 has %v", i, gn[i], wn[i]))
			break
		}
	}
	gi, wi := got.GetInitializer(), want.GetInitializer()
	if len(gi) != len(wi) {
		out = append(out, fmt.Sprintf("%d initializers, lc0 has %d", len(gi), len(wi)))
	}
	bad := 0
	for i := range min(len(gi), len(wi)) {
		g, w := gi[i], wi[i]
		if g.GetName() != w.GetName() || g.GetDataType() != w.GetDataType() || fmt.Sprint(g.GetDims()) != fmt.Sprint(w.GetDims()) {
			out = append(out, fmt.Sprintf("initializer %d: %s %d %v, lc0 has %s %d %v", i, g.GetName(), g.GetDataType(), g.GetDims(),
				w.GetName(), w.GetDataType(), w.GetDims()))
			break
		}
		if !bytes.Equal(g.GetRawData(), w.GetRawData()) {
			if bad++; bad <= 3 {
				gv, _ := onnxgraph.Float64s(g)
				wv, _ := onnxgraph.Float64s(w)
				worst := 0.0
				for j := range min(len(gv), len(wv)) {
					worst = max(worst, abs64(gv[j]-wv[j]))
				}
				out = append(out, fmt.Sprintf("initializer %s differs (worst %g)", g.GetName(), worst))
			}
		}
	}
	for _, io := range []struct {
		what      string
		got, want []*onnxpb.ValueInfoProto
	}{{"inputs", got.GetInput(), want.GetInput()}, {"outputs", got.GetOutput(), want.GetOutput()}} {
		if len(io.got) != len(io.want) {
			out = append(out, fmt.Sprintf("%d %s, lc0 has %d", len(io.got), io.what, len(io.want)))
			continue
		}
		for j := range io.got {
			if !proto.Equal(io.got[j], io.want[j]) {
				out = append(out, fmt.Sprintf("%s %d: %v, lc0 has %v", io.what, j, io.got[j], io.want[j]))
			}
		}
	}
	return strings.Join(out, "\n")
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
