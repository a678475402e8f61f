package board

import (
	"fmt"
	"sync"
)

// PolicySize is the number of entries of lc0's policy head (1858 moves).
const PolicySize = 1858

var policy struct {
	once  sync.Once
	names []string
	plain [64][64]int16 // from, to (mover's frame) -> index, -1 if none
	promo [8][3][3]int16
}

// promoSlot maps Queen, Rook, Bishop to lc0's order within a promotion.
func promoSlot(pt PieceType) int {
	switch pt {
	case Queen:
		return 0
	case Rook:
		return 1
	case Bishop:
		return 2
	}
	return -1
}

// initPolicy generates lc0's move list: for every from-square a1..h8 the
// queen-line and knight destinations in square order, then the under- and
// queen promotions from the 7th rank (destination file left, straight,
// right; each as q, r, b). Knight promotions share the plain move's index.
func initPolicy() {
	policy.names = make([]string, 0, PolicySize)
	for from := 0; from < 64; from++ {
		for to := 0; to < 64; to++ {
			policy.plain[from][to] = -1
			if from == to {
				continue
			}
			df := abs(to&7 - from&7)
			dr := abs(to>>3 - from>>3)
			if df == 0 || dr == 0 || df == dr || df*dr == 2 {
				policy.plain[from][to] = int16(len(policy.names))
				policy.names = append(policy.names, Square(from).String()+Square(to).String())
			}
		}
	}
	for f := 0; f < 8; f++ {
		for d := -1; d <= 1; d++ {
			for k := range policy.promo[f][d+1] {
				policy.promo[f][d+1][k] = -1
			}
			if f+d < 0 || f+d > 7 {
				continue
			}
			for k, c := range "qrb" {
				policy.promo[f][d+1][k] = int16(len(policy.names))
				policy.names = append(policy.names, NewSquare(f, 6).String()+NewSquare(f+d, 7).String()+string(c))
			}
		}
	}
}

