package puzzle

import (
	"math"
	"testing"
)

// TestGradeByHand checks every metric against values worked out by hand for a 5-ply solution (solver plies
// 1, 3, 5; the opponent's replies at 2 and 4 count only in pv_probs).
func TestGradeByHand(t *testing.T) {
	steps := []Step{
		{Ply: 1, Move: "a", P: 0.5, Top: "a", Legal: 20},
		{Ply: 2, Move: "b", P: 0.9, Top: "x", Legal: 3},
		{Ply: 3, Move: "c", P: 0.25, Top: "y", Legal: 10},
		{Ply: 4, Move: "d", P: 0.1, Top: "d", Legal: 2},
		{Ply: 5, Move: "e", P: 0.8, Top: "e", Legal: 4},
	}
	r, err := Grade("id", "m", 1234, []string{"t"}, steps, []float64{0.2, 0.3, 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// score: 2 of 3 solver moves are the argmax; perplexity (0.5*0.25*0.8)^(-1/3) = 0.1^(-1/3);
	// normalized ((20*0.5)*(10*0.25)*(4*0.8))^(-1/3) = 80^(-1/3).
	want := map[string][2]float64{
		"score":      {r.Score, 2.0 / 3},
		"perplexity": {r.Perplexity, math.Pow(0.1, -1.0/3)},
		"normalized": {r.NormalizedPerplexity, math.Pow(80, -1.0/3)},
	}
	for k, v := range want {
		if math.Abs(v[0]-v[1]) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, v[0], v[1])
		}
	}
	if r.Solved {
		t.Errorf("solved with a missed solver move")
	}
	if len(r.PVProbs) != 5 || r.PVProbs[1] != 0.9 || r.PVProbs[3] != 0.1 {
		t.Errorf("pv_probs %v", r.PVProbs)
	}
	steps[2].Top = "c"
	if r, _ := Grade("id", "m", 0, nil, steps, nil); !r.Solved || r.Score != 1 {
		t.Errorf("all solver moves right: solved %v score %v", r.Solved, r.Score)
	}
	// A probability that underflowed keeps the perplexity finite.
	if r, _ := Grade("id", "m", 0, nil, []Step{{Ply: 1, P: 0, Legal: 3}}, nil); math.IsInf(r.Perplexity, 0) || r.Perplexity < 1e30 {
		t.Errorf("p = 0: perplexity %v, want finite and huge", r.Perplexity)
	}
}

func TestBucketsAndSummary(t *testing.T) {
	for rating, want := range map[int]string{0: "<1000", 999: "<1000", 1000: "1000-1499", 1499: "1000-1499", 2499: "2000-2499", 2500: ">=2500", 3300: ">=2500"} {
		if got := Bucket(rating); got != want {
			t.Errorf("Bucket(%d) = %s, want %s", rating, got, want)
		}
	}
	rs := []Result{
		{Model: "a", Rating: 900, Themes: []string{"fork", "short"}, Score: 1, Solved: true},
		{Model: "a", Rating: 950, Themes: []string{"short"}, Score: 0.5},
		{Model: "b", Rating: 2600, Themes: []string{"fork"}, Score: 0},
		{Model: "a", Rating: 2600, Themes: []string{"fork"}, Score: 1, Solved: true},
	}
	s := Summarize(rs)
	if len(s) != 2 || s[0].Model != "a" || s[1].Model != "b" {
		t.Fatalf("models %v", s)
	}
	a := s[0]
	if a.Overall.Count != 3 || a.Overall.Solved != 2 || math.Abs(a.Overall.MeanScore-2.5/3) > 1e-12 {
		t.Errorf("overall %+v", a.Overall)
	}
	if b := a.ByRating["<1000"]; b.Count != 2 || b.SolveRate != 0.5 || b.MeanScore != 0.75 {
		t.Errorf("<1000: %+v", b)
	}
	if f := a.ByTheme["fork"]; f.Count != 2 || f.SolveRate != 1 {
		t.Errorf("fork: %+v", f)
	}
	if got := Themes(s); len(got) != 2 || got[0] != "fork" {
		t.Errorf("themes %v", got)
	}
}

func TestFilterRules(t *testing.T) {
	o := FilterOptions{HardP: 0.05, CorrectP: 0.5, ForcingP: 0.7}
	if Eligible([]string{"mateIn1"}, 3) || Eligible(nil, 2) || !Eligible([]string{"fork"}, 3) {
		t.Errorf("eligibility: mate in 1 and <= 2 plies are dropped")
	}
	small := []Step{{Ply: 1, P: 0.01}, {Ply: 2, P: 0.8}, {Ply: 3, P: 0.3}}
	if !o.SparringKeeps(small) {
		t.Errorf("hard and forcing: kept")
	}
	small[1].P = 0.7 // not above
	if o.SparringKeeps(small) {
		t.Errorf("reply p 0.7 is not forcing")
	}
	big := []Step{{Ply: 1, P: 0.6}, {Ply: 2, P: 0.01}, {Ply: 3, P: 0.51}}
	if !o.BigKeeps(big) {
		t.Errorf("big net right on both solver moves (the reply does not count): kept")
	}
	big[2].P = 0.5
	if o.BigKeeps(big) {
		t.Errorf("min solver p 0.5 is not above 0.5")
	}
}
