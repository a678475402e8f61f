package probe

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestCVRidgeDualPrimalDirect compares the fold losses of the dual and primal systems with a direct solve of
// the centred ridge problem (LU on the dense d x d system, predictions from the explicit weights).
func TestCVRidgeDualPrimalDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const n, d = 40, 12
	z := mat.NewDense(n, d, nil)
	y := make([]float64, n)
	for i := range n {
		for j := range d {
			z.Set(i, j, rng.NormFloat64())
		}
		y[i] = z.At(i, 0) - 2*z.At(i, 3) + rng.NormFloat64()
	}
	var tr, va []int
	for i := range n {
		if i%4 == 1 {
			va = append(va, i)
		} else {
			tr = append(tr, i)
		}
	}
	grid := []float64{1e-3, 0.1, 10}
	kern := mat.NewSymDense(n, nil)
	kern.SymOuterK(1, z)
	dual, primal := cvRidgeDual(kern, y, tr, va, grid), cvRidgePrimal(z, y, tr, va, grid)
	for g, alpha := range grid {
		// Direct: centre on the training rows, solve (Zc'Zc + alpha n I) w = Zc'(y - mean).
		mean := make([]float64, d)
		var ym float64
		for _, i := range tr {
			for j := range d {
				mean[j] += z.At(i, j) / float64(len(tr))
			}
			ym += y[i] / float64(len(tr))
		}
		a := mat.NewDense(d, d, nil)
		b := mat.NewVecDense(d, nil)
		for _, i := range tr {
			for j := range d {
				b.SetVec(j, b.AtVec(j)+(z.At(i, j)-mean[j])*(y[i]-ym))
				for k := range d {
					a.Set(j, k, a.At(j, k)+(z.At(i, j)-mean[j])*(z.At(i, k)-mean[k]))
				}
			}
		}
		for j := range d {
			a.Set(j, j, a.At(j, j)+alpha*float64(len(tr)))
		}
		var w mat.VecDense
		if err := w.SolveVec(a, b); err != nil {
			t.Fatal(err)
		}
		var want float64
		for _, i := range va {
			p := ym
			for j := range d {
				p += w.AtVec(j) * (z.At(i, j) - mean[j])
			}
			want += (y[i] - p) * (y[i] - p)
		}
		if math.Abs(dual[g]-want) > 1e-8*want || math.Abs(primal[g]-want) > 1e-8*want {
			t.Errorf("alpha %g: dual %g, primal %g, direct %g", alpha, dual[g], primal[g], want)
		}
	}
}

// TestAutoPenalty: on noisy data where the Bayes-optimal penalty is known, cross-validation picks it within a
// decade and beats a weak penalty on held-out rows; on nearly noiseless data it picks the weakest.
//
// Features are standard normal, weights w_j ~ N(0, tau^2): the posterior mean is ridge with lambda =
// sigma^2/tau^2 on the summed loss, alpha = lambda/n on the mean loss (about 400/320 = 1.25 here).
func TestAutoPenalty(t *testing.T) {
	const n, d = 400, 100
	for _, c := range []struct {
		name      string
		sigma     float64
		lo, hi    float64 // accepted range of the chosen penalty
		beatsWeak bool
	}{
		{"noisy", 2, 1, 10, true},
		{"clean", 0.01, 1e-3, 1e-3, false},
	} {
		rng := rand.New(rand.NewPCG(5, 5))
		w := make([]float64, d)
		for j := range w {
			w[j] = 0.1 * rng.NormFloat64() // tau^2 = 0.01
		}
		auto := NewFitter("m", []int{d}, FitOptions{L2: 0.1, Grid: DefaultGrid(), MaxRows: n, Seed: 1})
		weak := NewFitter("m", []int{d}, FitOptions{L2: 1e-3, MaxRows: n, Seed: 1})
		for i := range 2 * n {
			x := make([]float32, d)
			y := 0.0
			for j := range x {
				x[j] = float32(rng.NormFloat64())
				y += w[j] * float64(x[j])
			}
			y += c.sigma * rng.NormFloat64()
			for _, f := range []*Fitter{auto, weak} {
				if err := f.AddGroup(x, y, i, i >= n*4/5 && i < n); err != nil { // 80 held out
					t.Fatal(err)
				}
			}
			if i == n-1 {
				break
			}
		}
		pa, err := auto.Fit()
		if err != nil {
			t.Fatal(err)
		}
		pw, err := weak.Fit()
		if err != nil {
			t.Fatal(err)
		}
		if pa.L2 < c.lo || pa.L2 > c.hi || len(pa.CV) != len(DefaultGrid()) {
			t.Errorf("%s: chose %g (curve %v), want %g..%g", c.name, pa.L2, pa.CV, c.lo, c.hi)
		}
		if c.beatsWeak && !(pa.Score > pw.Score+0.05 && pa.Score > 0) {
			t.Errorf("%s: held-out R^2 %g at %g, %g at 1e-3", c.name, pa.Score, pa.L2, pw.Score)
		}
	}
}

