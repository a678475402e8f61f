package probe

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bilinearPosition draws c channels over 64 squares (channel-major, a shifted and scaled Gaussian so that
// the standardisation matters) and an anchor square; logits gives the true logit of every square.
func bilinearPosition(rng *rand.Rand, c int, logits func(x []float32, anchor int) [64]float64) ([]float32, int, [64]int, [64]float64) {
	x := make([]float32, c*64)
	for ch := range c {
		for sq := range 64 {
			x[ch*64+sq] = float32(2 + 3*rng.NormFloat64())
		}
	}
	anchor := rng.IntN(64)
	t := logits(x, anchor)
	var y [64]int
	best := 0
	for sq, v := range t {
		if v > t[best] {
			best = sq
		}
	}
	y[best] = 1
	return x, anchor, y, t
}

// centredCorrelation is Pearson's correlation of a and b after removing each position's mean (logits are
// defined up to a constant per position).
func centredCorrelation(a, b [][64]float64) float64 {
	var sab, saa, sbb float64
	for p := range a {
		var ma, mb float64
		for sq := range 64 {
			ma += a[p][sq] / 64
			mb += b[p][sq] / 64
		}
		for sq := range 64 {
			da, db := a[p][sq]-ma, b[p][sq]-mb
			sab += da * db
			saa += da * da
			sbb += db * db
		}
	}
	return sab / math.Sqrt(saa*sbb)
}

// TestBilinearRecoversMap: labels are the argmax over squares of x_i' W z, z the anchor square's
// activations and W a random rank-2 map; the bilinear probe, penalty cross-validated, finds the labelled
// square on held-out positions and its logits correlate with the true ones. A linear probe does much worse
// (it only sees the anchor square's own x_a' W x_a), which shows the data need the bilinear form.
func TestBilinearRecoversMap(t *testing.T) {
	const c, rank = 8, 2
	rng := rand.New(rand.NewPCG(5, 5))
	u, v := make([][]float64, rank), make([][]float64, rank)
	for k := range rank {
		u[k], v[k] = make([]float64, c), make([]float64, c)
		for ch := range c {
			u[k][ch], v[k][ch] = rng.NormFloat64(), rng.NormFloat64()
		}
	}
	truth := func(x []float32, anchor int) [64]float64 {
		var s [64]float64
		for sq := range 64 {
			for k := range rank {
				var a, b float64
				for ch := range c {
					a += u[k][ch] * float64(x[ch*64+sq])
					b += v[k][ch] * float64(x[ch*64+anchor])
				}
				s[sq] += a * b
			}
		}
		return s
	}
	opts := FitOptions{Grid: BilinearGrid(), MaxRows: 4000, Seed: 1, Bilinear: true, Rank: 4}
	f := NewSquareFitter("m", c, 2, true, opts)
	lin := NewSquareFitter("m", c, 2, true, FitOptions{Grid: DefaultGrid(), MaxRows: 4000, Seed: 1})
	var testX [][]float32
	var testA []int
	var testT [][64]float64
	for i := range 900 {
		x, anchor, y, tr := bilinearPosition(rng, c, truth)
		hold := i%5 == 0
		if err := f.AddAnchored(x, y, anchor, i/2, hold); err != nil {
			t.Fatal(err)
		}
		if err := lin.Add(x, y, i/2, hold); err != nil {
			t.Fatal(err)
		}
		if hold {
			testX, testA, testT = append(testX, x), append(testA, anchor), append(testT, tr)
		}
	}
	p, err := f.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.Form != FormBilinear || p.Context != "anchor" || p.Rank != 4 || p.Test != 180 || p.Train != 720 || len(p.CV) != len(BilinearGrid()) {
		t.Fatalf("probe %s/%s rank %d, %d/%d positions, %d CV points", p.Form, p.Context, p.Rank, p.Train, p.Test, len(p.CV))
	}
	var got [][64]float64
	for i, x := range testX {
		got = append(got, p.BilinearScores(x, testA[i]))
	}
	corr := centredCorrelation(got, testT)
	t.Logf("bilinear: held-out top-1 %.3f (baseline %.3f), train %.3f, l2 %g, logit correlation %.4f", p.Score, p.Baseline, p.Train1, p.L2, corr)
	if p.Score < 0.9 || p.Verdict != Above || corr < 0.95 {
		t.Errorf("bilinear: held-out top-1 %.3f, verdict %s, logit correlation %.4f; want >= 0.9, above, >= 0.95", p.Score, p.Verdict, corr)
	}
	lp, err := lin.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("linear: held-out top-1 %.3f", lp.Score)
	if lp.Score > p.Score-0.3 {
		t.Errorf("linear probe reads an anchor-dependent map about as well: top-1 %.3f", lp.Score)
	}
	// Deterministic: the same positions give the same probe.
	g := NewSquareFitter("m", c, 2, true, opts)
	for i := range f.fitSet.x {
		if err := g.AddAnchored(f.fitSet.x[i], f.fitSet.y[i], f.fitSet.anchor[i], i, false); err != nil {
			t.Fatal(err)
		}
	}
	g.fitSet.fold = slices.Clone(f.fitSet.fold) // the same folds as f
	q, err := g.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if q.L2 != p.L2 || !slices.Equal(q.Left[0], p.Left[0]) || !slices.Equal(q.RightBias, p.RightBias) {
		t.Errorf("two fits on the same positions differ: l2 %g vs %g", q.L2, p.L2)
	}
}

// TestBilinearLinearData: labels are the argmax of a linear map x_i . w; the bilinear probe (context: the
// mean over squares) is well above the baseline, and close to the linear probe.
func TestBilinearLinearData(t *testing.T) {
	const c = 8
	rng := rand.New(rand.NewPCG(6, 6))
	w := make([]float64, c)
	for ch := range w {
		w[ch] = rng.NormFloat64()
	}
	truth := func(x []float32, _ int) [64]float64 {
		var s [64]float64
		for sq := range 64 {
			for ch := range c {
				s[sq] += w[ch] * float64(x[ch*64+sq])
			}
		}
		return s
	}
	f := NewSquareFitter("m", c, 2, true, FitOptions{L2: 1e-3, MaxRows: 4000, Seed: 1, Bilinear: true})
	lin := NewSquareFitter("m", c, 2, true, FitOptions{Grid: DefaultGrid(), MaxRows: 4000, Seed: 1})
	for i := range 600 {
		x, _, y, _ := bilinearPosition(rng, c, truth)
		if err := f.Add(x, y, i, i%5 == 0); err != nil {
			t.Fatal(err)
		}
		if err := lin.Add(x, y, i, i%5 == 0); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lp, err := lin.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("linear map: bilinear top-1 %.3f (l2 %g, rank %d, context %s), linear %.3f, baseline %.3f", p.Score, p.L2, p.Rank, p.Context, lp.Score, p.Baseline)
	if p.Context != "mean" || p.Rank != c || p.L2 != 1e-3 {
		t.Errorf("context %s, rank %d, l2 %g; want mean, %d (the channels), 1e-3", p.Context, p.Rank, p.L2, c)
	}
	if p.Verdict != Above || p.Score < p.Baseline+0.5 || p.Score < lp.Score-0.1 {
		t.Errorf("bilinear top-1 %.3f (%s), baseline %.3f, linear %.3f", p.Score, p.Verdict, p.Baseline, lp.Score)
	}
}

// TestBilinearGradient compares the objective's gradient with central finite differences, in both
// activation layouts.
func TestBilinearGradient(t *testing.T) {
	const c, rank, n = 5, 3, 7
	rng := rand.New(rand.NewPCG(7, 7))
	for _, sqMajor := range []bool{false, true} {
		d := &bilinearData{c: c, cs: 64, ss: 1, inv: make([]float64, c)}
		if sqMajor {
			d.cs, d.ss = 1, c
		}
		for ch := range c {
			d.inv[ch] = 0.5 + rng.Float64()
		}
		idx := addRandomPositions(d, rng, n)
		theta := bilinearInit(3, rank, c)
		grad := make([]float64, len(theta))
		d.objective(theta, grad, idx, 0.01, rank)
		for j := range theta {
			const h = 1e-5
			tp, tm := slices.Clone(theta), slices.Clone(theta)
			tp[j] += h
			tm[j] -= h
			fd := (d.objective(tp, nil, idx, 0.01, rank) - d.objective(tm, nil, idx, 0.01, rank)) / (2 * h)
			if math.Abs(fd-grad[j]) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("square-major %v: d/dtheta[%d] = %g, finite differences %g", sqMajor, j, grad[j], fd)
			}
		}
	}
}

// addRandomPositions appends n positions of normal activations and query vectors and a uniform target
// square to d, and returns their indices.
func addRandomPositions(d *bilinearData, rng *rand.Rand, n int) []int {
	var idx []int
	for range n {
		x := make([]float32, 64*d.c)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		z := make([]float64, d.c+1)
		for j := range z {
			z[j] = rng.NormFloat64()
		}
		idx = append(idx, len(d.x))
		d.x, d.z, d.y = append(d.x, x), append(d.z, z), append(d.y, rng.IntN(64))
	}
	return idx
}

// BenchmarkBilinearObjective is one loss and gradient evaluation over 500 positions of 64 channels, rank 32.
func BenchmarkBilinearObjective(b *testing.B) {
	const c, rank, n = 64, 32, 500
	rng := rand.New(rand.NewPCG(8, 8))
	d := &bilinearData{c: c, cs: 64, ss: 1, inv: make([]float64, c)}
	idx := addRandomPositions(d, rng, n)
	for ch := range c {
		d.inv[ch] = 1
	}
	theta := bilinearInit(1, rank, c)
	grad := make([]float64, len(theta))
	for b.Loop() {
		d.objective(theta, grad, idx, 0.01, rank)
	}
}
