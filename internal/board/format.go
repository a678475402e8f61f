package board

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// InputFormat is lc0's NetworkFormat.InputFormat (proto/net.proto): how a
// network wants its 112 input planes. The values are lc0's enum values.
type InputFormat int

// The input formats supported; the armageddon variants (132, 133) are not.
const (
	// InputClassical is INPUT_CLASSICAL_112_PLANE: Game.Encode.
	InputClassical InputFormat = 1
	// InputCastlingPlane is INPUT_112_WITH_CASTLING_PLANE: the classical
	// history, with planes 104/105 holding the squares of the rooks that may
	// still castle (queenside, kingside; both colours) and 106/107 empty.
	InputCastlingPlane InputFormat = 2
	// InputCanonical is INPUT_112_WITH_CANONICALIZATION: castling-rook
	// planes, plane 108 the en-passant square, the history cut short at
	// irreversible moves, and the board flipped, mirrored or transposed to a
	// canonical orientation when the position allows it.
	InputCanonical InputFormat = 3
	// InputCanonicalHectoplies is InputCanonical with the rule-50 plane
	// divided by 100 (INPUT_112_WITH_CANONICALIZATION_HECTOPLIES).
	InputCanonicalHectoplies InputFormat = 4
	// InputCanonicalV2 is InputCanonicalHectoplies whose history keeps only
	// positions that are repetitions (INPUT_112_WITH_CANONICALIZATION_V2).
	InputCanonicalV2 InputFormat = 5
)

var formatNames = map[InputFormat]string{
	InputClassical:           "classical",
	InputCastlingPlane:       "castling-plane",
	InputCanonical:           "canonical",
	InputCanonicalHectoplies: "canonical-hectoplies",
	InputCanonicalV2:         "canonical-v2",
}

// ParseInputFormat parses an input format by lc0 number or name: "1" or
// "classical", "2" or "castling-plane", "3" or "canonical", "4" or
// "canonical-hectoplies", "5" or "canonical-v2" (names case-insensitive).
func ParseInputFormat(s string) (InputFormat, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.Atoi(t); err == nil {
		if f := InputFormat(n); f.Valid() {
			return f, nil
		}
	} else {
		for f := InputClassical; f <= InputCanonicalV2; f++ {
			if strings.EqualFold(t, formatNames[f]) {
				return f, nil
			}
		}
	}
	return 0, fmt.Errorf("board: input format %q: want 1|classical, 2|castling-plane, 3|canonical, 4|canonical-hectoplies or 5|canonical-v2", s)
}

// String returns the name ParseInputFormat accepts, or "InputFormat(n)" for
// an unsupported value.
func (f InputFormat) String() string {
	if n, ok := formatNames[f]; ok {
		return n
	}
	return fmt.Sprintf("InputFormat(%d)", int(f))
}

// Valid reports whether f is a format this package encodes (1 to 5).
func (f InputFormat) Valid() bool { return f >= InputClassical && f <= InputCanonicalV2 }

// canonical reports lc0's IsCanonicalFormat.
func (f InputFormat) canonical() bool { return f >= InputCanonical }

// Canonical transform bits (lc0's BoardTransform), applied in this order.
const (
	// TransformFlip mirrors files (a <-> h).
	TransformFlip = 1
	// TransformMirror mirrors ranks (1 <-> 8).
	TransformMirror = 2
	// TransformTranspose reflects in the a8-h1 diagonal: a1 <-> h8.
	TransformTranspose = 4
)

// EncodeFormat writes the 112 input planes of the current position for
// format f into dst (layout as Encode) and returns the canonical transform
// it applied: a combination of TransformFlip, TransformMirror and
// TransformTranspose, always 0 for formats 1 and 2. InputClassical is
// exactly Encode. This follows lc0's EncodePositionForNN
// (src/neural/encoder.cc):
//
//   - formats 2-5: plane 104 has a bit on a1 (a8) if we (they) may castle
//     queenside, 105 on h1 (h8) for kingside, in the side-to-move frame;
//     106 and 107 are empty. Format 2 keeps 108 (black to move) and 109
//     (rule-50 plies) of format 1.
//   - formats 3-5: 108 has a bit on the eighth rank of the en-passant file;
//     109 is the rule-50 count, divided by 100 in formats 4 and 5. The
//     history stops after a position with rule-50 count 0, before a
//     position with other castling rights and before an older position
//     with an en-passant square; format 5 also leaves out the history
//     positions that are not repetitions (the slots close up). When the
//     side to move has no castling rights, all planes but 109-111 are
//     transformed so that our king lands on files e-h, and without pawns on
//     ranks 1-4 below the a8-h1 diagonal (ties broken as lc0 does). Read
//     the policy of such a position with PolicyIndexT or MoveFromIndexT and
//     the same transform (PolicyTranspose.Apply chooses between the
//     planes-consistent indexing and lc0 v0.32's); map plane squares back
//     with UntransformSquare.
//
// With format 5 and a start position whose rule-50 count is not 0, lc0
// crashes once the history reaches the filled slots (FillFENOnly,
// FillAlways); EncodeFormat stops the history there instead, which gives
// the planes of FillNo. FillCurrent acts as a history holding only the
// current position with FillAlways, so the same stopping rules apply.
//
// EncodeFormat panics if len(dst) != NumPlanes*64 or f is not Valid
// (programming errors, not bad input).
func (g *Game) EncodeFormat(f InputFormat, fill HistoryFill, dst []float32) (transform int) {
	if len(dst) != NumPlanes*64 {
		panic(fmt.Sprintf("board: encode %s: len(dst) = %d, want %d", f, len(dst), NumPlanes*64))
	}
	switch {
	case f == InputClassical:
		g.Encode(fill, dst)
		return 0
	case f == InputCastlingPlane:
		// The classical planes but for the castling block.
		g.Encode(fill, dst)
		m := castlingRookMasks(g.Current())
		for i := 0; i < 4; i++ {
			clear(dst[(AuxPlaneBase+i)*64 : (AuxPlaneBase+i+1)*64])
		}
		expandMask(dst[AuxPlaneBase*64:], m[0], 1)
		expandMask(dst[(AuxPlaneBase+1)*64:], m[1], 1)
		return 0
	case f.canonical() && f.Valid():
		clear(dst)
		return g.encodeCanonical(f, fill, dst)
	}
	panic(fmt.Sprintf("board: encode: unsupported input format %d", int(f)))
}

