package autograd

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

const benchBatch = 256

// benchRun times session runs over preallocated tensors (ORT writes the outputs in place), reporting
// positions per second.
func benchRun(b *testing.B, m *pb.ModelProto, ins []string, inVals []ort.Value, outs []string) {
	b.Helper()
	raw, err := onnxgraph.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(raw, ins, outs, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Destroy(); err != nil {
			b.Error(err)
		}
	}()
	outVals := make([]ort.Value, len(outs))
	if err := s.Run(inVals, outVals); err != nil { // warm-up; lets ORT allocate the outputs once
		b.Fatal(err)
	}
	defer func() {
		for _, v := range outVals {
			if v != nil {
				if err := v.Destroy(); err != nil {
					b.Error(err)
				}
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := s.Run(inVals, outVals); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchBatch*b.N)/time.Since(start).Seconds(), "pos/s")
}

func benchNet(b testing.TB) (*pb.ModelProto, []ort.Value, func()) {
	b.Helper()
	needORT(b)
	m, _, err := onnxgraph.Read(filepath.Join(testutil.Shared(b, "models"), "maia-1100.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, benchBatch*112*64)
	for i := range x {
		if rng.Float64() < 0.1 {
			x[i] = 1
		}
	}
	planes, err := ort.NewTensor(ort.NewShape(benchBatch, 112, 8, 8), x)
	if err != nil {
		b.Fatal(err)
	}
	seed := make([]float32, 0, benchBatch*3)
	for range benchBatch {
		seed = append(seed, 1, 0, -1) // d(W - L)
	}
	seedT, err := ort.NewTensor(ort.NewShape(benchBatch, 3), seed)
	if err != nil {
		b.Fatal(errors.Join(err, planes.Destroy()))
	}
	return m, []ort.Value{planes, seedT}, func() {
		if err := errors.Join(planes.Destroy(), seedT.Destroy()); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkForwardBaseline: maia-1100 forward (policy and WDL), batch 256.
func BenchmarkForwardBaseline(b *testing.B) {
	m, vals, done := benchNet(b)
	defer done()
	benchRun(b, m, []string{planesInput}, vals[:1], []string{"/output/policy", "/output/wdl"})
}

// BenchmarkGradient: maia-1100 forward plus the gradient of W - L w.r.t. the input planes, batch 256, in one
// run. Compare its pos/s with BenchmarkForwardBaseline's.
func BenchmarkGradient(b *testing.B) {
	benchGradient(b, defaultOptions())
}

// BenchmarkGradientVariants measures the alternatives the defaults were chosen over.
func BenchmarkGradientVariants(b *testing.B) {
	for _, v := range []struct {
		name string
		opt  options
	}{
		{"default", defaultOptions()},
		{"relu-where", options{reluMask: "where"}},
		{"relu-sign", options{reluMask: "sign"}},
		{"conv-transpose", options{convTranspose: true}},
		{"runtime-broadcast", options{naiveBroadcast: true}},
		// Roughly the naive construction: ConvTranspose, sign masks, run-time broadcast reductions.
		{"naive", options{reluMask: "sign", convTranspose: true, naiveBroadcast: true}},
	} {
		b.Run(v.name, func(b *testing.B) { benchGradient(b, v.opt) })
	}
}

func benchGradient(b *testing.B, opt options) {
	m, vals, done := benchNet(b)
	defer done()
	bm, res, err := build(m, Spec{Seeds: []string{"/output/wdl"}, Wrt: []string{planesInput}}, opt)
	if err != nil {
		b.Fatal(err)
	}
	benchRun(b, bm, []string{planesInput, res.SeedInputs["/output/wdl"]}, vals,
		[]string{"/output/policy", "/output/wdl", res.Grads[planesInput]})
}
