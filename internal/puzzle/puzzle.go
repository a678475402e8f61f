// Package puzzle grades networks on lichess puzzles: per-puzzle metrics over the solution line (the
// definitions of lczerolens 0.3.3's play/puzzle.py), summaries by rating bucket and theme (a leaderboard of
// several nets), and leela-interp's selection of puzzles with a strong and a weak net. It reads the line as
// the network saw it, one Step per position; running the network is the pipeline's.
package puzzle

import (
	"fmt"
	"math"
	"sort"
)

// Step is one position of a puzzle's line as a network saw it: Ply 1 is the puzzle position (after the
// opponent's first move), odd plies are the solver's moves, even plies the opponent's replies.
type Step struct {
	Ply   int
	Move  string  // the solution's move there (UCI)
	P     float64 // the network's probability of Move over the legal moves
	Top   string  // the network's most probable legal move
	Legal int     // number of legal moves
}

// Result is one puzzle graded for one network: a line of puzzles.jsonl.
type Result struct {
	ID     string   `json:"id"`
	Model  string   `json:"model"`
	Rating int      `json:"rating"`
	Themes []string `json:"themes"`
	// Score is the fraction of the solver's moves where the network's argmax is the solution move.
	Score float64 `json:"score"`
	// Perplexity is the product over the solver's n moves of p^(-1/n); NormalizedPerplexity uses
	// (legal-move count * p) instead of p, so that 1 is a uniform guess.
	Perplexity           float64 `json:"perplexity"`
	NormalizedPerplexity float64 `json:"normalized_perplexity"`
	Solved               bool    `json:"solved"` // every solver move is the argmax
	// PVProbs is p of every solution move, both sides, in order.
	PVProbs []float64 `json:"pv_probs"`
	// WDL is the network's win/draw/loss at the puzzle position (side to move's view), nil without a WDL head.
	WDL []float64 `json:"wdl"`
}

// minP stands in for a probability that underflowed to 0 in float32, so that a perplexity stays finite
// (JSON has no infinity); it is the smallest positive float32.
const minP = math.SmallestNonzeroFloat32

// Grade computes a puzzle's metrics from its line, steps[k] being ply k+1 (the whole solution).
func Grade(id, model string, rating int, themes []string, steps []Step, wdl []float64) (Result, error) {
	r := Result{ID: id, Model: model, Rating: rating, Themes: themes, WDL: wdl, PVProbs: make([]float64, len(steps)), Solved: true}
	if len(steps) == 0 {
		return r, fmt.Errorf("puzzle %s: no solution move", id)
	}
	var n, hits int
	var logP, logNorm float64
	for k, s := range steps {
		if s.Ply != k+1 {
			return r, fmt.Errorf("puzzle %s: step %d is ply %d, want %d", id, k, s.Ply, k+1)
		}
		r.PVProbs[k] = s.P
		if !Solver(s.Ply) {
			continue
		}
		n++
		if s.Top == s.Move {
			hits++
		} else {
			r.Solved = false
		}
		p := max(s.P, minP)
		logP += math.Log(p)
		logNorm += math.Log(float64(s.Legal) * p)
	}
	r.Score = float64(hits) / float64(n)
	r.Perplexity = math.Exp(-logP / float64(n))
	r.NormalizedPerplexity = math.Exp(-logNorm / float64(n))
	return r, nil
}

// Solver reports whether ply (1 = the puzzle position) is the solver's move.
func Solver(ply int) bool { return ply%2 == 1 }

// Buckets are the rating buckets of the summary, lower bounds inclusive.
var Buckets = []struct {
	Name string
	Min  int
}{{"<1000", math.MinInt}, {"1000-1499", 1000}, {"1500-1999", 1500}, {"2000-2499", 2000}, {">=2500", 2500}}

// Bucket returns the name of rating's bucket.
func Bucket(rating int) string {
	name := Buckets[0].Name
	for _, b := range Buckets {
		if rating >= b.Min {
			name = b.Name
		}
	}
	return name
}

// Tally is the solve rate and mean score of a group of puzzles.
type Tally struct {
	Count     int     `json:"count"`
	Solved    int     `json:"solved"`
	SolveRate float64 `json:"solve_rate"`
	MeanScore float64 `json:"mean_score"`
	sumScore  float64
}

func (t *Tally) add(r Result) {
	t.Count++
	if r.Solved {
		t.Solved++
	}
	t.sumScore += r.Score
	t.SolveRate = float64(t.Solved) / float64(t.Count)
	t.MeanScore = t.sumScore / float64(t.Count)
}

// ModelSummary is one network's line of the leaderboard.
type ModelSummary struct {
	Model    string            `json:"model"`
	Overall  Tally             `json:"overall"`
	ByRating map[string]*Tally `json:"by_rating"` // every bucket of Buckets, empty ones with count 0
	ByTheme  map[string]*Tally `json:"by_theme"`
}

// Summarize groups results by model (in order of first appearance), rating bucket and theme.
func Summarize(results []Result) []*ModelSummary {
	var out []*ModelSummary
	byModel := map[string]*ModelSummary{}
	for _, r := range results {
		m := byModel[r.Model]
		if m == nil {
			m = &ModelSummary{Model: r.Model, ByRating: map[string]*Tally{}, ByTheme: map[string]*Tally{}}
			for _, b := range Buckets {
				m.ByRating[b.Name] = &Tally{}
			}
			byModel[r.Model] = m
			out = append(out, m)
		}
		m.Overall.add(r)
		m.ByRating[Bucket(r.Rating)].add(r)
		for _, th := range r.Themes {
			t := m.ByTheme[th]
			if t == nil {
				t = &Tally{}
				m.ByTheme[th] = t
			}
			t.add(r)
		}
	}
	return out
}

// Themes returns the themes of the summaries, most frequent first (then by name).
func Themes(ms []*ModelSummary) []string {
	count := map[string]int{}
	for _, m := range ms {
		for th, t := range m.ByTheme {
			count[th] = max(count[th], t.Count)
		}
	}
	out := make([]string, 0, len(count))
	for th := range count {
		out = append(out, th)
	}
	sort.Slice(out, func(i, j int) bool {
		if count[out[i]] != count[out[j]] {
			return count[out[i]] > count[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