// castlingRookMasks returns planes 104 and 105 of formats 2-5: the squares
// of the rooks that may castle queenside and kingside, ours on rank 1 and
// theirs on rank 8 of the side-to-move frame (standard chess: a and h
// files).
func castlingRookMasks(p *Position) [2]uint64 {
	ourK, ourQ := p.CanCastle(p.stm)
	theirK, theirQ := p.CanCastle(p.stm.Other())
	var m [2]uint64
	if ourQ {
		m[0] |= sqBB(A1)
	}
	if theirQ {
		m[0] |= sqBB(A8)
	}
	if ourK {
		m[1] |= sqBB(H1)
	}
	if theirK {
		m[1] |= sqBB(H8)
	}
	return m
}

// encodeCanonical is formats 3-5 into a zeroed dst. It builds lc0's plane
// masks, transforms them, then expands them.
func (g *Game) encodeCanonical(f InputFormat, fill HistoryFill, dst []float32) int {
	var masks [AuxPlaneBase + 5]uint64 // planes 0..108; 109-111 are constant
	cur := g.Current()
	us := cur.stm
	hist, reps := g.pos, g.reps
	if fill == FillCurrent {
		hist, reps = hist[len(hist)-1:], reps[len(reps)-1:]
		fill = FillAlways
	}
	skipNonRepeats := f == InputCanonicalV2
	last := len(hist) - 1
	hidx := last
	for i := 0; i < HistorySlots; i, hidx = i+1, hidx-1 {
		p := &hist[max(hidx, 0)]
		// Castling changes and en-passant chances cannot repeat, so lc0 stops
		// the history at them (the current position always counts).
		if p.castling != cur.castling {
			break
		}
		if hidx != last && p.ep != NoSquare {
			break
		}
		if hidx < 0 && (fill == FillNo || fill == FillFENOnly && p.sameBoard(&startPos)) {
			break
		}
		rep := reps[max(hidx, 0)]
		if skipNonRepeats && rep == 0 && i > 0 {
			// lc0 skips the position and keeps the slot. Filled slots are
			// all this same non-repeat, where lc0 never ends; stop.
			if p.rule50 == 0 || hidx < 0 {
				break
			}
			i--
			continue
		}
		// No en-passant undo as in Encode: a filled slot (hidx < 0) with an
		// en-passant square has already stopped the history above.
		slot := masks[i*PlanesPerSlot : (i+1)*PlanesPerSlot]
		for pt := Pawn; pt <= King; pt++ {
			slot[pt-1] = relBB(p.color[us]&p.piece[pt], us)
			slot[6+pt-1] = relBB(p.color[us.Other()]&p.piece[pt], us)
		}
		if rep >= 1 {
			slot[12] = ^uint64(0)
		}
		if p.rule50 == 0 {
			break
		}
	}
	cm := castlingRookMasks(cur)
	masks[AuxPlaneBase], masks[AuxPlaneBase+1] = cm[0], cm[1]
	if cur.ep != NoSquare {
		masks[AuxPlaneBase+4] = sqBB(NewSquare(cur.ep.File(), 7))
	}
	t := canonicalTransform(cur)
	for i, m := range masks {
		if m != 0 {
			expandMask(dst[i*64:], transformBB(m, t), 1)
		}
	}
	r50 := float32(cur.rule50)
	if f >= InputCanonicalHectoplies {
		r50 /= 100
	}
	expandMask(dst[(AuxPlaneBase+5)*64:], ^uint64(0), r50)
	expandMask(dst[(AuxPlaneBase+7)*64:], ^uint64(0), 1)
	return t
}

