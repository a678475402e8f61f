package model

import (
	"fmt"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestDefaultThreads stands in for machines of 3 and 0 CPUs and wants Threads 0 to mean one thread per CPU
// (at least one), in DefaultThreads and in the runtime's sessions, and an explicit count to be kept.
func TestDefaultThreads(t *testing.T) {
	saved := cpusAvailable
	t.Cleanup(func() { cpusAvailable = saved })
	cpusAvailable = func() int { return 3 }
	if got := DefaultThreads(); got != 3 {
		t.Errorf("DefaultThreads() = %d with 3 CPUs, want 3", got)
	}
	testRuntime(t)
	for _, tt := range []struct{ threads, want int }{{0, 3}, {2, 2}} {
		r, err := NewSessionCache(SessionOptions{Device: DeviceCPU, Threads: tt.threads})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Threads() != tt.want {
			t.Errorf("threads %d on 3 CPUs: runtime uses %d, want %d", tt.threads, r.Threads(), tt.want)
		}
		if _, err := Demo().Forward(r, make([]float32, Planes*64), 1); err != nil {
			t.Errorf("threads %d: %v", tt.threads, err)
		}
	}
	cpusAvailable = func() int { return 0 }
	if got := DefaultThreads(); got != 1 {
		t.Errorf("DefaultThreads() = %d when no CPU is counted, want 1", got)
	}
}

// BenchmarkBatchThreads runs maia-1100 over 2,048 positions in batches of 256, as batch does, with the
// default thread count and explicit ones: the default should match the best explicit setting.
func BenchmarkBatchThreads(b *testing.B) {
	path := testutil.Shared(b, "models", "maia-1100.onnx")
	testRuntime(b) // loads ONNX Runtime
	n, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	recs := testutil.ReadRefdump(b, refdumpFor(b, path))
	const positions, batch = 2048, 256
	planes := make([]float32, 0, batch*Planes*64)
	for i := range batch {
		planes = append(planes, testutil.DecodePlanes(b, recs[i%len(recs)])...)
	}
	counts := []int{0, 1, 2}
	if cpus := DefaultThreads(); cpus > 2 {
		counts = append(counts, cpus)
	}
	for _, threads := range counts {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			rt, err := NewSessionCache(SessionOptions{Device: DeviceCPU, Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			if _, err := n.Forward(rt, planes, batch); err != nil { // session creation outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				for range positions / batch {
					if _, err := n.Forward(rt, planes, batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(positions*b.N)/b.Elapsed().Seconds(), "positions/s")
		})
	}
}
