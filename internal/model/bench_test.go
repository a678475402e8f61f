package model

import (
	"fmt"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// BenchmarkForward measures heads-only inference on maia-1100 (6x64 SE) and reports positions per second;
// lc0's own CPU backend does about 850-1250 positions/s on a 2-core machine.
func BenchmarkForward(b *testing.B) {
	path := testutil.Shared(b, "models", "maia-1100.onnx")
	rt := testRuntime(b)
	n, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	recs := testutil.ReadRefdump(b, refdumpFor(b, path))
	for _, batch := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			planes := make([]float32, 0, batch*Planes*64)
			for i := 0; i < batch; i++ {
				planes = append(planes, testutil.DecodePlanes(b, recs[i%len(recs)])...)
			}
			if _, err := n.Forward(rt, planes, batch); err != nil { // session creation outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := n.Forward(rt, planes, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "positions/s")
		})
	}
}
