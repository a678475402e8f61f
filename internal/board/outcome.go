package board

import "math/bits"

// Termination is why a game is over, by the rules alone (no resignation or
// agreement): what play adjudicates and writes into PGN Termination tags.
type Termination int8

// Terminations, NotOver first so the zero value means a game in progress.
const (
	NotOver Termination = iota
	Checkmate
	Stalemate
	InsufficientMaterial
	ThreefoldRepetition
	FiftyMoveRule
)

// String names the termination as PGN comments and tables show it.
func (t Termination) String() string {
	switch t {
	case Checkmate:
		return "checkmate"
	case Stalemate:
		return "stalemate"
	case InsufficientMaterial:
		return "insufficient material"
	case ThreefoldRepetition:
		return "threefold repetition"
	case FiftyMoveRule:
		return "fifty-move rule"
	}
	return "not over"
}

// Outcome is the game's termination under the rules and its PGN result
// ("1-0", "0-1", "1/2-1/2", or "*" while not over). Checkmate and stalemate
// come first: a mate delivered on the hundredth reversible half-move wins
// (FIDE 9.3 asks for a claim the mated side cannot make). The draws that
// FIDE leaves to a claim (threefold, fifty moves) end the game here, as an
// arbiter between engines does.
func (g *Game) Outcome() (Termination, string) {
	p := g.Current()
	if len(p.genLegal(make([]Move, 0, 64))) == 0 {
		if p.InCheck() {
			if p.stm == White {
				return Checkmate, "0-1"
			}
			return Checkmate, "1-0"
		}
		return Stalemate, "1/2-1/2"
	}
	switch {
	case p.InsufficientMaterial():
		return InsufficientMaterial, "1/2-1/2"
	case g.Repetitions() >= 2: // two earlier occurrences: the third time
		return ThreefoldRepetition, "1/2-1/2"
	case p.rule50 >= 100:
		return FiftyMoveRule, "1/2-1/2"
	}
	return NotOver, "*"
}

// Light and dark squares, for bishops that can never meet.
const lightSquares uint64 = 0x55AA55AA55AA55AA

// InsufficientMaterial reports positions where no sequence of legal moves
// can mate: king against king with at most one minor piece, or kings with
// bishops all on squares of one colour (the usual engine rule; positions
// dead only through a pawn blockade are not detected).
func (p *Position) InsufficientMaterial() bool {
	if p.piece[Pawn]|p.piece[Rook]|p.piece[Queen] != 0 {
		return false
	}
	n, b := bits.OnesCount64(p.piece[Knight]), p.piece[Bishop]
	switch {
	case n == 0 && bits.OnesCount64(b) <= 1, n == 1 && b == 0:
		return true
	case n == 0:
		return b&lightSquares == 0 || b&^lightSquares == 0
	}
	return false
}
