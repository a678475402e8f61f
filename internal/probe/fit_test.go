package probe

import (
	"math"
	"math/rand/v2"
	"strings"
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

// BenchmarkRidgeRows fits 2000 rows of 1024 features kept in memory (the d x d system formed from the rows).
func BenchmarkRidgeRows(b *testing.B) { benchFitter(b, 1024, 2000, 4000) }

// BenchmarkRidgeGram fits the same rows through the streamed normal equations.
func BenchmarkRidgeGram(b *testing.B) { benchFitter(b, 1024, 2000, 1) }

// TestRidgeClosedForm solves a system small enough to do by hand. Rows (1,0), (-1,0), (0,1), (0,-1) with labels
// 3, -1, 5, 1: each feature has mean 0 and standard deviation 1/sqrt 2, so Z'Z = 4I and Z'(y - 2) = 4 sqrt 2
// per feature; with alpha = 1/4 (alpha n = 1) the standardised weights are 4 sqrt 2 / 5, the raw ones 8/5, and
// the bias the label mean, 2. Three constant features (value 7) make d = 5 > n = 4, the dual system; they
// must get weight 0. Every solver path must give exactly that.
func TestRidgeClosedForm(t *testing.T) {
	rows := [][]float32{{1, 0}, {-1, 0}, {0, 1}, {0, -1}}
	ys := []float64{3, -1, 5, 1}
	for _, c := range []struct {
		name     string
		consts   int
		maxRows  int
		wantGram bool
	}{
		{"rows, primal", 0, 100, false},
		{"rows, dual", 3, 100, false},
		{"normal equations", 0, 1, true},
		{"normal equations, constant features", 3, 1, true},
	} {
		d := 2 + c.consts
		f := NewFitter("m", []int{d}, FitOptions{L2: 0.25, MaxRows: c.maxRows})
		for i, r := range rows {
			x := append(append([]float32(nil), r...), make([]float32, c.consts)...)
			for j := 2; j < d; j++ {
				x[j] = 7
			}
			if err := f.Add(x, ys[i], false); err != nil {
				t.Fatal(err)
			}
		}
		if (f.gram != nil) != c.wantGram {
			t.Fatalf("%s: normal equations used = %v", c.name, f.gram != nil)
		}
		w, b, err := f.solve()
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float64{1.6, 1.6}, make([]float64, c.consts)...)
		for j := range want {
			if math.Abs(w[j]-want[j]) > 1e-12 {
				t.Errorf("%s: w[%d] = %.15g, want %g", c.name, j, w[j], want[j])
			}
		}
		if math.Abs(b-2) > 1e-12 {
			t.Errorf("%s: bias %.15g, want 2", c.name, b)
		}
	}
}

// TestRidgeRecoversExactly fits noiseless linear data with a vanishing penalty: the solution is the generating
// map, which a direct solve must reach to 1e-9 (the conjugate gradients it replaced stopped at a relative
// residual of 1e-4 and were off by up to 1e-4).
func TestRidgeRecoversExactly(t *testing.T) {
	const d = 12
	xs, ys, w, b := synthetic(400, d, 0, 1)
	for _, maxRows := range []int{1000, 50} {
		f := NewFitter("m", []int{d}, FitOptions{L2: 1e-14, MaxRows: maxRows})
		for i := range xs {
			if err := f.Add(xs[i], ys[i], false); err != nil {
				t.Fatal(err)
			}
		}
		got, gotB, err := f.solve()
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for j := range w {
			worst = math.Max(worst, math.Abs(got[j]-w[j]))
		}
		t.Logf("max rows %d: max |w - w true| %.2e, |b - b true| %.2e", maxRows, worst, math.Abs(gotB-b))
		if worst > 1e-9 || math.Abs(gotB-b) > 1e-9 {
			t.Errorf("max rows %d: weights off by %.2e, bias by %.2e, want <= 1e-9", maxRows, worst, math.Abs(gotB-b))
		}
	}
}

