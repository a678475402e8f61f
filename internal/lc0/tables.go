package lc0

// lc0's fixed tables, generated from their rules rather than copied: the 1858-move policy order, where each
// move sits in the convolution and attention policy outputs, and the attention body's positional map. Tests
// compare each with lc0's exported graphs.

// policyMove is one of lc0's 1858 policy moves, squares 0 (a1) .. 63 (h8) in the mover's frame; promo is
// 'q', 'r', 'b' or 0 (knight promotions share the plain move's index).
type policyMove struct {
	from, to int
	promo    byte
}

// policyMoves lists lc0's policy moves in order: for every from-square the queen-line and knight targets in
// square order, then the promotions from the 7th rank (target file left, straight, right; each q, r, b).
func policyMoves() []policyMove {
	out := make([]policyMove, 0, 1858)
	for from := 0; from < 64; from++ {
		for to := 0; to < 64; to++ {
			df, dr := abs(to%8-from%8), abs(to/8-from/8)
			if from != to && (df == 0 || dr == 0 || df == dr || df*dr == 2) {
				out = append(out, policyMove{from, to, 0})
			}
		}
	}
	for f := 0; f < 8; f++ {
		for d := -1; d <= 1; d++ {
			if f+d < 0 || f+d > 7 {
				continue
			}
			for _, p := range []byte("qrb") {
				out = append(out, policyMove{48 + f, 56 + f + d, p})
			}
		}
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// Convolution policy planes: 8 queen directions x 7 distances (clockwise from north), 8 knight jumps
// (clockwise from north-north-east), then 3 promotion directions x (r, b, q).
var (
	queenDirs  = [8][2]int{{0, 1}, {1, 1}, {1, 0}, {1, -1}, {0, -1}, {-1, -1}, {-1, 0}, {-1, 1}}
	knightDirs = [8][2]int{{1, 2}, {2, 1}, {2, -1}, {1, -2}, {-1, -2}, {-2, -1}, {-2, 1}, {-1, 2}}
)

// convPolicyMap maps each policy index to its position in the flattened [80,8,8] convolution output.
func convPolicyMap() []int32 {
	moves := policyMoves()
	out := make([]int32, len(moves))
	for i, m := range moves {
		df, dr := m.to%8-m.from%8, m.to/8-m.from/8
		plane := -1
		switch {
		case m.promo != 0:
			piece := map[byte]int{'r': 0, 'b': 1, 'q': 2}[m.promo]
			plane = 64 + 3*(df+1) + piece
		case abs(df)*abs(dr) == 2:
			for k, d := range knightDirs {
				if d == [2]int{df, dr} {
					plane = 56 + k
				}
			}
		default:
			dist := max(abs(df), abs(dr))
			for k, d := range queenDirs {
				if d == [2]int{sign(df), sign(dr)} {
					plane = 7*k + dist - 1
				}
			}
		}
		out[i] = int32(plane*64 + m.from)
	}
	return out
}

// attnPolicyMap maps each policy index to its position in the attention head's flattened output: 64x64
// from-to logits, then 8 from-files x 8 to-files x (q, r, b) promotion logits.
func attnPolicyMap() []int32 {
	moves := policyMoves()
	out := make([]int32, len(moves))
	for i, m := range moves {
		if m.promo == 0 {
			out[i] = int32(64*m.from + m.to)
			continue
		}
		piece := map[byte]int{'q': 0, 'r': 1, 'b': 2}[m.promo]
		out[i] = int32(4096 + 24*(m.from%8) + 3*(m.to%8) + piece)
	}
	return out
}

// posEncoding is the attention body's positional map (INPUT_EMBEDDING_PE_MAP): for each from-square, 1 on
// the squares a queen or knight reaches, -1 on itself, 0 elsewhere.
func posEncoding() []float32 {
	out := make([]float32, 64*64)
	for from := 0; from < 64; from++ {
		for to := 0; to < 64; to++ {
			df, dr := abs(to%8-from%8), abs(to/8-from/8)
			switch {
			case from == to:
				out[64*from+to] = -1
			case df == 0 || dr == 0 || df == dr || df*dr == 2:
				out[64*from+to] = 1
			}
		}
	}
	return out
}
