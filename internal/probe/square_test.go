package probe

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// squareData draws positions of c channels over 64 squares whose label on each square is class l when
// channel l is the largest of the first `classes` channels there (plus noise channels).
func squareData(rng *rand.Rand, c, classes int) ([]float32, [64]int) {
	x := make([]float32, c*64)
	var y [64]int
	for sq := range 64 {
		l := rng.IntN(classes)
		y[sq] = l
		for ch := range c {
			v := 0.1 * rng.NormFloat64()
			if ch == l {
				v += 1
			}
			x[ch*64+sq] = float32(v)
		}
	}
	return x, y
}

// TestSquareFitterClasses: a class written in the activations is read back near perfectly, above the
// per-square majority baseline, with the penalty cross-validated; the squared error from the sums agrees
// with the residuals computed row by row.
func TestSquareFitterClasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	const c, classes = 16, 5
	f := NewSquareFitter("m", c, classes, false, FitOptions{Grid: DefaultGrid(), MaxRows: 4000, Seed: 1})
	// The same activations laid out [square][channel], as attention bodies give them, fit the same probe.
	tf := NewSquareFitterLayout("m", c, classes, false, true, FitOptions{Grid: DefaultGrid(), MaxRows: 4000, Seed: 1})
	var rows [][]float32
	var labels [][64]int
	for i := range 300 {
		x, y := squareData(rng, c, classes)
		if err := f.Add(x, y, i/3, i%5 == 0); err != nil {
			t.Fatal(err)
		}
		xt := make([]float32, len(x))
		for ch := range c {
			for sq := range 64 {
				xt[sq*c+ch] = x[ch*64+sq]
			}
		}
		if err := tf.Add(xt, y, i/3, i%5 == 0); err != nil {
			t.Fatal(err)
		}
		if i%5 != 0 && f.fold(i/3) == 0 {
			rows, labels = append(rows, x), append(labels, y)
		}
	}
	p, err := f.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pt, err := tf.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pt.Score != p.Score || pt.L2 != p.L2 || math.Abs(pt.Weights[3][2]-p.Weights[3][2]) > 1e-9 {
		t.Errorf("square-major layout: accuracy %g at %g, channel-major %g at %g", pt.Score, pt.L2, p.Score, p.L2)
	}
	if p.Score < 0.99 || p.Baseline > 0.4 || p.Verdict != Above || p.Test != 60 || p.Train != 240 {
		t.Errorf("accuracy %g, baseline %g, verdict %s, %d/%d positions", p.Score, p.Baseline, p.Verdict, p.Train, p.Test)
	}
	// sse on fold 0 from its sums, against residuals row by row.
	w := mat.NewDense(c, classes, nil)
	for ch := range c {
		w.SetRow(ch, p.Weights[ch])
	}
	var want float64
	for i, x := range rows {
		for sq := range 64 {
			o := p.outputs(x, sq)
			for k := range classes {
				e := b2f(labels[i][sq] == k) - o[k]
				want += e * e
			}
		}
	}
	if got := sse(f.folds[0], w, p.Bias); math.Abs(got-want) > 1e-6*want {
		t.Errorf("sse from sums %g, row by row %g", got, want)
	}
}

// TestSquareFitterTop1: one square per position is marked by channel 0; top-1 finds it, a constant square
// does not.
func TestSquareFitterTop1(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	const c = 8
	f := NewSquareFitter("m", c, 2, true, FitOptions{Grid: DefaultGrid(), MaxRows: 4000, Seed: 1})
	for i := range 400 {
		x := make([]float32, c*64)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		var y [64]int
		target := rng.IntN(64)
		y[target] = 1
		x[target] += 6 // channel 0 on the target square
		if err := f.Add(x, y, i, i%4 == 0); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.Metric != "top1" || p.Score < 0.95 || p.Baseline > 0.1 || p.Verdict != Above {
		t.Errorf("top-1 %g (baseline %g, verdict %s)", p.Score, p.Baseline, p.Verdict)
	}
}