// TestAutoPenaltyGroups: rows come in groups of ten near-copies with a label drawn per group, unrelated to the
// features. Fitted on rows, a weak penalty memorises groups and seems to predict their copies; cross-validated
// over groups, it is seen to predict nothing, and a strong penalty wins.
func TestAutoPenaltyGroups(t *testing.T) {
	const groups, per, d = 60, 10, 80
	rng := rand.New(rand.NewPCG(6, 6))
	var xs [][]float32
	var ys []float64
	var gs []int
	for g := range groups {
		base := make([]float64, d)
		for j := range base {
			base[j] = rng.NormFloat64()
		}
		y := rng.NormFloat64()
		for range per {
			x := make([]float32, d)
			for j := range x {
				x[j] = float32(base[j] + 0.01*rng.NormFloat64())
			}
			xs, ys, gs = append(xs, x), append(ys, y), append(gs, g)
		}
	}
	choose := func(grouped bool) float64 {
		f := NewFitter("m", []int{d}, FitOptions{Grid: DefaultGrid(), MaxRows: 1000, Seed: 1})
		for i := range xs {
			g := gs[i]
			if !grouped {
				g = i
			}
			if err := f.AddGroup(xs[i], ys[i], g, false); err != nil {
				t.Fatal(err)
			}
		}
		a, _, err := f.crossValidate()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if byRow, byGroup := choose(false), choose(true); byGroup < 10 || byRow > 1 {
		t.Errorf("chosen penalty: %g over groups (want >= 10), %g over rows (want <= 1, the overfit the groups avoid)", byGroup, byRow)
	}
}

// TestAutoPenaltyLogistic: on labels unrelated to many features, logistic cross-validation picks a strong
// penalty; on labels a feature decides, a weak one (at most 0.1).
func TestAutoPenaltyLogistic(t *testing.T) {
	const n, d = 300, 60
	for _, related := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(7, 7))
		f := NewFitter("m", []int{d}, FitOptions{Binary: true, Grid: DefaultGrid(), MaxRows: n, Seed: 1, Epochs: 100})
		for i := range n {
			x := make([]float32, d)
			for j := range x {
				x[j] = float32(rng.NormFloat64())
			}
			y := b2f(rng.Float64() < 0.4)
			if related {
				y = b2f(x[0]+0.1*float32(rng.NormFloat64()) > 0.3)
			}
			if err := f.AddGroup(x, y, i, false); err != nil {
				t.Fatal(err)
			}
		}
		a, curve, err := f.crossValidate()
		if err != nil {
			t.Fatal(err)
		}
		if (related && a > 0.1) || (!related && a < 1) {
			t.Errorf("related %v: chose %g (curve %v)", related, a, curve)
		}
	}
}

// TestAutoPenaltyOneGroup: cross-validation needs two groups.
func TestAutoPenaltyOneGroup(t *testing.T) {
	f := NewFitter("m", []int{2}, FitOptions{Grid: DefaultGrid()})
	for i := range 10 {
		_ = f.AddGroup([]float32{float32(i), 1}, float64(i), 7, false)
	}
	if _, err := f.Fit(); err == nil {
		t.Error("one group cross-validated")
	}
}

// TestRareFeatureBounded: a feature that fired weakly on a few training rows is not scaled up by its tiny
// spread, so a held-out row where it fires strongly gets a prediction on the labels' scale.
func TestRareFeatureBounded(t *testing.T) {
	const n, d = 300, 20
	rng := rand.New(rand.NewPCG(8, 8))
	f := NewFitter("m", []int{d}, FitOptions{L2: 1e-3, MaxRows: n})
	for i := range n {
		x := make([]float32, d)
		for j := range d - 1 {
			x[j] = float32(rng.NormFloat64())
		}
		if i%50 == 0 {
			x[d-1] = 1e-3 // fires weakly on 6 rows, whose labels happen to be high
		}
		y := float64(x[0]) + 0.5*rng.NormFloat64() + 3*float64(x[d-1])*1e3
		if err := f.Add(x, y, false); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.Fit()
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, d)
	x[d-1] = 1 // a thousand times its training values
	if got := p.Predict(x, false); math.Abs(got) > 50 {
		t.Errorf("prediction %g on a row where the rare feature fires strongly", got)
	}
}
