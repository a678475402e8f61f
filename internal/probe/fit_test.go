package probe

import (
	"math"
	"math/rand/v2"
	"testing"
)

// synthetic draws rows x (d features, one constant) and labels y = w.x + b + noise.
func synthetic(n, d int, noise float64, seed uint64) (xs [][]float32, ys []float64, w []float64, b float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	w = make([]float64, d)
	for j := range w {
		w[j] = rng.NormFloat64()
	}
	w[d-1] = 0 // the constant feature carries nothing
	b = 3
	for range n {
		x := make([]float32, d)
		y := b
		for j := range x {
			if j == d-1 {
				x[j] = 2
			} else {
				x[j] = float32(rng.NormFloat64()*float64(j%3+1) + float64(j%5))
			}
			y += w[j] * float64(x[j])
		}
		xs = append(xs, x)
		ys = append(ys, y+noise*rng.NormFloat64())
	}
	return xs, ys, w, b
}

// TestRidgeRecoversWeights fits noiseless linear data: with a tiny penalty both solvers (rows kept, and the
// streamed normal equations once MaxRows is exceeded) recover the generating weights and bias.
func TestRidgeRecoversWeights(t *testing.T) {
	const d = 12
	xs, ys, w, b := synthetic(400, d, 0, 1)
	for _, maxRows := range []int{1000, 50} {
		f := NewFitter("m", []int{d}, FitOptions{L2: 1e-9, MaxRows: maxRows})
		for i := range xs {
			if err := f.Add(xs[i], ys[i], i%5 == 0); err != nil {
				t.Fatal(err)
			}
		}
		if (f.gram != nil) != (maxRows < 400) {
			t.Fatalf("max rows %d: normal equations used = %v", maxRows, f.gram != nil)
		}
		p, err := f.Fit()
		if err != nil {
			t.Fatal(err)
		}
		for j := range w {
			if math.Abs(float64(p.Weights[j])-w[j]) > 1e-4 {
				t.Errorf("max rows %d: w[%d] = %g, want %g", maxRows, j, p.Weights[j], w[j])
			}
		}
		// The constant feature's weight is 0, so the bias is b exactly.
		if math.Abs(p.Bias-b) > 1e-3 {
			t.Errorf("max rows %d: bias %g, want %g", maxRows, p.Bias, b)
		}
		if p.Score < 0.999999 || p.TrainScore < 0.999999 || p.Train != 320 || p.Test != min(80, maxRows/2) {
			t.Errorf("max rows %d: R^2 %g (train %g) on %d/%d rows", maxRows, p.Score, p.TrainScore, p.Train, p.Test)
		}
	}
}

// TestRidgeSolversAgree checks that the streamed normal equations give the stored-rows solution with a real
// penalty, on noisy data.
func TestRidgeSolversAgree(t *testing.T) {
	const d = 30
	xs, ys, _, _ := synthetic(300, d, 2, 2)
	var probes []*Probe
	for _, maxRows := range []int{1000, 10} {
		f := NewFitter("m", []int{d}, FitOptions{L2: 0.5, MaxRows: maxRows})
		for i := range xs {
			_ = f.Add(xs[i], ys[i], false)
		}
		p, err := f.Fit()
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, p)
	}
	for j := range probes[0].Weights {
		if math.Abs(float64(probes[0].Weights[j]-probes[1].Weights[j])) > 1e-5 {
			t.Fatalf("w[%d]: rows %g, normal equations %g", j, probes[0].Weights[j], probes[1].Weights[j])
		}
	}
	if math.Abs(probes[0].TrainScore-probes[1].TrainScore) > 1e-6 {
		t.Errorf("train R^2: rows %g, normal equations %g", probes[0].TrainScore, probes[1].TrainScore)
	}
	// A penalty shrinks the fit: its training R^2 is below 1 but far above 0.
	if s := probes[0].TrainScore; s > 0.9999 || s < 0.5 {
		t.Errorf("penalised training R^2 %g", s)
	}
}

// TestLogisticSeparates fits a logistic probe on labels given by the sign of a linear function.
func TestLogisticSeparates(t *testing.T) {
	const d = 10
	xs, ys, _, _ := synthetic(2000, d, 0, 3)
	var mean float64
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	f := NewFitter("m", []int{d}, FitOptions{Binary: true, L2: 1e-4, MaxRows: 1000, Seed: 1, Epochs: 30})
	for i := range xs {
		label := 0.0
		if ys[i] > mean {
			label = 1
		}
		_ = f.Add(xs[i], label, i%4 == 0)
	}
	p, err := f.Fit()
	if err != nil {
		t.Fatal(err)
	}
	if p.Metric != "accuracy" || p.Score < 0.95 || p.Train != 1500 || p.Test != 500 { // held-out sample of max rows / 2
		t.Errorf("held-out %s %g, %d train rows (sample of 1000), %d held out", p.Metric, p.Score, p.Train, p.Test)
	}
}

func TestInHoldout(t *testing.T) {
	n := 0
	for r := range 10000 {
		if InHoldout(1, 0.2, r) {
			n++
		}
		if InHoldout(1, 0.2, r) != InHoldout(1, 0.2, r) {
			t.Fatal("not deterministic")
		}
	}
	if n < 1800 || n > 2200 {
		t.Errorf("%d of 10000 records held out at 0.2", n)
	}
	if InHoldout(1, 0, 5) || !InHoldout(1, 1, 5) {
		t.Error("fractions 0 and 1 are not honoured")
	}
}

func benchFitter(b *testing.B, d, rows, maxRows int) {
	xs, ys, _, _ := synthetic(rows, d, 1, 5)
	b.ResetTimer()
	for range b.N {
		f := NewFitter("m", []int{d}, FitOptions{L2: 0.1, MaxRows: maxRows})
		for i := range xs {
			_ = f.Add(xs[i], ys[i], false)
		}
		if _, err := f.Fit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRidgeRows fits 2000 rows of 1024 features kept in memory (conjugate gradients over the rows).
func BenchmarkRidgeRows(b *testing.B) { benchFitter(b, 1024, 2000, 4000) }

// BenchmarkRidgeGram fits the same rows through the streamed normal equations.
func BenchmarkRidgeGram(b *testing.B) { benchFitter(b, 1024, 2000, 1) }
