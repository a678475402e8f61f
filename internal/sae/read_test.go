package sae

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// Coverage's best F1 equals a brute-force count over every unit and threshold.
func TestCoverageBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const units, concepts, n = 7, 3, 500
	vals := make([][]float32, n)
	labels := make([][]bool, n)
	maxima := make([]float32, units)
	for i := range n {
		vals[i] = make([]float32, units)
		labels[i] = make([]bool, concepts)
		for q := range concepts {
			labels[i][q] = rng.IntN(3) == 0
		}
		for u := range units {
			if rng.IntN(2) == 0 {
				v := rng.Float32()
				if u == 2 && labels[i][1] { // unit 2 detects concept 1
					v += 1
				}
				vals[i][u] = v
				maxima[u] = max(maxima[u], v)
			}
		}
	}
	c := NewCoverage(maxima, concepts, DefaultFractions)
	for i := range n {
		var idx []int32
		var v []float32
		for u, x := range vals[i] {
			if x != 0 {
				idx, v = append(idx, int32(u)), append(v, x)
			}
		}
		c.Add(idx, v, labels[i])
	}
	for q := range concepts {
		want, wantU := 0.0, -1
		for u := range units {
			for _, fr := range DefaultFractions {
				var tp, pred, act int
				for i := range n {
					p := vals[i][u] > float32(fr)*maxima[u]
					if p {
						pred++
					}
					if labels[i][q] {
						act++
						if p {
							tp++
						}
					}
				}
				if f := 2 * float64(tp) / float64(pred+act); f > want {
					want, wantU = f, u
				}
			}
		}
		got, u, _ := c.Best(q)
		if got != want || u != wantU {
			t.Errorf("concept %d: best F1 %v (unit %d), brute force %v (unit %d)", q, got, u, want, wantU)
		}
	}
	if _, u, _ := c.Best(1); u != 2 {
		t.Errorf("the planted detector of concept 1 is unit 2, got %d", u)
	}
}

// FeatureStats keeps, per feature, the n positions with the largest values, as a full sort would.
func TestFeatureStatsTopMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const f, n, positions = 5, 3, 200
	type ex struct {
		v   float32
		pos int
	}
	all := make([][]ex, f)
	count := make([]int64, f)
	s := NewFeatureStats(f, n)
	for p := range positions {
		codes := make([]Code, 4)
		best := make([]float32, f)
		for v := range codes {
			for j := range f {
				if rng.IntN(3) == 0 {
					x := rng.Float32()
					codes[v].Index = append(codes[v].Index, int32(j))
					codes[v].Value = append(codes[v].Value, x)
					best[j] = max(best[j], x)
					count[j]++
				}
			}
		}
		for j, b := range best {
			if b > 0 {
				all[j] = append(all[j], ex{b, p})
			}
		}
		s.AddPosition(codes, func() any { return p })
	}
	for j := range f {
		sort.Slice(all[j], func(a, b int) bool { return all[j][a].v > all[j][b].v })
		top := s.Top(j)
		if len(top) != n || s.Count[j] != count[j] || s.Density(j) != float64(count[j])/float64(4*positions) {
			t.Fatalf("feature %d: %d examples, count %d (want %d)", j, len(top), s.Count[j], count[j])
		}
		for r, e := range top {
			if e.Value != all[j][r].v || e.Meta.(int) != all[j][r].pos || e.Values[e.Vector] != e.Value {
				t.Errorf("feature %d rank %d: %v at position %v, want %v at %v", j, r, e.Value, e.Meta, all[j][r].v, all[j][r].pos)
			}
		}
	}
}
