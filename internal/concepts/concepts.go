// Package concepts computes chess concepts from a position, the labels linear probes are trained to read
// from a network's activations: material balance, whether a piece is present, check, mate threats, attacked
// pieces, captures. It knows the board (internal/board) and nothing of networks or input files. Every concept
// is seen from the side to move, as lc0's input planes are.
package concepts

import (
	"fmt"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
)

// Kind says what a concept's label is.
type Kind string

// The concept kinds: a real number (probed by ridge regression) or 0/1 (probed by logistic regression).
const (
	Regression Kind = "regression"
	Binary     Kind = "binary"
)

// Sample is what a concept may look at: a position and, when the input gives it, the move to be played
// there (the next move of a game, or a record's best move).
type Sample struct {
	Pos  *board.Position
	Move *board.Move
	// Line holds the moves to be played from Pos when the input gives them (a puzzle's solution), the
	// first by the side to move.
	Line []board.Move
}

// Concept is one built-in concept.
type Concept struct {
	Name string // as given to --concept, arguments included (has-piece:Q)
	Kind Kind
	Doc  string
	// Label returns the concept's value for s; ok is false when it is undefined there (no move known).
	Label func(s Sample) (v float64, ok bool)
}

// Info documents one concept family for help texts.
type Info struct {
	Syntax, Kind, Doc string
}

// List documents the built-in concepts, in the order help texts show them.
func List() []Info {
	return []Info{
		{"material-balance", string(Regression), "material of the side to move minus the opponent's (P=1, N=B=3, R=5, Q=9)"},
		{"has-piece:X", string(Binary), "X (a FEN letter) is on the board: upper case for the side to move's piece, lower case for the opponent's"},
		{"in-check", string(Binary), "the side to move is in check"},
		{"has-mate-threat", string(Binary), "the side to move has a mate in one"},
		{"piece-under-attack", string(Binary), "a piece of the side to move other than the king is attacked by an opponent's piece (pins ignored)"},
		{"best-move-is-capture", string(Binary), "the position's move (the game's next move, or the record's best_move) captures; positions without one are skipped"},
	}
}

// Parse returns the concept called name.
func Parse(name string) (*Concept, error) {
	switch {
	case name == "material-balance":
		return &Concept{Name: name, Kind: Regression, Label: func(s Sample) (float64, bool) { return float64(MaterialBalance(s.Pos)), true }}, nil
	case name == "in-check":
		return binary(name, func(s Sample) bool { return s.Pos.InCheck() }), nil
	case name == "has-mate-threat":
		return binary(name, func(s Sample) bool { return HasMateInOne(s.Pos) }), nil
	case name == "piece-under-attack":
		return binary(name, func(s Sample) bool { return PieceUnderAttack(s.Pos) }), nil
	case name == "best-move-is-capture":
		return &Concept{Name: name, Kind: Binary, Label: func(s Sample) (float64, bool) {
			if s.Move == nil {
				return 0, false
			}
			return b2f(IsCapture(s.Pos, *s.Move)), true
		}}, nil
	case strings.HasPrefix(name, "has-piece:"):
		arg := strings.TrimPrefix(name, "has-piece:")
		pt, ours, err := parsePiece(arg)
		if err != nil {
			return nil, fmt.Errorf("concepts: %s: %w", name, err)
		}
		return binary(name, func(s Sample) bool { return HasPiece(s.Pos, pt, ours) }), nil
	}
	var names []string
	for _, i := range List() {
		names = append(names, i.Syntax)
	}
	return nil, fmt.Errorf("concepts: unknown concept %q (built-in: %s; or column:NAME for a JSONL field)", name, strings.Join(names, ", "))
}

