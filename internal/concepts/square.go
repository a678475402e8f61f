package concepts

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
)

// SquareConcept is a concept with a label on every square of a position, read by per-square probes (one map
// shared by the 64 squares' activation vectors). Labels are indexed by board square (a1 = 0, h8 = 63), in the
// board's own frame; whoever pairs them with activations maps them into the network's frame.
type SquareConcept struct {
	Name string
	// Classes is the number of label values: 2 for a yes/no per square, 13 for square-piece.
	Classes int
	// Top1 marks concepts with exactly one square labelled 1 per position: they are scored by whether the
	// square scored highest is that one (top-1 over the 64 squares).
	Top1 bool
	// Label returns the position's 64 labels; ok is false when the concept is undefined there.
	Label func(s Sample) (labels [64]int, ok bool)
	// Anchor, when not nil, returns the square a bilinear probe conditions on where Label is defined: for
	// move-target:N with N >= 2, the first solution move's target (leela-interp predicts the third move's
	// target from the first's).
	Anchor func(s Sample) board.Square
}

// SquareList documents the per-square concepts, in the order help texts show them.
func SquareList() []Info {
	return []Info{
		{"square-piece", "13 classes", "which piece is on the square: empty, the side to move's PNBRQK, the opponent's pnbrqk"},
		{"square-attacked-by:us|them", "binary", "the square is attacked by a piece of the side to move (us) or of the opponent (them)"},
		{"move-target:N", "top-1", "the square the N-th move of the record's solution lands on (1 = the side to move's first move)"},
	}
}

// ParseSquare returns the per-square concept called name.
func ParseSquare(name string) (*SquareConcept, error) {
	switch {
	case name == "square-piece":
		return &SquareConcept{Name: name, Classes: 13, Label: func(s Sample) ([64]int, bool) { return SquarePieces(s.Pos), true }}, nil
	case strings.HasPrefix(name, "square-attacked-by:"):
		who := strings.TrimPrefix(name, "square-attacked-by:")
		if who != "us" && who != "them" {
			return nil, fmt.Errorf("concepts: %s: want square-attacked-by:us or square-attacked-by:them", name)
		}
		return &SquareConcept{Name: name, Classes: 2, Label: func(s Sample) ([64]int, bool) {
			by := s.Pos.SideToMove()
			if who == "them" {
				by = by.Other()
			}
			var out [64]int
			for sq := board.Square(0); sq < 64; sq++ {
				out[sq] = int(b2f(Attacked(s.Pos, sq, by)))
			}
			return out, true
		}}, nil
	case strings.HasPrefix(name, "move-target:"):
		n, err := strconv.Atoi(strings.TrimPrefix(name, "move-target:"))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("concepts: %s: want move-target:N with N >= 1 (1 = the first solution move)", name)
		}
		c := &SquareConcept{Name: name, Classes: 2, Top1: true, Label: func(s Sample) ([64]int, bool) {
			var out [64]int
			if len(s.Line) < n {
				return out, false
			}
			out[s.Line[n-1].To] = 1
			return out, true
		}}
		if n >= 2 {
			c.Anchor = func(s Sample) board.Square { return s.Line[0].To }
		}
		return c, nil
	}
	var names []string
	for _, i := range SquareList() {
		names = append(names, i.Syntax)
	}
	return nil, fmt.Errorf("concepts: unknown per-square concept %q (built-in: %s)", name, strings.Join(names, ", "))
}

// SquarePieces labels every square with its piece: 0 empty, 1..6 the side to move's pawn, knight, bishop,
// rook, queen, king, 7..12 the opponent's.
func SquarePieces(p *board.Position) [64]int {
	var out [64]int
	us := p.SideToMove()
	for sq := board.Square(0); sq < 64; sq++ {
		if c, pt, ok := p.PieceAt(sq); ok {
			out[sq] = int(pt)
			if c != us {
				out[sq] += 6
			}
		}
	}
	return out
}
