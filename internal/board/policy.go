package board

import (
	"fmt"
	"strings"
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

// PolicyTranspose says how the moves of a position whose canonical transform
// has the transpose bit (transforms 4-7) are indexed in lc0's policy.
// Transforms 0-3 index moves the same way under both.
type PolicyTranspose int

const (
	// TransposePlanes maps moves through the transform of the planes,
	// (file f, rank r) -> (7-r, 7-f) after the flip and mirror, so that the
	// policy is read at the squares of the board the network saw. lc0 did
	// this up to v0.31.2, and the training data of canonical-format networks
	// is written this way. The default.
	TransposePlanes PolicyTranspose = iota
	// TransposeLc0V032 reverses files and ranks instead of transposing, as
	// lc0's MoveToNNIndex does since v0.32.0 (commit 6fa9f132): current lc0
	// reads the policy of a transposed position at squares that do not match
	// its planes. Only for reproducing such an lc0 build.
	TransposeLc0V032
)

var transposeNames = [...]string{"planes", "lc0-v0.32"}

// ParsePolicyTranspose parses "planes" or "lc0-v0.32" (case-insensitive).
func ParsePolicyTranspose(s string) (PolicyTranspose, error) {
	for i, n := range transposeNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return PolicyTranspose(i), nil
		}
	}
	return 0, fmt.Errorf("board: policy transpose %q: want planes (the default, as the networks were trained) or lc0-v0.32 (as lc0 v0.32 and later index transforms 4-7)", s)
}

// String returns the name ParsePolicyTranspose accepts.
func (pt PolicyTranspose) String() string {
	if pt < 0 || int(pt) >= len(transposeNames) {
		return fmt.Sprintf("PolicyTranspose(%d)", int(pt))
	}
	return transposeNames[pt]
}

// TransformLc0V032 is not a board transform but a flag for the transform
// argument of the policy functions (PolicyIndexT, MoveFromIndexT,
// LegalIndicesT, LegalMaskT): set on a transform 0-7, it selects
// TransposeLc0V032. EncodeFormat never returns it and UntransformSquare
// ignores it, so one value can follow a position from its planes to its
// policy.
const TransformLc0V032 = 1 << 8

// Apply returns transform (0-7, as EncodeFormat returns it) as the policy
// functions take it under pt: with TransformLc0V032 for TransposeLc0V032.
func (pt PolicyTranspose) Apply(transform int) int {
	if pt == TransposeLc0V032 {
		return transform | TransformLc0V032
	}
	return transform
}

// splitTransform returns the board transform (0-7) of a policy transform
// argument and whether it asks for lc0 v0.32's indexing; ok is false when the
// argument is out of range.
func splitTransform(transform int) (t int, lc0 bool, ok bool) {
	t = transform &^ TransformLc0V032
	return t, transform&TransformLc0V032 != 0, t >= 0 && t <= 7
}

// policySquare maps a side-to-move square into the frame of lc0's policy
// under board transform t: the frame of the planes (transformSquare), or
// with lc0 set the frame of lc0 v0.32's MoveToNNIndex, where the transpose
// bit reverses files and ranks:
//
//	if ((transform & (MirrorTransform | TransposeTransform)) != 0) rank.Flip();
//	if ((transform & (FlipTransform | TransposeTransform)) != 0) file.Flop();
func policySquare(sq Square, t int, lc0 bool) Square {
	if !lc0 {
		return transformSquare(sq, t)
	}
	f, r := sq.File(), sq.Rank()
	if t&(TransformMirror|TransformTranspose) != 0 {
		r = 7 - r
	}
	if t&(TransformFlip|TransformTranspose) != 0 {
		f = 7 - f
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
// Game.EncodeFormat and Transform): both squares of the move in the
// side-to-move frame go through the transform before the lookup, as the
// planes do (TransposePlanes); with the flag TransformLc0V032 set on the
// transform, as lc0 v0.32 and later map them (TransposeLc0V032). Transform 0
// is PolicyIndex.
func PolicyIndexT(p *Position, m Move, transform int) (int, error) {
	t, lc0, ok := splitTransform(transform)
	if !ok {
		return 0, fmt.Errorf("board: policy index of %s: transform %d out of range [0, 7]", m.UCI(), transform)
	}
	return policyIndexIn(p, m, func(sq Square) Square { return policySquare(sq, t, lc0) })
}

// policyIndexIn is the policy index of m with the side-to-move squares
// mapped by frame.
func policyIndexIn(p *Position, m Move, frame func(Square) Square) (int, error) {
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
	from, to = frame(from), frame(to)
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
	t, _, ok := splitTransform(transform)
	if !ok {
		return Move{}, fmt.Errorf("board: policy index %d: transform %d out of range [0, 7]", idx, transform)
	}
	var buf [maxMoves]Move
	for _, m := range p.genLegal(buf[:0]) {
		if i, err := PolicyIndexT(p, m, transform); err == nil && i == idx {
			return m, nil
		}
	}
	if t != 0 {
		return Move{}, fmt.Errorf("board: policy index %d (%s) under transform %d%s: no legal move in %s", idx, policyName(idx), t, mappingNote(transform), p.FEN())
	}
	return Move{}, fmt.Errorf("board: policy index %d (%s): no legal move in %s", idx, policyName(idx), p.FEN())
}

// mappingNote names lc0 v0.32's indexing in errors about a transform that
// asks for it.
func mappingNote(transform int) string {
	if transform&TransformLc0V032 != 0 {
		return " (" + TransposeLc0V032.String() + " indexing)"
	}
	return ""
}

func policyName(idx int) string {
	policy.once.Do(initPolicy)
	return policy.names[idx]
}

// LegalIndices returns the legal moves of p and their policy indices.
func LegalIndices(p *Position) ([]Move, []int) { return LegalIndicesT(p, 0) }

// LegalIndicesT returns the legal moves of p and their policy indices under
// the canonical transform (as PolicyIndexT takes it); an out-of-range
// transform yields no moves.
func LegalIndicesT(p *Position, transform int) ([]Move, []int) {
	if _, _, ok := splitTransform(transform); !ok {
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

// LegalMaskT is LegalMask under a canonical transform (as PolicyIndexT takes
// it); an out-of-range
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
