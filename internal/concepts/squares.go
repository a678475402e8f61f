package concepts

import "github.com/lczerolens/lczerolens/internal/board"

// BoardConcept is a binary property of one square of a position, seen from the side to move: what the
// board-game SAE evaluations of Karvonen et al. (2024) ask single features to detect.
type BoardConcept struct {
	Name   string
	Family string
	Label  func(p *board.Position, sq board.Square) bool
}

// BoardConcepts lists the per-square binary concepts by family: the side to move's piece of each type on
// the square, the opponent's, an empty square, and the square attacked by either side.
func BoardConcepts() []BoardConcept {
	var out []BoardConcept
	names := []string{"p", "n", "b", "r", "q", "k"}
	for class := 1; class <= 12; class++ {
		fam, who := "own-piece", "own"
		if class > 6 {
			fam, who = "opponent-piece", "opponent"
		}
		out = append(out, BoardConcept{Name: who + "-" + names[(class-1)%6], Family: fam, Label: func(p *board.Position, sq board.Square) bool {
			return squarePiece(p, sq) == class
		}})
	}
	return append(out,
		BoardConcept{Name: "empty", Family: "empty", Label: func(p *board.Position, sq board.Square) bool { return squarePiece(p, sq) == 0 }},
		BoardConcept{Name: "attacked-by-own", Family: "attacked-by-own", Label: func(p *board.Position, sq board.Square) bool {
			return Attacked(p, sq, p.SideToMove())
		}},
		BoardConcept{Name: "attacked-by-opponent", Family: "attacked-by-opponent", Label: func(p *board.Position, sq board.Square) bool {
			return Attacked(p, sq, p.SideToMove().Other())
		}})
}

// squarePiece is SquarePieces' label of one square.
func squarePiece(p *board.Position, sq board.Square) int {
	c, pt, ok := p.PieceAt(sq)
	if !ok {
		return 0
	}
	if c == p.SideToMove() {
		return int(pt)
	}
	return int(pt) + 6
}