// policySquare maps a side-to-move square into the frame of lc0's policy
// under canonical transform t. lc0's reference output (v0.33.0-dev) puts the
// moves of a position with transform 5 (flip | transpose) at their 180 degree
// rotation, not at the flipped-and-transposed squares the planes use, while
// transform 1 is the plain file flip: so here the transpose bit mirrors ranks.
// Only transforms 0, 1 and 5 occur in the references; 2-4, 6 and 7 follow
// the same rule unverified.
func policySquare(sq Square, t int) Square {
	f, r := sq.File(), sq.Rank()
	if t&TransformFlip != 0 {
		f = 7 - f
	}
	if t&TransformMirror != 0 {
		r = 7 - r
	}
	if t&TransformTranspose != 0 {
		r = 7 - r
	}
	return NewSquare(f, r)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// PolicyNames returns lc0's 1858 policy move names in lc0's order, in the
// mover's frame (white's view; black moves are mirrored first).
func PolicyNames() []string {
	policy.once.Do(initPolicy)
	return append([]string(nil), policy.names...)
}

// PolicyIndex returns lc0's policy index of m, a move of p's side to move:
// squares are mirrored for black, castling (e1g1 or e1h1) is encoded as
// king-takes-rook (O-O = e1h1, O-O-O = e1a1), and a knight promotion uses the
// plain move's index. It does not check that m is legal.
func PolicyIndex(p *Position, m Move) (int, error) { return PolicyIndexT(p, m, 0) }

// PolicyIndexT is PolicyIndex under a canonical transform (see
// Game.EncodeFormat and Transform), as lc0 maps moves to its policy: both
// squares of the move in the side-to-move frame go through the transform
// before the lookup. Transform 0 is PolicyIndex. For transforms with the
// transpose bit, lc0 (v0.33) does not use the frame of the planes; see
// policySquare.
func PolicyIndexT(p *Position, m Move, transform int) (int, error) {
	if transform < 0 || transform > 7 {
		return 0, fmt.Errorf("board: policy index of %s: transform %d out of range [0, 7]", m.UCI(), transform)
	}
	return policyIndexIn(p, m, transform, policySquare)
}

// policyIndexIn is the policy index of m with the side-to-move squares
// mapped by frame(sq, transform) (policySquare for lc0's policy,
// transformSquare for the frame of the planes).
func policyIndexIn(p *Position, m Move, transform int, frame func(Square, int) Square) (int, error) {
	policy.once.Do(initPolicy)
	if m.From < 0 || m.From > 63 || m.To < 0 || m.To > 63 {
		return 0, fmt.Errorf("board: policy index of %s: bad square", m.UCI())
	}
	from, to := m.From, m.To
	if p.stm == Black {
		from, to = from.Mirror(), to.Mirror()
	}
	if p.color[p.stm]&p.piece[King]&sqBB(m.From) != 0 && from == E1 {
		switch to {
		case G1:
			to = H1
		case C1:
			to = A1
		}
	}
	if transform != 0 {
		from, to = frame(from, transform), frame(to, transform)
	}
	if k := promoSlot(m.Promo); k >= 0 {
		df := to.File() - from.File()
		if from.Rank() != 6 || to.Rank() != 7 || df < -1 || df > 1 {
			return 0, fmt.Errorf("board: policy index of %s: not a promotion square", m.UCI())
		}
		return int(policy.promo[from.File()][df+1][k]), nil
	}
	idx := policy.plain[from][to]
	if idx < 0 {
		return 0, fmt.Errorf("board: policy index of %s: no such move in lc0's policy", m.UCI())
	}
	return int(idx), nil
}

// MoveFromIndex returns the legal move of p whose policy index is idx.
func MoveFromIndex(p *Position, idx int) (Move, error) { return MoveFromIndexT(p, idx, 0) }

// MoveFromIndexT returns the legal move of p whose policy index under the
// canonical transform is idx (the inverse of PolicyIndexT on legal moves).
func MoveFromIndexT(p *Position, idx, transform int) (Move, error) {
	if idx < 0 || idx >= PolicySize {
		return Move{}, fmt.Errorf("board: policy index %d: out of range [0, %d)", idx, PolicySize)
	}
	if transform < 0 || transform > 7 {
		return Move{}, fmt.Errorf("board: policy index %d: transform %d out of range [0, 7]", idx, transform)
	}
	var buf [maxMoves]Move
	for _, m := range p.genLegal(buf[:0]) {
		if i, err := PolicyIndexT(p, m, transform); err == nil && i == idx {
			return m, nil
		}
	}
	if transform != 0 {
		return Move{}, fmt.Errorf("board: policy index %d (%s) under transform %d: no legal move in %s", idx, policyName(idx), transform, p.FEN())
	}
	return Move{}, fmt.Errorf("board: policy index %d (%s): no legal move in %s", idx, policyName(idx), p.FEN())
}

func policyName(idx int) string {
	policy.once.Do(initPolicy)
	return policy.names[idx]
}

// LegalIndices returns the legal moves of p and their policy indices.
func LegalIndices(p *Position) ([]Move, []int) { return LegalIndicesT(p, 0) }

// LegalIndicesT returns the legal moves of p and their policy indices under
// the canonical transform; an out-of-range transform yields no moves.
func LegalIndicesT(p *Position, transform int) ([]Move, []int) {
	if transform < 0 || transform > 7 {
		return nil, nil
	}
	moves := p.LegalMoves()
	idx := make([]int, len(moves))
	for i, m := range moves {
		idx[i], _ = PolicyIndexT(p, m, transform) // every legal move has an index
	}
	return moves, idx
}

// LegalMask sets dst[i] to 1 for the policy index of every legal move and 0
// elsewhere. It panics if len(dst) != PolicySize.
func LegalMask(p *Position, dst []float32) { LegalMaskT(p, 0, dst) }

// LegalMaskT is LegalMask under a canonical transform; an out-of-range
// transform leaves dst all zero. It panics if len(dst) != PolicySize.
func LegalMaskT(p *Position, transform int, dst []float32) {
	if len(dst) != PolicySize {
		panic(fmt.Sprintf("board: legal mask: len(dst) = %d, want %d", len(dst), PolicySize))
	}
	clear(dst)
	var buf [maxMoves]Move
	for _, m := range p.genLegal(buf[:0]) {
		if i, err := PolicyIndexT(p, m, transform); err == nil {
			dst[i] = 1
		}
	}
}
