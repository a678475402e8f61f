package compare

import (
	"math"
	"testing"
)

// TestJSDByHand: pairs worked out by hand, in bits.
func TestJSDByHand(t *testing.T) {
	// p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4); KL(p||m) = 1/2 log2(2/3) + 1/2 log2(2), KL(q||m) = log2(4/3).
	half := 0.5*math.Log2(2.0/3) + 0.5 + math.Log2(4.0/3)
	for _, c := range []struct {
		p, q []float64
		want float64
	}{
		{[]float64{0.2, 0.3, 0.5}, []float64{0.2, 0.3, 0.5}, 0},
		{[]float64{1, 0}, []float64{0, 1}, 1},
		{[]float64{0.5, 0.5}, []float64{1, 0}, half / 2},
		{[]float64{0.5, 0.5, 0}, []float64{0, 0, 1}, 1},
	} {
		if got := JSD(c.p, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("JSD(%v, %v) = %v, want %v", c.p, c.q, got, c.want)
		}
		if a, b := JSD(c.p, c.q), JSD(c.q, c.p); a != b {
			t.Errorf("JSD not symmetric: %v, %v", a, b)
		}
	}
	if got := 0.31127812445913283; math.Abs(half/2-got) > 1e-12 {
		t.Errorf("hand value %v, want %v", half/2, got)
	}
}

func TestCompareAndSummary(t *testing.T) {
	moves := []string{"e2e4", "d2d4", "g1f3"}
	r := Compare(moves, []float64{0.6, 0.3, 0.1}, []float64{0.2, 0.7, 0.1}, Value{Q: 0.1}, Value{Q: 0.3})
	if r.TopA != "e2e4" || r.TopB != "d2d4" || r.Agree || r.PA != 0.3 || r.PB != 0.2 || r.PTopA != 0.6 || r.PTopB != 0.7 || r.Legal != 3 {
		t.Errorf("record %+v", r)
	}
	s := &Summary{Keep: 1}
	vals := [][2]float64{{0.1, 0.3}, {0.5, 0.4}, {-0.2, -0.1}}
	for i, v := range vals {
		rr := r
		rr.A.Q, rr.B.Q, rr.JSD, rr.Agree, rr.FEN = v[0], v[1], float64(i), i == 0, string(rune('a'+i))
		s.Add(rr)
	}
	s.Finish()
	// Pearson by hand: a = (.1, .5, -.2), b = (.3, .4, -.1); means .1333, .2; deviations a' = (-.0333, .3667,
	// -.3333), b' = (.1, .2, -.3); sum a'b' = .17, sum a'^2 = .2467, sum b'^2 = .14.
	want := 0.17 / math.Sqrt(0.24666666666666667*0.14)
	if s.ValueCorr == nil || math.Abs(*s.ValueCorr-want) > 1e-9 {
		t.Errorf("value correlation %v, want %v", s.ValueCorr, want)
	}
	if math.Abs(s.Agreement-1.0/3) > 1e-12 || s.MeanJSD != 1 || len(s.Largest) != 1 || s.Largest[0].FEN != "c" {
		t.Errorf("summary %+v", s)
	}
}
