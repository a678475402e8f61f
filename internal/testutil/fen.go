package testutil

import "strings"

// PlacementFEN is the piece-placement field of a FEN, written here rather than by the board package so that
// tests of FEN readers and board edits have an independent writer. grid holds the 64 squares rank by rank
// from a1 (index rank*8+file): a FEN piece letter, or '.' on an empty square.
func PlacementFEN(grid []byte) string {
	var b strings.Builder
	for r := 7; r >= 0; r-- {
		n := 0
		for f := 0; f < 8; f++ {
			c := grid[r*8+f]
			if c == '.' {
				n++
				continue
			}
			if n > 0 {
				b.WriteByte(byte('0' + n))
				n = 0
			}
			b.WriteByte(c)
		}
		if n > 0 {
			b.WriteByte(byte('0' + n))
		}
		if r > 0 {
			b.WriteByte('/')
		}
	}
	return b.String()
}
