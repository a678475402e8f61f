package concepts

import "github.com/lczerolens/lczerolens/internal/board"

// SquareConcept is a binary property of one square of a position, seen from the side to move: what the
// board-game SAE evaluations of Karvonen et al. (2024) ask features to detect.
type SquareConcept struct {
	Name   string
	Family string
	Label  func(p *board.Position, sq board.Square) bool
}

// SquareConcepts lists the per-square concepts by family: the side to move's piece of each type on the
// square, the opponent's, an empty square, and the square attacked by either side.
func SquareConcepts() []SquareConcept {
	var out []SquareConcept
	pieces := []board.PieceType{board.Pawn, board.Knight, board.Bishop, board.Rook, board.Queen, board.King}
	for _, own := range []bool{true, false} {
		fam, who := "own-piece", "own"
		if !own {
			fam, who = "opponent-piece", "opponent"
		}
		for _, pt := range pieces {
			out = append(out, SquareConcept{Name: who + "-" + pt.String(), Family: fam, Label: func(p *board.Position, sq board.Square) bool {
				c, t, ok := p.PieceAt(sq)
				return ok && t == pt && (c == p.SideToMove()) == own
			}})
		}
	}
	out = append(out,
		SquareConcept{Name: "empty", Family: "empty", Label: func(p *board.Position, sq board.Square) bool {
			_, _, ok := p.PieceAt(sq)
			return !ok
		}},
		SquareConcept{Name: "attacked-by-own", Family: "attacked-by-own", Label: func(p *board.Position, sq board.Square) bool {
			return p.Attacked(sq, p.SideToMove())
		}},
		SquareConcept{Name: "attacked-by-opponent", Family: "attacked-by-opponent", Label: func(p *board.Position, sq board.Square) bool {
			return p.Attacked(sq, p.SideToMove().Other())
		}})
	return out
}