// TestRidgeDualMatchesPrimal: with fewer kept rows than features the rows are solved through the n x n dual
// system; the streamed normal equations solve the d x d primal one. The penalised solution is unique, so the
// two must agree, and so must the training R^2 computed from the rows and from the sums.
func TestRidgeDualMatchesPrimal(t *testing.T) {
	const d = 150
	xs, ys, _, _ := synthetic(60, d, 1, 6)
	var probes []*Probe
	var ws [][]float64
	for _, maxRows := range []int{1000, 1} {
		f := NewFitter("m", []int{d}, FitOptions{L2: 0.05, MaxRows: maxRows})
		for i := range xs {
			_ = f.Add(xs[i], ys[i], false)
		}
		w, _, err := f.solve()
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
		f = NewFitter("m", []int{d}, FitOptions{L2: 0.05, MaxRows: maxRows})
		for i := range xs {
			_ = f.Add(xs[i], ys[i], false)
		}
		p, err := f.Fit()
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, p)
	}
	var worst, wmax float64
	for j := range ws[0] {
		worst = math.Max(worst, math.Abs(ws[0][j]-ws[1][j]))
		wmax = math.Max(wmax, math.Abs(ws[1][j]))
	}
	t.Logf("max |w dual - w primal| %.2e (max |w| %.3g); train R^2 %.9f (rows) %.9f (sums)", worst, wmax, probes[0].TrainScore, probes[1].TrainScore)
	if worst > 1e-8*wmax {
		t.Errorf("dual and primal weights differ by %.2e (max |w| %.3g)", worst, wmax)
	}
	if math.Abs(probes[0].TrainScore-probes[1].TrainScore) > 1e-8 || probes[0].TrainScore > 0.9999 {
		t.Errorf("train R^2: rows %.12f, sums %.12f", probes[0].TrainScore, probes[1].TrainScore)
	}
}

// TestRidgeNotPositiveDefinite: a system the factorisation cannot take (here a negative penalty) is an error
// naming the module and the remedy, on every solver path, not a panic or a NaN probe.
func TestRidgeNotPositiveDefinite(t *testing.T) {
	xs, ys, _, _ := synthetic(40, 8, 1, 9)
	for _, c := range []struct {
		name    string
		d, rows int
		maxRows int
	}{{"rows, primal", 8, 40, 1000}, {"rows, dual", 8, 5, 1000}, {"normal equations", 8, 40, 1}} {
		f := NewFitter("block7", []int{c.d}, FitOptions{L2: -1, MaxRows: c.maxRows})
		for i := range c.rows {
			_ = f.Add(xs[i], ys[i], false)
		}
		_, err := f.Fit()
		if err == nil || !strings.Contains(err.Error(), "probe block7: ridge: the normal equations are not positive definite (use a larger --l2)") {
			t.Errorf("%s: error %v", c.name, err)
		}
	}
}

// useDirectMax sends systems with min(n, d) above m to conjugate gradients for the rest of the test.
func useDirectMax(t *testing.T, m int) {
	old := directMax
	directMax = m
	t.Cleanup(func() { directMax = old })
}

// useHeldRows lets conjugate gradients keep that many standardised rows of d features for the rest of the test.
func useHeldRows(t *testing.T, rows, d int) {
	old := heldBytes
	heldBytes = min(rows, 1<<30/(8*d)) * 8 * d
	t.Cleanup(func() { heldBytes = old })
}

