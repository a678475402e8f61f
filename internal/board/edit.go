package board

import (
	"errors"
	"math/bits"
)

// Placed returns a copy of p with sq holding a piece of type pt and colour c, or empty when pt is
// NoPieceType: the edits of corruption searches, which change a position without a move. Castling rights
// whose king or rook no longer stands on its square are dropped, and so is an en-passant target that no
// longer follows a double pawn push, as a FEN reader would; the side to move and the clocks are kept. The
// result may be no legal position at all: see Validate.
func (p *Position) Placed(sq Square, c Color, pt PieceType) *Position {
	q := *p
	b := sqBB(sq)
	q.color[White] &^= b
	q.color[Black] &^= b
	for t := range q.piece {
		q.piece[t] &^= b
	}
	if pt != NoPieceType {
		q.color[c] |= b
		q.piece[pt] |= b
	}
	q.castling &= q.possibleCastling()
	if q.ep != NoSquare {
		pawnSq, fromSq := q.ep-8, q.ep+8
		if q.stm == Black {
			pawnSq, fromSq = q.ep+8, q.ep-8
		}
		if q.color[q.stm.Other()]&q.piece[Pawn]&sqBB(pawnSq) == 0 || q.occupied()&(sqBB(q.ep)|sqBB(fromSq)) != 0 {
			q.ep = NoSquare
		}
	}
	return &q
}

// Errors of Validate.
var (
	ErrKings         = errors.New("each side needs exactly one king")
	ErrBackRankPawn  = errors.New("a pawn stands on the first or eighth rank")
	ErrOpponentCheck = errors.New("the side not to move is in check")
	ErrTooManyMen    = errors.New("a side has more than 8 pawns or 16 men")
)

// Validate reports why p cannot be reached in a game, by the checks python-chess's Board.is_valid makes on
// material and placement: one king per side, no pawn on the back ranks, the side not to move not in check,
// at most 8 pawns and 16 men per side.
func (p *Position) Validate() error {
	for _, c := range []Color{White, Black} {
		if bits.OnesCount64(p.piece[King]&p.color[c]) != 1 {
			return ErrKings
		}
		if bits.OnesCount64(p.piece[Pawn]&p.color[c]) > 8 || bits.OnesCount64(p.color[c]) > 16 {
			return ErrTooManyMen
		}
	}
	if p.piece[Pawn]&0xFF000000000000FF != 0 {
		return ErrBackRankPawn
	}
	if p.attackersTo(p.kingSq(p.stm.Other()), p.stm, p.occupied()) != 0 {
		return ErrOpponentCheck
	}
	return nil
}

// IsLegal reports whether m is a legal move in p.
func (p *Position) IsLegal(m Move) bool {
	for _, l := range p.LegalMoves() {
		if l == m {
			return true
		}
	}
	return false
}
