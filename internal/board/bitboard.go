package board

import "math/bits"

// Attack tables, built once at package initialisation from first principles
// (no pasted tables).
var (
	knightAttacks [64]uint64
	kingAttacks   [64]uint64
	pawnAttacks   [2][64]uint64 // squares a pawn of that colour on sq attacks
	rays          [8][64]uint64 // sliding rays, see dir* below
)

// Ray directions. The first four increase the square index, the last four
// decrease it; the blocker on a ray is then its lowest or highest set bit.
const (
	dirN = iota
	dirE
	dirNE
	dirNW
	dirS
	dirW
	dirSW
	dirSE
)

var dirDelta = [8][2]int{{0, 1}, {1, 0}, {1, 1}, {-1, 1}, {0, -1}, {-1, 0}, {-1, -1}, {1, -1}}

func init() {
	for sq := 0; sq < 64; sq++ {
		f, r := sq&7, sq>>3
		for _, d := range [][2]int{{1, 2}, {2, 1}, {2, -1}, {1, -2}, {-1, -2}, {-2, -1}, {-2, 1}, {-1, 2}} {
			if bb, ok := bit(f+d[0], r+d[1]); ok {
				knightAttacks[sq] |= bb
			}
		}
		for df := -1; df <= 1; df++ {
			for dr := -1; dr <= 1; dr++ {
				if df == 0 && dr == 0 {
					continue
				}
				if bb, ok := bit(f+df, r+dr); ok {
					kingAttacks[sq] |= bb
				}
			}
		}
		for _, df := range []int{-1, 1} {
			if bb, ok := bit(f+df, r+1); ok {
				pawnAttacks[White][sq] |= bb
			}
			if bb, ok := bit(f+df, r-1); ok {
				pawnAttacks[Black][sq] |= bb
			}
		}
		for d := 0; d < 8; d++ {
			for i := 1; ; i++ {
				bb, ok := bit(f+i*dirDelta[d][0], r+i*dirDelta[d][1])
				if !ok {
					break
				}
				rays[d][sq] |= bb
			}
		}
	}
}

func bit(f, r int) (uint64, bool) {
	if f < 0 || f > 7 || r < 0 || r > 7 {
		return 0, false
	}
	return 1 << uint(r*8+f), true
}

func rayPos(d, sq int, occ uint64) uint64 {
	a := rays[d][sq]
	if b := a & occ; b != 0 {
		a ^= rays[d][bits.TrailingZeros64(b)]
	}
	return a
}

func rayNeg(d, sq int, occ uint64) uint64 {
	a := rays[d][sq]
	if b := a & occ; b != 0 {
		a ^= rays[d][63-bits.LeadingZeros64(b)]
	}
	return a
}

func rookAttacks(sq int, occ uint64) uint64 {
	return rayPos(dirN, sq, occ) | rayPos(dirE, sq, occ) | rayNeg(dirS, sq, occ) | rayNeg(dirW, sq, occ)
}

func bishopAttacks(sq int, occ uint64) uint64 {
	return rayPos(dirNE, sq, occ) | rayPos(dirNW, sq, occ) | rayNeg(dirSW, sq, occ) | rayNeg(dirSE, sq, occ)
}

// mirrorBB flips a bitboard vertically (rank 1 <-> rank 8), lc0's Mirror.
func mirrorBB(b uint64) uint64 { return bits.ReverseBytes64(b) }