// relBB puts a bitboard into the frame of side us (ranks mirrored for
// black).
func relBB(b uint64, us Color) uint64 {
	if us == Black {
		return mirrorBB(b)
	}
	return b
}

// expandMask sets plane[sq] = v for every bit sq of m; plane has at least 64
// entries.
func expandMask(plane []float32, m uint64, v float32) {
	if m == ^uint64(0) {
		for i := range plane[:64] {
			plane[i] = v
		}
		return
	}
	for ; m != 0; m &= m - 1 {
		plane[bits.TrailingZeros64(m)] = v
	}
}

// Transform returns the canonical transform lc0 applies to the current
// position of g under format f (see EncodeFormat); 0 for formats 1 and 2.
func Transform(g *Game, f InputFormat) int {
	if !f.canonical() || !f.Valid() {
		return 0
	}
	return canonicalTransform(g.Current())
}

// canonicalTransform is lc0's ChooseTransform. It only looks at the current
// position, which is always history slot 0.
func canonicalTransform(p *Position) int {
	// Castling is not symmetric under any transform.
	if p.castling != 0 {
		return 0
	}
	us := p.stm
	rel := func(b uint64) uint64 { return relBB(b, us) }
	king := rel(p.color[us] & p.piece[King])
	t := 0
	if king&0x0F0F0F0F0F0F0F0F != 0 { // files a-d
		t |= TransformFlip
		king = flipBB(king)
	}
	// Pawns only allow the file flip.
	if p.piece[Pawn] != 0 {
		return t
	}
	if king&0xFFFFFFFF00000000 != 0 { // ranks 5-8
		t |= TransformMirror
		king = mirrorBB(king)
	}
	// The king is now on e1-h4: transpose it below the h1-e4 diagonal; on
	// the diagonal, pick whichever orientation gives the smaller bitboards.
	if king&0xE0C08000 != 0 {
		return t | TransformTranspose
	}
	if king&0x10204080 == 0 {
		return t
	}
	both := func(pt PieceType) uint64 { return rel(p.piece[pt]) }
	for _, b := range [...]uint64{
		rel(p.occupied()), rel(p.color[us]),
		both(King), both(Queen), both(Rook), both(Knight), both(Bishop),
	} {
		b = transformBB(b, t)
		switch tb := transposeBB(b); {
		case b < tb:
			return t
		case b > tb:
			return t | TransformTranspose
		}
	}
	return t
}

// flipBB mirrors files (a <-> h): lc0's ReverseBitsInBytes.
func flipBB(b uint64) uint64 { return bits.Reverse64(bits.ReverseBytes64(b)) }

// transposeBB reflects a bitboard in the a8-h1 diagonal, (file, rank) ->
// (7-rank, 7-file), so a1 <-> h8: lc0's TransposeBitsInBytes. It is the
// a1-h8 transpose (delta swaps) followed by a 180 degree rotation.
func transposeBB(b uint64) uint64 {
	t := 0x0F0F0F0F00000000 & (b ^ b<<28)
	b ^= t ^ t>>28
	t = 0x3333000033330000 & (b ^ b<<14)
	b ^= t ^ t>>14
	t = 0x5500550055005500 & (b ^ b<<7)
	b ^= t ^ t>>7
	return bits.Reverse64(b)
}

// transformBB applies transform t (flip, then mirror, then transpose) to a
// bitboard.
func transformBB(b uint64, t int) uint64 {
	if b == 0 || b == ^uint64(0) {
		return b
	}
	if t&TransformFlip != 0 {
		b = flipBB(b)
	}
	if t&TransformMirror != 0 {
		b = mirrorBB(b)
	}
	if t&TransformTranspose != 0 {
		b = transposeBB(b)
	}
	return b
}

// transformSquare maps a side-to-move frame square into the frame of
// transform t (flip, then mirror, then transpose).
func transformSquare(sq Square, t int) Square {
	f, r := sq.File(), sq.Rank()
	if t&TransformFlip != 0 {
		f = 7 - f
	}
	if t&TransformMirror != 0 {
		r = 7 - r
	}
	if t&TransformTranspose != 0 {
		f, r = 7-r, 7-f
	}
	return NewSquare(f, r)
}

// UntransformSquare maps a square of the transformed frame (the planes and
// policy of a canonical format, see EncodeFormat) back to the side-to-move
// frame, undoing transpose, mirror and flip in that order; for black to
// move, mirror the result (Square.Mirror) to get the board square. The flag
// TransformLc0V032 is ignored: it changes the policy index, not the planes.
// It returns NoSquare for a square or transform out of range.
func UntransformSquare(sq Square, transform int) Square {
	transform, _, ok := splitTransform(transform)
	if sq < 0 || sq > 63 || !ok {
		return NoSquare
	}
	f, r := sq.File(), sq.Rank()
	if transform&TransformTranspose != 0 {
		f, r = 7-r, 7-f
	}
	if transform&TransformMirror != 0 {
		r = 7 - r
	}
	if transform&TransformFlip != 0 {
		f = 7 - f
	}
	return NewSquare(f, r)
}
