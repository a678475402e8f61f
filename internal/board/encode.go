package board

import (
	"fmt"
	"math/bits"
	"strings"
)

// HistoryFill says what goes into history slots older than the start of the
// game (lc0's FillEmptyHistory, plus FillCurrent).
type HistoryFill int

const (
	// FillFENOnly is lc0's default: empty slots get copies of the start
	// position (with an en-passant double push undone), unless the start
	// position is the standard starting board, then they stay zero. Like
	// lc0's ChessBoard equality, "standard starting board" includes white to
	// move, all four castling rights and no en-passant square: the start
	// placement with black to move is filled.
	FillFENOnly HistoryFill = iota
	// FillAlways fills empty slots with the start position in every case.
	FillAlways
	// FillNo leaves empty slots zero.
	FillNo
	// FillCurrent ignores the history: all 8 slots hold the current position.
	FillCurrent
)

var fillNames = [...]string{"fen-only", "always", "no", "current"}

// ParseHistoryFill parses "fen-only", "always", "no" or "current".
func ParseHistoryFill(s string) (HistoryFill, error) {
	for i, n := range fillNames {
		if strings.EqualFold(s, n) {
			return HistoryFill(i), nil
		}
	}
	return 0, fmt.Errorf("board: history fill %q: want one of %s", s, strings.Join(fillNames[:], ", "))
}

// String returns the name ParseHistoryFill accepts.
func (f HistoryFill) String() string {
	if f < 0 || int(f) >= len(fillNames) {
		return fmt.Sprintf("HistoryFill(%d)", int(f))
	}
	return fillNames[f]
}

// Plane layout of lc0's classical 112-plane input (INPUT_CLASSICAL_112_PLANE).
const (
	// NumPlanes is the number of input planes of a classical lc0 network.
	NumPlanes = 112
	// HistorySlots is the number of positions encoded (current + 7 before).
	HistorySlots = 8
	// PlanesPerSlot is 6 piece types per side plus the repetition plane.
	PlanesPerSlot = 13
	// AuxPlaneBase is the first plane after the history.
	AuxPlaneBase = HistorySlots * PlanesPerSlot
)

// slot is one history entry to encode: a position seen from the side to
// move of the current position.
type slot struct {
	pos    *Position
	rep    int
	undoEP bool // a filled copy of a FEN start: undo the double push
}

// slots returns the positions of the 8 history slots, nil where the slot
// stays empty; this is lc0's walk back through PositionHistory in
// EncodePositionForNN, shared by every input format.
func (g *Game) slots(fill HistoryFill) (s [HistorySlots]slot) {
	n := len(g.pos)
	if fill == FillCurrent {
		for i := range s {
			s[i] = slot{pos: &g.pos[n-1], rep: g.reps[n-1]}
		}
		return s
	}
	for i := 0; i < HistorySlots; i++ {
		idx := n - 1 - i
		if idx >= 0 {
			s[i] = slot{pos: &g.pos[idx], rep: g.reps[idx]}
			continue
		}
		first := &g.pos[0]
		// lc0 compares position 0 with ChessBoard::kStartposBoard using
		// ChessBoard equality, which includes the side to move (flipped_),
		// castling rights and the en-passant flag.
		if fill == FillNo || fill == FillFENOnly && first.sameBoard(&startPos) {
			break
		}
		s[i] = slot{pos: first, rep: g.reps[0], undoEP: first.ep != NoSquare}
	}
	return s
}

// Encode writes lc0's 112 classical input planes for the current position
// into dst, laid out [plane][rank][file] with a1 at index 0 of each plane, in
// lc0's side-to-move frame: for black to move, colours swap (ours = black)
// and ranks are mirrored (square sq goes to sq^56). Planes 13*i+j hold
// history slot i (0 = current): j = 0..5 our P,N,B,R,Q,K, 6..11 theirs,
// 12 all ones if that position occurred before. Planes 104..107 are our O-O-O,
// our O-O, their O-O-O, their O-O; 108 all ones if black is to move; 109 the
// rule-50 ply count; 110 zeros; 111 ones.
//
// Encode panics if len(dst) != NumPlanes*64 (a programming error, not bad
// input).
func (g *Game) Encode(fill HistoryFill, dst []float32) {
	if len(dst) != NumPlanes*64 {
		panic(fmt.Sprintf("board: encode: len(dst) = %d, want %d", len(dst), NumPlanes*64))
	}
	clear(dst)
	cur := &g.pos[len(g.pos)-1]
	encodeClassical(cur, g.slots(fill), dst)
}

// encodeClassical is input format 1 (INPUT_CLASSICAL_112_PLANE); dst is
// zeroed. Other formats can reuse slots and differ only here.
func encodeClassical(cur *Position, s [HistorySlots]slot, dst []float32) {
	us := cur.stm
	for i := range s {
		if s[i].pos == nil {
			break
		}
		encodeSlot(dst[i*PlanesPerSlot*64:(i+1)*PlanesPerSlot*64], s[i], us)
	}
	ourK, ourQ := cur.CanCastle(us)
	theirK, theirQ := cur.CanCastle(us.Other())
	setPlane(dst, AuxPlaneBase+0, ourQ, 1)
	setPlane(dst, AuxPlaneBase+1, ourK, 1)
	setPlane(dst, AuxPlaneBase+2, theirQ, 1)
	setPlane(dst, AuxPlaneBase+3, theirK, 1)
	setPlane(dst, AuxPlaneBase+4, us == Black, 1)
	setPlane(dst, AuxPlaneBase+5, cur.rule50 != 0, float32(cur.rule50))
	setPlane(dst, AuxPlaneBase+7, true, 1)
}

func setPlane(dst []float32, plane int, on bool, v float32) {
	if !on {
		return
	}
	p := dst[plane*64 : plane*64+64]
	for i := range p {
		p[i] = v
	}
}

// encodeSlot writes the 13 planes of one history slot from the point of view
// of us.
func encodeSlot(dst []float32, s slot, us Color) {
	p := s.pos
	var pawnFix [2]uint64 // XOR masks applied to each colour's pawns
	if s.undoEP {
		// The side not to move in p just pushed a pawn two squares past
		// p.ep; put it back (lc0 does the same on its filled copies).
		mover := p.stm.Other()
		now, before := p.ep-8, p.ep+8
		if p.stm == Black {
			now, before = p.ep+8, p.ep-8
		}
		pawnFix[mover] = sqBB(now) | sqBB(before)
	}
	for side := 0; side < 2; side++ {
		c := us
		if side == 1 {
			c = us.Other()
		}
		for pt := Pawn; pt <= King; pt++ {
			b := p.color[c] & p.piece[pt]
			if pt == Pawn {
				b ^= pawnFix[c]
			}
			if us == Black {
				b = mirrorBB(b)
			}
			plane := dst[(side*6+int(pt)-1)*64:]
			for ; b != 0; b &= b - 1 {
				plane[bits.TrailingZeros64(b)] = 1
			}
		}
	}
	if s.rep >= 1 {
		setPlane(dst, 12, true, 1)
	}
}
