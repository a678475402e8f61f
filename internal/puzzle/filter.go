package puzzle

import "slices"

// FilterOptions are leela-interp's thresholds for selecting puzzles with a big and a sparring net.
type FilterOptions struct {
	HardP    float64 // the sparring net's p of the first solution move must be below this
	CorrectP float64 // the big net's p of each of the solver's moves must be above this
	ForcingP float64 // the sparring net's p of the opponent's first reply must be above this
}

// Eligible reports whether a puzzle can be selected at all: no mate in 1, and a solution longer than 2 plies.
func Eligible(themes []string, solution int) bool {
	return solution > 2 && !slices.Contains(themes, "mateIn1")
}

// SparringKeeps reports whether the sparring net's line (steps[k] is ply k+1) makes the puzzle hard and
// forcing.
func (o FilterOptions) SparringKeeps(steps []Step) bool {
	return len(steps) >= 2 && steps[0].P < o.HardP && steps[1].P > o.ForcingP
}

// BigKeeps reports whether the big net gets every solver move right with p above CorrectP.
func (o FilterOptions) BigKeeps(steps []Step) bool {
	for _, s := range steps {
		if Solver(s.Ply) && !(s.P > o.CorrectP) {
			return false
		}
	}
	return len(steps) > 0
}
