package board

import (
	"fmt"
)

// Color is a side: White or Black.
type Color int8

// The two sides.
const (
	White Color = 0
	Black Color = 1
)

// Other returns the opposite side.
func (c Color) Other() Color { return c ^ 1 }

// String returns "white" or "black".
func (c Color) String() string {
	if c == White {
		return "white"
	}
	return "black"
}

// Square is a board square, a1=0, b1=1, ..., h8=63 (rank*8+file).
type Square int8

// NoSquare marks the absence of a square (for example no en-passant target).
const NoSquare Square = -1

// Named squares used by castling.
const (
	A1 Square = 0
	C1 Square = 2
	D1 Square = 3
	E1 Square = 4
	F1 Square = 5
	G1 Square = 6
	H1 Square = 7
	A8 Square = 56
	C8 Square = 58
	D8 Square = 59
	E8 Square = 60
	F8 Square = 61
	G8 Square = 62
	H8 Square = 63
)

// NewSquare returns the square on file (0=a..7=h) and rank (0=1st..7=8th).
func NewSquare(file, rank int) Square { return Square(rank*8 + file) }

// File returns 0 for the a-file ... 7 for the h-file.
func (s Square) File() int { return int(s) & 7 }

// Rank returns 0 for the first rank ... 7 for the eighth.
func (s Square) Rank() int { return int(s) >> 3 }

// Mirror returns the square reflected across the middle of the board
// (a1<->a8), the transformation lc0 applies when black is to move.
func (s Square) Mirror() Square { return s ^ 56 }

// String returns the square's name, e.g. "e4", or "-" for NoSquare.
func (s Square) String() string {
	if s < 0 || s > 63 {
		return "-"
	}
	return string([]byte{byte('a' + s.File()), byte('1' + s.Rank())})
}

// ParseSquare parses a square name such as "e4".
func ParseSquare(s string) (Square, error) {
	if len(s) != 2 || s[0] < 'a' || s[0] > 'h' || s[1] < '1' || s[1] > '8' {
		return NoSquare, fmt.Errorf("board: bad square %q", s)
	}
	return NewSquare(int(s[0]-'a'), int(s[1]-'1')), nil
}

// PieceType is a kind of piece regardless of colour.
type PieceType int8

// Piece types, in lc0's plane order (P, N, B, R, Q, K).
const (
	NoPieceType PieceType = iota
	Pawn
	Knight
	Bishop
	Rook
	Queen
	King
)

// String returns the lower-case piece letter ("p", "n", ...) or "" for
// NoPieceType.
func (pt PieceType) String() string {
	if pt <= NoPieceType || pt > King {
		return ""
	}
	return string(" pnbrqk"[pt])
}

// Move is a move in standard UCI semantics: castling is the king's two-square
// move (e1g1), Promo is NoPieceType unless a pawn promotes.
type Move struct {
	From, To Square
	Promo    PieceType
}

// UCI returns the move in UCI notation: "e2e4", "e7e8q", castling "e1g1".
func (m Move) UCI() string {
	if m.From < 0 || m.From > 63 || m.To < 0 || m.To > 63 {
		return "0000"
	}
	b := make([]byte, 0, 5)
	b = append(b, m.From.String()...)
	b = append(b, m.To.String()...)
	if m.Promo > Pawn && m.Promo < King {
		b = append(b, " pnbrqk"[m.Promo])
	}
	return string(b)
}

// String is UCI.
func (m Move) String() string { return m.UCI() }
