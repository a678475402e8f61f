package probe

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestEvaluateByHand checks scores and baselines on cases worked out by hand.
func TestEvaluateByHand(t *testing.T) {
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	// Regression: labels 1..4 (mean 2.5, SST 5), predictions 1,2,3,3 (SSE 1): R^2 0.8. The training mean 2
	// leaves 1+0+1+4 = 6: baseline R^2 1 - 6/5 = -0.2.
	e := evaluate([]float64{1, 2, 3, 3}, []float64{1, 2, 3, 4}, false, 2)
	near("r2", e.score, 0.8)
	near("r2 baseline", e.baseline, -0.2)
	if !math.IsNaN(e.auc) || !math.IsNaN(e.balanced) {
		t.Errorf("regression has auc %g, balanced accuracy %g", e.auc, e.balanced)
	}
	// Binary: 2 positives of 8, majority label 0 (baseline 6/8). Predictions: positives 0.9 and 0.3, negatives
	// 0.6, 0.2, 0.1, 0.1, 0.3, 0.05. Correct at 0.5: 1 of 2 positives, 5 of 6 negatives: accuracy 6/8,
	// balanced (1/2 + 5/6)/2 = 2/3. AUC: pairs (positive above negative) for 0.9: 6; for 0.3: above 0.2, 0.1,
	// 0.1, 0.05 (4), tied with 0.3 (half), below 0.6: 4.5. (6 + 4.5)/12 = 0.875.
	y := []float64{1, 0, 0, 0, 1, 0, 0, 0}
	p := []float64{0.9, 0.6, 0.2, 0.1, 0.3, 0.1, 0.3, 0.05}
	e = evaluate(p, y, true, 0)
	near("accuracy", e.score, 0.75)
	near("majority rate", e.baseline, 0.75)
	near("balanced accuracy", e.balanced, 2.0/3)
	near("auc", e.auc, 0.875)
	// A constant prediction ranks nothing: AUC 0.5; balanced accuracy 0.5.
	e = evaluate([]float64{0.2, 0.2, 0.2, 0.2}, []float64{1, 0, 1, 0}, true, 0)
	near("constant auc", e.auc, 0.5)
	near("constant balanced accuracy", e.balanced, 0.5)
	if e.verdict != Chance {
		t.Errorf("constant prediction: verdict %s", e.verdict)
	}
}

// TestROCAUCPairs compares the rank formula with the definition: the fraction of (positive, negative) pairs
// ordered correctly, ties counting half, on random scores with many ties.
func TestROCAUCPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for trial := range 20 {
		n := 5 + rng.IntN(200)
		s, y := make([]float64, n), make([]float64, n)
		for i := range s {
			s[i] = float64(rng.IntN(7)) / 7
			if rng.Float64() < 0.3+s[i]/3 {
				y[i] = 1
			}
		}
		y[0], y[1] = 0, 1
		var good, pairs float64
		for i := range n {
			for j := range n {
				if y[i] == 1 && y[j] == 0 {
					pairs++
					switch {
					case s[i] > s[j]:
						good++
					case s[i] == s[j]:
						good += 0.5
					}
				}
			}
		}
		if got, want := rocAUC(s, y), good/pairs; math.Abs(got-want) > 1e-12 {
			t.Fatalf("trial %d: rank auc %g, pairs %g", trial, got, want)
		}
	}
}

// TestVerdicts: on labels independent of the features every probe is within noise of its baseline and says
// chance; on labels the features determine it says above.
func TestVerdicts(t *testing.T) {
	const d, n = 8, 3000
	rng := rand.New(rand.NewPCG(9, 9))
	for _, binary := range []bool{false, true} {
		for _, related := range []bool{false, true} {
			f := NewFitter("m", []int{d}, FitOptions{Binary: binary, L2: 0.1, MaxRows: n, Seed: 1, Epochs: 5})
			for i := range n {
				x := make([]float32, d)
				for j := range x {
					x[j] = float32(rng.NormFloat64())
				}
				y := rng.NormFloat64() + 3
				if related {
					y += 2 * float64(x[0])
				}
				if binary {
					y = b2f(y > 3.5)
				}
				if err := f.Add(x, y, i%3 == 0); err != nil {
					t.Fatal(err)
				}
			}
			p, err := f.Fit()
			if err != nil {
				t.Fatal(err)
			}
			want := Chance
			if related {
				want = Above
			}
			if p.Verdict != want {
				t.Errorf("binary %v, related %v: verdict %s (score %g, baseline %g, auc %g), want %s", binary, related, p.Verdict, p.Score, p.Baseline, p.AUC, want)
			}
			if !related && math.Abs(p.Score-p.Baseline) > 0.03 {
				t.Errorf("binary %v, independent labels: score %g, baseline %g", binary, p.Score, p.Baseline)
			}
			if binary && !related && math.Abs(p.AUC-0.5) > 0.05 {
				t.Errorf("independent labels: auc %g", p.AUC)
			}
		}
	}
}

// TestLabelsCheck refuses constant labels and rare classes.
func TestLabelsCheck(t *testing.T) {
	labels := func(train, test []float64) Labels {
		var l Labels
		for _, y := range train {
			l.Train.add(y)
		}
		for _, y := range test {
			l.Test.add(y)
		}
		return l
	}
	rep := func(v float64, k int) []float64 {
		out := make([]float64, k)
		for i := range out {
			out[i] = v
		}
		return out
	}
	for _, c := range []struct {
		name        string
		l           Labels
		binary      bool
		want        string // "" when accepted
		mean, stdev float64
	}{
		{"constant binary", labels(rep(1, 50), rep(1, 10)), true, "is 1 on all 50", 1, 0},
		{"constant regression", labels(rep(3, 50), nil), false, "is 3 on all 50", 3, 0},
		{"rare class", labels(append(rep(0, 50), rep(1, 9)...), []float64{0, 1}), true, "only 9 of 59", 9.0 / 59, 0},
		{"held-out one-sided", labels(append(rep(0, 50), rep(1, 10)...), rep(0, 5)), true, "", 1.0 / 6, 0},
		{"fine binary", labels(append(rep(0, 50), rep(1, 10)...), []float64{0, 1}), true, "", 1.0 / 6, 0},
		{"fine regression", labels([]float64{1, 2, 3, 4}, nil), false, "", 2.5, math.Sqrt(1.25)},
		{"empty", labels(nil, nil), false, "no training", 0, 0},
	} {
		err := c.l.Check(c.binary, 10)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if math.Abs(c.l.Train.Mean-c.mean) > 1e-12 || (c.stdev > 0 && math.Abs(c.l.Train.Std-c.stdev) > 1e-12) {
			t.Errorf("%s: mean %g std %g, want %g %g", c.name, c.l.Train.Mean, c.l.Train.Std, c.mean, c.stdev)
		}
	}
}