// addAll feeds every row to a new fitter, none held out.
func addAll(t *testing.T, xs [][]float32, ys []float64, opts FitOptions) *Fitter {
	t.Helper()
	f := NewFitter("m", []int{len(xs[0])}, opts)
	for i := range xs {
		if err := f.Add(xs[i], ys[i], false); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestRidgeCGMatchesCholesky solves the same penalised systems by the factorisation and by conjugate gradients,
// from kept rows (primal and dual shapes) and from the streamed normal equations. Conjugate gradients stop at a
// relative residual cgTol, so their weights may differ by up to cgTol times the condition number of
// Z'Z + alpha n I, relative; over standardised features that is at most 1 + d/alpha (the largest eigenvalue of
// Z'Z is at most its trace, n d). The training R^2 of the streamed sums must be that of the rows with the
// weights found.
func TestRidgeCGMatchesCholesky(t *testing.T) {
	for _, c := range []struct {
		name          string
		d, rows, maxR int
		l2            float64
	}{
		{"rows, n > d", 30, 300, 1000, 0.5},
		{"rows, n < d", 150, 60, 1000, 0.05},
		{"normal equations", 30, 300, 10, 0.5},
		{"normal equations, d > n", 150, 60, 1, 0.05},
	} {
		xs, ys, _, _ := synthetic(c.rows, c.d, 2, 11)
		opts := FitOptions{L2: c.l2, MaxRows: c.maxR}
		var ws [][]float64
		var b []float64
		// The factorisation; then conjugate gradients with every kept row standardised once and held, none, and
		// 37 of them (the rest standardised again in every product, in blocks, the last one short).
		for _, held := range []int{-1, 1 << 30, 0, 37} {
			m := 0
			if held < 0 {
				m = 1 << 30
			} else {
				useHeldRows(t, held, c.d)
			}
			useDirectMax(t, m)
			f := addAll(t, xs, ys, opts)
			w, bias, err := f.solve()
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			ws, b = append(ws, w), append(b, bias)
			if f.n == 0 {
				continue
			}
			// The streamed sums' training R^2 against the rows' with the same weights.
			var mean, sse, sst float64
			for _, y := range ys {
				mean += y / float64(len(ys))
			}
			for i, x := range xs {
				pred := bias
				for j, v := range x {
					pred += w[j] * float64(v)
				}
				sse += (ys[i] - pred) * (ys[i] - pred)
				sst += (ys[i] - mean) * (ys[i] - mean)
			}
			if r2 := 1 - sse/sst; math.Abs(r2-f.gramR2) > 1e-9 {
				t.Errorf("%s, held rows %d: training R^2 from the sums %.12f, from the rows %.12f", c.name, held, f.gramR2, r2)
			}
		}
		for k := 1; k < len(ws); k++ {
			var diff, wmax float64
			for j := range ws[0] {
				diff = math.Max(diff, math.Abs(ws[0][j]-ws[k][j]))
				wmax = math.Max(wmax, math.Abs(ws[0][j]))
			}
			bound := cgTol * (1 + float64(c.d)/c.l2)
			t.Logf("%s, run %d: max |w cg - w cholesky| / max |w| = %.2e (bound %.1e), bias %.2e", c.name, k, diff/wmax, bound, math.Abs(b[0]-b[k]))
			if diff > bound*wmax || math.Abs(b[0]-b[k]) > bound*(wmax+math.Abs(b[0])) {
				t.Errorf("%s, run %d: conjugate gradients off the factorisation by %.2e (max |w| %.3g), bias %g vs %g", c.name, k, diff, wmax, b[k], b[0])
			}
		}
	}
}

// TestRidgeCGRecovers fits noiseless linear data with a vanishing penalty by conjugate gradients, from kept
// rows and from the streamed sums: they reach the generating map. Independent features make Z'Z close to n I
// (condition number about 2 here), so stopping at cgTol leaves errors of about cgTol.
func TestRidgeCGRecovers(t *testing.T) {
	useDirectMax(t, 0)
	const d = 12
	xs, ys, w, b := synthetic(400, d, 0, 1)
	for _, maxRows := range []int{1000, 50} {
		got, gotB, err := addAll(t, xs, ys, FitOptions{L2: 1e-14, MaxRows: maxRows}).solve()
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for j := range w {
			worst = math.Max(worst, math.Abs(got[j]-w[j]))
		}
		t.Logf("max rows %d: max |w - w true| %.2e, |b - b true| %.2e", maxRows, worst, math.Abs(gotB-b))
		if worst > 1e-5 || math.Abs(gotB-b) > 1e-4 {
			t.Errorf("max rows %d: weights off by %.2e, bias by %.2e", maxRows, worst, math.Abs(gotB-b))
		}
	}
}

// TestRidgeCGNotPositiveDefinite: conjugate gradients meet a direction of non-positive curvature in a system
// with a negative penalty and report it as the factorisation does, from kept rows and from the streamed sums.
func TestRidgeCGNotPositiveDefinite(t *testing.T) {
	useDirectMax(t, 0)
	xs, ys, _, _ := synthetic(40, 8, 1, 9)
	for _, maxRows := range []int{1000, 1} {
		f := NewFitter("block7", []int{8}, FitOptions{L2: -1, MaxRows: maxRows})
		for i := range xs {
			_ = f.Add(xs[i], ys[i], false)
		}
		_, err := f.Fit()
		if err == nil || !strings.Contains(err.Error(), "probe block7: ridge: the normal equations are not positive definite (use a larger --l2)") {
			t.Errorf("max rows %d: error %v", maxRows, err)
		}
	}
}
