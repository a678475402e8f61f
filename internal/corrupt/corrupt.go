// Package corrupt searches minimally corrupted positions for activation patching, as leela-interp's
// make_corruptions.py does: one small edit of the board that keeps a given move legal, makes it bad for a
// strong network and leaves a weak (sparring) network's view of the position as it was.
package corrupt

import (
	"context"
	"fmt"
	"math"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/play"
)

// Candidate is one edited position.
type Candidate struct {
	Edit string // "remove e4", "add white c5", "add black c5", or a piece's move "g1e2"
	Pos  *board.Position
}

// Candidates lists leela-interp's edits of p, in its order: for each square a1..h8, removing the pawn there
// or adding a white then a black pawn on it when empty; then every non-pawn piece moved to every empty
// square. Kept are the positions that pass Validate and in which move is legal.
func Candidates(p *board.Position, move board.Move) []Candidate {
	var out []Candidate
	keep := func(edit string, q *board.Position) {
		if q.Validate() == nil && q.IsLegal(move) {
			out = append(out, Candidate{Edit: edit, Pos: q})
		}
	}
	for sq := board.Square(0); sq < 64; sq++ {
		_, pt, ok := p.PieceAt(sq)
		switch {
		case ok && pt == board.Pawn:
			keep("remove "+sq.String(), p.Placed(sq, board.White, board.NoPieceType))
		case !ok:
			keep("add white "+sq.String(), p.Placed(sq, board.White, board.Pawn))
			keep("add black "+sq.String(), p.Placed(sq, board.Black, board.Pawn))
		}
	}
	for from := board.Square(0); from < 64; from++ {
		c, pt, ok := p.PieceAt(from)
		if !ok || pt == board.Pawn {
			continue
		}
		lifted := p.Placed(from, c, board.NoPieceType)
		for to := board.Square(0); to < 64; to++ {
			if _, _, occ := p.PieceAt(to); occ {
				continue
			}
			keep(from.String()+to.String(), lifted.Placed(to, c, pt))
		}
	}
	return out
}

// Thresholds of the selection, leela-interp's constants.
type Thresholds struct {
	MaxSparringDrop float64 // the sparring net's log-odds of the move may drop by less than this (0.2)
	MinValueDrop    float64 // the big net's W - L must drop by more than this (0.1)
	MaxBigP         float64 // the big net's probability of the move must fall below this (0.1)
	MaxJSD          float64 // no corruption when the best Jensen-Shannon divergence is above this (0.2)
}

// DefaultThresholds are make_corruptions.py's.
func DefaultThresholds() Thresholds {
	return Thresholds{MaxSparringDrop: 0.2, MinValueDrop: 0.1, MaxBigP: 0.1, MaxJSD: 0.2}
}

// Reading is what selection needs of one position (the original or a candidate): the big net's value
// (W - L) and probability of the move, and the sparring net's policy over the legal moves.
type Reading struct {
	BigValue  float64
	BigP      float64
	SparringP float64                // the sparring net's probability of the move
	Sparring  map[board.Move]float64 // the sparring net's policy
}

// Scores say how a candidate fared against the original.
type Scores struct {
	SparringLogOddsDrop float64 `json:"sparring_log_odds_drop"` // logit(p) original - logit(p) corrupted
	ValueDrop           float64 `json:"value_drop"`             // W - L original - corrupted, big net
	BigP                float64 `json:"big_p"`                  // the big net's probability of the move, corrupted
	BigPOriginal        float64 `json:"big_p_original"`
	JSD                 float64 `json:"jsd"` // Jensen-Shannon divergence of the sparring policies (nats)
	Pass                bool    `json:"-"`
}

func logit(p float64) float64 { return math.Log(p / (1 - p)) }

// Score compares a candidate's reading with the original's.
func Score(orig, cand Reading, th Thresholds) Scores {
	s := Scores{
		SparringLogOddsDrop: logit(orig.SparringP) - logit(cand.SparringP),
		ValueDrop:           orig.BigValue - cand.BigValue,
		BigP:                cand.BigP,
		BigPOriginal:        orig.BigP,
		JSD:                 JSD(orig.Sparring, cand.Sparring),
	}
	s.Pass = s.SparringLogOddsDrop < th.MaxSparringDrop && s.ValueDrop > th.MinValueDrop && s.BigP < th.MaxBigP
	return s
}