func binary(name string, f func(Sample) bool) *Concept {
	return &Concept{Name: name, Kind: Binary, Label: func(s Sample) (float64, bool) { return b2f(f(s)), true }}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func parsePiece(s string) (board.PieceType, bool, error) {
	if len(s) != 1 {
		return 0, false, fmt.Errorf("piece %q: want one FEN letter (PNBRQK for the side to move, pnbrqk for the opponent)", s)
	}
	i := strings.IndexByte("pnbrqk", s[0]|0x20)
	if i < 0 {
		return 0, false, fmt.Errorf("piece %q: want one of PNBRQK or pnbrqk", s)
	}
	return board.PieceType(i + 1), s[0] < 'a', nil
}

// Values are the material values of pawn, knight, bishop, rook, queen (the king counts 0), by PieceType.
var Values = [7]int{0, 1, 3, 3, 5, 9, 0}

// MaterialBalance is the side to move's material minus the opponent's.
func MaterialBalance(p *board.Position) int {
	us, bal := p.SideToMove(), 0
	for sq := board.Square(0); sq < 64; sq++ {
		if c, pt, ok := p.PieceAt(sq); ok {
			if c == us {
				bal += Values[pt]
			} else {
				bal -= Values[pt]
			}
		}
	}
	return bal
}

// HasPiece reports whether a piece of type pt belonging to the side to move (ours) or the opponent is on
// the board.
func HasPiece(p *board.Position, pt board.PieceType, ours bool) bool {
	want := p.SideToMove()
	if !ours {
		want = want.Other()
	}
	for sq := board.Square(0); sq < 64; sq++ {
		if c, t, ok := p.PieceAt(sq); ok && c == want && t == pt {
			return true
		}
	}
	return false
}

// HasMateInOne reports whether the side to move has a legal move that checkmates.
func HasMateInOne(p *board.Position) bool {
	for _, m := range p.LegalMoves() {
		q := p.Play(m)
		if q.InCheck() && len(q.LegalMoves()) == 0 {
			return true
		}
	}
	return false
}

// IsCapture reports whether m, played in p, takes a piece (en passant included).
func IsCapture(p *board.Position, m board.Move) bool {
	if c, _, ok := p.PieceAt(m.To); ok {
		return c != p.SideToMove() // castling as king-takes-rook (e1h1) lands on an own piece
	}
	_, pt, _ := p.PieceAt(m.From)
	return pt == board.Pawn && m.From.File() != m.To.File()
}

// PieceUnderAttack reports whether any piece of the side to move other than its king is attacked by one of
// the opponent's pieces (pseudo-legal attacks: a pinned attacker still attacks).
func PieceUnderAttack(p *board.Position) bool {
	us := p.SideToMove()
	for sq := board.Square(0); sq < 64; sq++ {
		if c, pt, ok := p.PieceAt(sq); ok && c == us && pt != board.King && Attacked(p, sq, us.Other()) {
			return true
		}
	}
	return false
}

// Attacked reports whether a piece of colour by attacks sq (whatever stands on sq).
func Attacked(p *board.Position, sq board.Square, by board.Color) bool {
	f, r := sq.File(), sq.Rank()
	at := func(df, dr int) (board.PieceType, bool) {
		ff, rr := f+df, r+dr
		if ff < 0 || ff > 7 || rr < 0 || rr > 7 {
			return 0, false
		}
		c, pt, ok := p.PieceAt(board.NewSquare(ff, rr))
		return pt, ok && c == by
	}
	// A pawn of colour by on the rank behind sq (from its own point of view) attacks diagonally forward.
	back := -1
	if by == board.Black {
		back = 1
	}
	for _, df := range []int{-1, 1} {
		if pt, ok := at(df, back); ok && pt == board.Pawn {
			return true
		}
	}
	for _, d := range [8][2]int{{1, 2}, {2, 1}, {2, -1}, {1, -2}, {-1, -2}, {-2, -1}, {-2, 1}, {-1, 2}} {
		if pt, ok := at(d[0], d[1]); ok && pt == board.Knight {
			return true
		}
	}
	for _, d := range [8][2]int{{0, 1}, {1, 0}, {0, -1}, {-1, 0}, {1, 1}, {1, -1}, {-1, -1}, {-1, 1}} {
		straight := d[0] == 0 || d[1] == 0
		for i := 1; i < 8; i++ {
			ff, rr := f+i*d[0], r+i*d[1]
			if ff < 0 || ff > 7 || rr < 0 || rr > 7 {
				break
			}
			c, pt, ok := p.PieceAt(board.NewSquare(ff, rr))
			if !ok {
				continue
			}
			if c == by && (pt == board.Queen || (straight && pt == board.Rook) || (!straight && pt == board.Bishop) || (i == 1 && pt == board.King)) {
				return true
			}
			break
		}
	}
	return false
}
