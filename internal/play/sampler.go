package play

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Sampler kinds.
const (
	Argmax  = "argmax"  // the policy's most probable move
	Sample  = "sample"  // a move drawn from the policy sharpened or flattened by Temperature
	Utility = "utility" // lczerolens 0.3.3's ModelSampler: one-ply look-ahead utility
)

// Sampler chooses moves from a network's reading of a position (and, for Utility, of every child).
type Sampler struct {
	Kind string
	// Temperature: Sample draws from softmax(log p / T); Utility draws from softmax(utility / T), or takes
	// the argmax when T is 0 (ModelSampler's use_argmax).
	Temperature float64
	// Utility weights: alpha * Q of the child + beta * moves-left utility + gamma * log p.
	Alpha, Beta, Gamma float64
	// DrawScore is a draw's worth in Q (ModelSampler's draw_score); the rest shape lc0's moves-left utility
	// (m_max, m_slope, k_0, k_1, k_2, q_threshold).
	DrawScore, MMax, MSlope, K0, K1, K2, QThreshold float64
}

// DefaultSampler is argmax with ModelSampler's defaults for the utility parameters.
func DefaultSampler() Sampler {
	return Sampler{Kind: Argmax, Temperature: 1, Alpha: 1, Beta: 1, Gamma: 1, MMax: 0.0345, MSlope: 0.0027,
		K1: 1.6521, K2: -0.6521, QThreshold: 0.8}
}

// Validate reports a sampler that cannot choose.
func (s Sampler) Validate() error {
	switch s.Kind {
	case Argmax:
	case Sample:
		if !(s.Temperature > 0) || math.IsInf(s.Temperature, 0) {
			return fmt.Errorf("play: sampler sample: temperature %g: want a finite value above 0", s.Temperature)
		}
	case Utility:
		if !(s.Temperature >= 0) || math.IsInf(s.Temperature, 0) {
			return fmt.Errorf("play: sampler utility: temperature %g: want 0 (argmax) or a finite value above 0", s.Temperature)
		}
		if !(s.QThreshold >= 0 && s.QThreshold < 1) {
			return fmt.Errorf("play: sampler utility: q threshold %g: want 0 <= q < 1", s.QThreshold)
		}
	default:
		return fmt.Errorf("play: sampler %q: want argmax, sample or utility", s.Kind)
	}
	return nil
}

// LookAhead reports whether the sampler needs every child position evaluated.
func (s Sampler) LookAhead() bool { return s.Kind == Utility }

// ChildQ is a child position's expected score for the player who moved into it. A child without legal
// moves is scored by the rules (mate +1, stalemate DrawScore), not by the network, which was never trained
// on positions it cannot move from.
func (s Sampler) ChildQ(child Eval, inCheck bool) float64 {
	switch {
	case len(child.Moves) == 0 && inCheck:
		return 1
	case len(child.Moves) == 0:
		return s.DrawScore
	case child.WDL != nil:
		return -float64(child.WDL[0]) + s.DrawScore*float64(child.WDL[1]) + float64(child.WDL[2])
	}
	return -float64(child.Q)
}

// Utilities scores parent's legal moves: log p for Argmax and Sample; for Utility, given each child's Eval
// and whether its side to move is in check, ModelSampler's alpha * q + beta * m + gamma * log p with q the
// child's value for the mover and m = -sign(q) * clamp(m_slope * (mlh(child) - mlh(parent)), ±m_max) *
// (k_0 + k_1 s + k_2 s^2), s = max(|q| - q_threshold, 0) / (1 - q_threshold): when winning prefer moves
// that shorten the game, when losing ones that lengthen it. lczerolens adds the raw policy logits where
// log p is used here; they differ by one constant per position, which changes neither the argmax nor the
// softmax.
func (s Sampler) Utilities(parent Eval, children []Eval, inCheck []bool) []float64 {
	u := make([]float64, len(parent.Moves))
	for i := range u {
		u[i] = math.Log(float64(parent.P[i]))
	}
	if s.Kind != Utility {
		return u
	}
	for i := range u {
		q := s.ChildQ(children[i], inCheck[i])
		var m float64
		if parent.HasML && children[i].HasML && len(children[i].Moves) > 0 {
			d := s.MSlope * float64(children[i].MLH-parent.MLH)
			d = math.Max(-s.MMax, math.Min(s.MMax, d))
			sc := math.Max(math.Abs(q)-s.QThreshold, 0) / (1 - s.QThreshold)
			sign := 0.0
			if q > 0 {
				sign = 1
			} else if q < 0 {
				sign = -1
			}
			m = -sign * d * (s.K0 + s.K1*sc + s.K2*sc*sc)
		}
		u[i] = s.Alpha*q + s.Beta*m + s.Gamma*u[i]
	}
	return u
}

// Choose picks a move index from parent's legal moves given their utilities: the first maximum for Argmax
// (by probability, as predict ranks moves) and for Utility at temperature 0, else a draw from
// softmax(u / T) with rng.
func (s Sampler) Choose(parent Eval, u []float64, rng *rand.Rand) int {
	switch {
	case s.Kind == Argmax:
		best := 0
		for i, p := range parent.P {
			if p > parent.P[best] {
				best = i
			}
		}
		return best
	case s.Kind == Utility && s.Temperature == 0:
		best := 0
		for i, x := range u {
			if x > u[best] {
				best = i
			}
		}
		return best
	}
	m := math.Inf(-1)
	for _, x := range u {
		m = math.Max(m, x)
	}
	w := make([]float64, len(u))
	var sum float64
	for i, x := range u {
		w[i] = math.Exp((x - m) / s.Temperature)
		sum += w[i]
	}
	r := rng.Float64() * sum
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}