// JSD is the Jensen-Shannon divergence (natural log) of two move distributions; a move absent from one
// has probability 0 there (the legal moves of an edited position differ from the original's).
func JSD(p, q map[board.Move]float64) float64 {
	var kl1, kl2 float64
	for m, a := range p {
		if a > 0 {
			kl1 += a * math.Log(a/((a+q[m])/2))
		}
	}
	for m, b := range q {
		if b > 0 {
			kl2 += b * math.Log(b/((p[m]+b)/2))
		}
	}
	return (kl1 + kl2) / 2
}

// Select returns the index of the passing candidate with the lowest JSD (the first on ties), or -1 when
// none passes or the lowest JSD exceeds th.MaxJSD.
func Select(scores []Scores, th Thresholds) int {
	best := -1
	for i, s := range scores {
		if s.Pass && (best < 0 || s.JSD < scores[best].JSD) {
			best = i
		}
	}
	if best >= 0 && scores[best].JSD > th.MaxJSD {
		return -1
	}
	return best
}

// Result is the search's outcome for one position.
type Result struct {
	Move       board.Move
	Candidates int
	Passing    int
	Best       *Candidate // nil when no corruption qualifies
	Scores     Scores     // the best candidate's
}

// Search scores every candidate of g's current position (g carries the history the networks see for the
// original; candidates are read without history, as leela-interp reads corrupted FENs) with both networks
// in batched runs and selects one. move nil means the big network's top move in the original. A position
// without legal moves has no candidates.
func Search(ctx context.Context, big, sparring play.Evaluator, g *board.Game, move *board.Move, th Thresholds) (*Result, error) {
	orig, err := big.Evaluate(ctx, []*board.Game{g})
	if err != nil {
		return nil, err
	}
	if len(orig[0].Moves) == 0 {
		return &Result{}, nil // a finished game has no move to keep
	}
	var m board.Move
	if move != nil {
		m = *move
	} else {
		best := 0
		for i, p := range orig[0].P {
			if p > orig[0].P[best] {
				best = i
			}
		}
		m = orig[0].Moves[best]
	}
	if !g.Current().IsLegal(m) {
		return nil, fmt.Errorf("corrupt: %s: move %s is not legal", g.Current().FEN(), m)
	}
	cands := Candidates(g.Current(), m)
	res := &Result{Move: m, Candidates: len(cands)}
	if len(cands) == 0 {
		return res, nil
	}
	games := make([]*board.Game, 0, len(cands)+1)
	games = append(games, g)
	for _, c := range cands {
		games = append(games, board.NewGame(c.Pos))
	}
	bigEv, err := big.Evaluate(ctx, games[1:])
	if err != nil {
		return nil, err
	}
	bigEv = append(orig, bigEv...)
	sparEv, err := sparring.Evaluate(ctx, games)
	if err != nil {
		return nil, err
	}
	readings := make([]Reading, len(games))
	for i := range games {
		readings[i] = reading(bigEv[i], sparEv[i], m)
	}
	scores := make([]Scores, len(cands))
	for i := range cands {
		scores[i] = Score(readings[0], readings[i+1], th)
		if scores[i].Pass {
			res.Passing++
		}
	}
	if i := Select(scores, th); i >= 0 {
		res.Best, res.Scores = &cands[i], scores[i]
	}
	return res, nil
}

func reading(big, sparring play.Eval, m board.Move) Reading {
	r := Reading{BigValue: float64(big.Q), Sparring: make(map[board.Move]float64, len(sparring.Moves))}
	if big.WDL != nil {
		r.BigValue = float64(big.WDL[0] - big.WDL[2])
	}
	for i, mv := range big.Moves {
		if mv == m {
			r.BigP = float64(big.P[i])
		}
	}
	for i, mv := range sparring.Moves {
		r.Sparring[mv] = float64(sparring.P[i])
		if mv == m {
			r.SparringP = float64(sparring.P[i])
		}
	}
	return r
}
