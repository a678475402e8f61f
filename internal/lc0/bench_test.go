package lc0

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
)

// benchNet is maia-1100 (6 blocks x 64 filters, gzipped LINEAR16) from ../shared, else a generated net of
// the same shape, so the benchmark runs in a fresh checkout too.
func benchNet(b *testing.B) []byte {
	b.Helper()
	if raw, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "models", "maia-1100.pb.gz")); err == nil {
		return raw
	}
	return gzipped(b, marshal(b, genNet(GenSpec{Seed: 9, Blocks: 6, Filters: 64, SE: true, BatchNorm: true,
		Policy: "convolution", WDL: true, Encoding: pblczero.Weights_Layer_LINEAR16})))
}

// BenchmarkConvert measures what loading a weight file costs: gunzip, parse, decode and convert.
func BenchmarkConvert(b *testing.B) {
	raw := benchNet(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		n, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Convert(n, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvertMarshal adds serialising the graph, as model.Load does before creating a session.
func BenchmarkConvertMarshal(b *testing.B) {
	raw := benchNet(b)
	for b.Loop() {
		n, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		m, err := Convert(n, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := onnxgraph.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
