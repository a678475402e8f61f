package board

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// checkLegal compares the legal moves of p and their indices under
// transform tr with lc0's, and checks the index -> move round trip.
func checkLegal(t *testing.T, tag string, p *Position, r testutil.RefRecord, tr int) {
	t.Helper()
	moves, idx := LegalIndicesT(p, tr)
	got := map[string]int{}
	for i, m := range moves {
		got[m.UCI()] = idx[i]
		back, err := MoveFromIndexT(p, idx[i], tr)
		if err != nil || back != m {
			t.Errorf("%s: MoveFromIndexT(PolicyIndexT(%s)=%d, %d) = %v, %v", tag, m, idx[i], tr, back, err)
		}
	}
	if len(got) != len(r.LegalMoves) {
		t.Errorf("%s: %d legal moves, want %d", tag, len(got), len(r.LegalMoves))
	}
	for _, lm := range r.LegalMoves {
		i, ok := got[lm.UCI]
		if !ok {
			t.Errorf("%s: legal move %s missing", tag, lm.UCI)
			continue
		}
		if i != lm.NNIndex {
			t.Errorf("%s: %s index %d under transform %d, want %d", tag, lm.UCI, i, tr, lm.NNIndex)
		}
	}
	mask := make([]float32, PolicySize)
	LegalMaskT(p, tr, mask)
	want := make([]float32, PolicySize)
	for _, lm := range r.LegalMoves {
		want[lm.NNIndex] = 1
	}
	if !slices.Equal(mask, want) {
		t.Errorf("%s: LegalMaskT does not match lc0's indices", tag)
	}
}

func TestParseInputFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want InputFormat
		ok   bool
	}{
		{"1", InputClassical, true},
		{"classical", InputClassical, true},
		{"2", InputCastlingPlane, true},
		{"Castling-Plane", InputCastlingPlane, true},
		{"3", InputCanonical, true},
		{"canonical", InputCanonical, true},
		{"4", InputCanonicalHectoplies, true},
		{"canonical-hectoplies", InputCanonicalHectoplies, true},
		{" 5 ", InputCanonicalV2, true},
		{"canonical-v2", InputCanonicalV2, true},
		{"0", 0, false},
		{"6", 0, false},
		{"132", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"canonical_v2", 0, false},
		{"InputFormat(3)", 0, false},
	} {
		got, err := ParseInputFormat(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseInputFormat(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "board: input format") {
			t.Errorf("ParseInputFormat(%q): error %q lacks the package prefix", tc.in, err)
		}
		if tc.ok {
			if back, err := ParseInputFormat(got.String()); err != nil || back != got {
				t.Errorf("ParseInputFormat(%q.String()) = %v, %v", got, back, err)
			}
		}
	}
	if s := InputFormat(132).String(); s != "InputFormat(132)" {
		t.Errorf("String of 132 = %q", s)
	}
}

func FuzzParseInputFormat(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInputFormat(s)
		if err != nil {
			return
		}
		if !got.Valid() {
			t.Fatalf("%q parsed to unsupported %d", s, int(got))
		}
		if back, err := ParseInputFormat(got.String()); err != nil || back != got {
			t.Fatalf("%q: String %q parses to %v, %v", s, got.String(), back, err)
		}
	})
}

// TestTransformBitboards checks the bitboard transforms (delta swaps)
// against the square mapping, on single squares and random sets, and
// against lc0's documented fixed points: flip a1->h1, mirror a1->a8,
// transpose a1->h8 with the h1-a8 diagonal fixed.
func TestTransformBitboards(t *testing.T) {
	for _, tc := range []struct {
		t        int
		from, to string
	}{
		{TransformFlip, "a1", "h1"}, {TransformFlip, "c5", "f5"},
		{TransformMirror, "a1", "a8"}, {TransformMirror, "c5", "c4"},
		{TransformTranspose, "a1", "h8"}, {TransformTranspose, "h1", "h1"},
		{TransformTranspose, "a8", "a8"}, {TransformTranspose, "e4", "e4"},
		{TransformTranspose, "b1", "h7"}, {TransformTranspose, "h2", "g1"},
		{TransformFlip | TransformTranspose, "a1", "h1"},
		{TransformFlip | TransformTranspose, "c4", "e3"}, // fen_halfmove_40_plus_moves: our king
		{TransformFlip | TransformMirror, "b2", "g7"},
	} {
		from, _ := ParseSquare(tc.from)
		to, _ := ParseSquare(tc.to)
		if got := transformSquare(from, tc.t); got != to {
			t.Errorf("transformSquare(%s, %d) = %s, want %s", from, tc.t, got, to)
		}
		if got := UntransformSquare(to, tc.t); got != from {
			t.Errorf("UntransformSquare(%s, %d) = %s, want %s", to, tc.t, got, from)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for tr := 0; tr < 8; tr++ {
		for sq := Square(0); sq < 64; sq++ {
			if got, want := transformBB(sqBB(sq), tr), sqBB(transformSquare(sq, tr)); got != want {
				t.Errorf("transform %d of %s: %#x, want %#x", tr, sq, got, want)
			}
			if UntransformSquare(transformSquare(sq, tr), tr) != sq {
				t.Errorf("transform %d: %s does not round trip", tr, sq)
			}
		}
		for i := 0; i < 200; i++ {
			b := rng.Uint64() & rng.Uint64()
			var want uint64
			for x := b; x != 0; x &= x - 1 {
				want |= sqBB(transformSquare(Square(trailingZeros(x)), tr))
			}
			if got := transformBB(b, tr); got != want {
				t.Fatalf("transform %d of %#x: %#x, want %#x", tr, b, got, want)
			}
		}
	}
	for _, bad := range []struct {
		sq Square
		t  int
	}{{NoSquare, 0}, {64, 1}, {0, 8}, {0, -1}} {
		if got := UntransformSquare(bad.sq, bad.t); got != NoSquare {
			t.Errorf("UntransformSquare(%d, %d) = %s, want NoSquare", bad.sq, bad.t, got)
		}
	}
}

func trailingZeros(x uint64) int {
	n := 0
	for x&1 == 0 {
		x >>= 1
		n++
	}
	return n
}

// symmetric returns p with its placement transformed by t in absolute
// coordinates; p must have no castling rights and no en-passant square.
func symmetric(p *Position, t int) *Position {
	q := *p
	for c := range q.color {
		q.color[c] = transformBB(p.color[c], t)
	}
	for pt := range q.piece {
		q.piece[pt] = transformBB(p.piece[pt], t)
	}
	return &q
}

// TestCanonicalInvariance checks what canonicalization is for: a position
// and its mirror images (all 8 without pawns, the file flip with pawns)
// encode to the same planes in formats 3-5, and their legal moves, mapped
// into the frame of the planes, to the same policy indices. Histories are
// played move for move in both.
func TestCanonicalInvariance(t *testing.T) {
	fens := []string{
		"8/5k2/8/8/3R4/8/2K5/3r4 w - - 7 61",
		"8/8/3k4/8/8/3K4/3Q4/8 b - - 12 76",
		"8/8/8/3k4/8/8/8/Q3K3 b - - 0 1",
		"6k1/8/8/8/8/8/8/K4R1R w - - 3 40",
		"7k/8/8/4b3/8/8/1N6/K7 w - - 0 50",   // kings on the a1-h8 diagonal
		"k7/8/8/8/8/5N2/6n1/7K b - - 9 50",   // our king on h1, a transpose tie-break
		"3k4/8/8/2n5/5N2/8/8/3K4 w - - 4 30", // kings on d-file: symmetric files
		"8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1",
		"4k3/8/8/8/8/8/4P3/4K3 b - - 5 1",
	}
	rng := rand.New(rand.NewPCG(7, 11))
	planes := make([]float32, NumPlanes*64)
	ref := make([]float32, NumPlanes*64)
	for _, fen := range fens {
		p0, err := ParseFEN(fen)
		if err != nil {
			t.Fatal(err)
		}
		// A random line of up to 12 plies, so history planes take part.
		var line []Move
		q := *p0
		for len(line) < 12 {
			ms := q.LegalMoves()
			if len(ms) == 0 {
				break
			}
			m := ms[rng.IntN(len(ms))]
			line = append(line, m)
			q.play(m)
		}
		syms := []int{0, 1, 2, 3, 4, 5, 6, 7}
		if p0.piece[Pawn] != 0 {
			syms = []int{0, TransformFlip}
		}
		for _, f := range []InputFormat{InputCanonical, InputCanonicalHectoplies, InputCanonicalV2} {
			for _, fill := range []HistoryFill{FillFENOnly, FillNo, FillCurrent} {
				for ply := 0; ply <= len(line); ply++ {
					var refIdx map[int]bool
					for _, s := range syms {
						g := NewGame(symmetric(p0, s))
						for _, m := range line[:ply] {
							g.Play(Move{From: transformSquare(m.From, s), To: transformSquare(m.To, s), Promo: m.Promo})
						}
						tr := g.EncodeFormat(f, fill, planes)
						// Moves in the frame of the planes (the default
						// TransposePlanes; lc0 v0.32's differs, see policySquare).
						idx := map[int]bool{}
						for _, m := range g.Current().LegalMoves() {
							i, err := PolicyIndexT(g.Current(), m, tr)
							if err != nil {
								t.Fatal(err)
							}
							idx[i] = true
						}
						if s == 0 {
							copy(ref, planes)
							refIdx = idx
							continue
						}
						tag := fmt.Sprintf("%s + %d plies, symmetry %d, format %s, fill %s", fen, ply, s, f, fill)
						// lc0 breaks ties by the current position alone: when it
						// is symmetric in the transpose diagonal, the histories
						// of mirror images may stay transposed.
						skipHistory := transposeSymmetric(planes)
						for i := range planes {
							if skipHistory && i >= PlanesPerSlot*64 && i < AuxPlaneBase*64 {
								continue
							}
							if planes[i] != ref[i] {
								t.Errorf("%s: plane %d square %s differs", tag, i/64, Square(i%64))
								break
							}
						}
						if len(idx) != len(refIdx) {
							t.Errorf("%s: %d policy indices, want %d", tag, len(idx), len(refIdx))
						}
						for i := range idx {
							if !refIdx[i] {
								t.Errorf("%s: policy index %d not in the original's", tag, i)
								break
							}
						}
					}
				}
			}
		}
	}
}

// transposeSymmetric reports whether the current-position planes (slot 0)
// are unchanged by the transpose.
func transposeSymmetric(planes []float32) bool {
	for pl := 0; pl < PlanesPerSlot; pl++ {
		for sq := Square(0); sq < 64; sq++ {
			if planes[pl*64+int(sq)] != planes[pl*64+int(transformSquare(sq, TransformTranspose))] {
				return false
			}
		}
	}
	return true
}

// TestCanonicalKingRegion checks the transform against its closed-form
// goal on random pawnless positions without castling: our king ends on
// files e-h and ranks 1-4, on or below the h1-e4 diagonal.
func TestCanonicalKingRegion(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	n := 0
	for n < 2000 {
		var p Position
		p.ep = NoSquare
		p.stm = Color(rng.IntN(2))
		occ := uint64(0)
		place := func(c Color, pt PieceType) {
			for {
				sq := Square(rng.IntN(64))
				if occ&sqBB(sq) == 0 {
					occ |= sqBB(sq)
					p.color[c] |= sqBB(sq)
					p.piece[pt] |= sqBB(sq)
					return
				}
			}
		}
		place(White, King)
		place(Black, King)
		for i := rng.IntN(4); i > 0; i-- {
			place(Color(rng.IntN(2)), PieceType(2+rng.IntN(4)))
		}
		if p.attackersTo(p.kingSq(p.stm.Other()), p.stm, p.occupied()) != 0 {
			continue
		}
		n++
		tr := canonicalTransform(&p)
		k := transformSquare(relSquare(p.kingSq(p.stm), p.stm), tr)
		if k.File() < 4 || k.Rank() > 3 || k.Rank() > 7-k.File() {
			t.Fatalf("%s: transform %d puts our king on %s", p.FEN(), tr, k)
		}
	}
}

func relSquare(sq Square, us Color) Square {
	if us == Black {
		return sq.Mirror()
	}
	return sq
}

// TestCastlingPlaneFormat checks format 2 as lc0's encoder composes it: the
// classical planes except 104-107, where 104/105 are the castling-rook
// planes lc0 gave for the same positions in formats 3-5 (whose
// transform is 0 whenever castling rights remain).
func TestCastlingPlaneFormat(t *testing.T) {
	all := readDumps(t, "*.refdump*.jsonl.gz", "reference", "lc0", "synthetic")
	var recs []testutil.RefRecord
	for _, r := range all["se_apol_penc_mlh.refdump.jsonl.gz"] {
		if r.Error == "" {
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		testutil.Missing(t, "no format-3 refdump")
	}
	classical := make([]float32, NumPlanes*64)
	got := make([]float32, NumPlanes*64)
	withRights := 0
	for _, r := range recs {
		g, err := ParseGame(r.FENStart, strings.Join(r.MovesFromFEN, " "))
		if err != nil {
			t.Fatal(err)
		}
		want := testutil.DecodePlanes(t, r)
		g.Encode(FillFENOnly, classical)
		if tr := g.EncodeFormat(InputCastlingPlane, FillFENOnly, got); tr != 0 {
			t.Errorf("%s: format 2 transform %d", r.Name, tr)
		}
		for i := range got {
			pl := i / 64
			var w float32
			switch {
			case pl == AuxPlaneBase || pl == AuxPlaneBase+1:
				w = want[i]
			case pl == AuxPlaneBase+2 || pl == AuxPlaneBase+3:
				w = 0
			default:
				w = classical[i]
			}
			if got[i] != w {
				t.Errorf("%s: plane %d square %s: got %v, want %v", r.Name, pl, Square(i%64), got[i], w)
				break
			}
		}
		if g.Current().castling != 0 {
			withRights++
		}
	}
	if withRights == 0 {
		t.Fatal("no position with castling rights")
	}
}

// TestCanonicalFillEdges pins the two places where EncodeFormat decides what
// lc0 does not: format 5 with a FEN whose rule-50 count is not 0 (lc0
// crashes) gives the FillNo planes, and FillCurrent repeats the current
// position while the canonical rules let it.
func TestCanonicalFillEdges(t *testing.T) {
	a := make([]float32, NumPlanes*64)
	b := make([]float32, NumPlanes*64)
	for _, fen := range []string{
		"r3k2r/pppq1ppp/2npbn2/2b1p3/2B1P3/2NPBN2/PPPQ1PPP/R3K2R w Kq - 4 5",
		"8/5k2/8/8/3R4/8/2K5/3r4 w - - 87 61",
	} {
		g, err := ParseGame(fen, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, fill := range []HistoryFill{FillFENOnly, FillAlways} {
			ta := g.EncodeFormat(InputCanonicalV2, fill, a)
			tb := g.EncodeFormat(InputCanonicalV2, FillNo, b)
			if ta != tb || !slices.Equal(a, b) {
				t.Errorf("%s fill %s: format 5 differs from fill no", fen, fill)
			}
		}
	}
	// Knights out and back: rule-50 count 4, the current position repeated
	// once, so every slot keeps it, in v2 too.
	g, err := ParseGame("startpos", "g1f3 g8f6 f3g1 f6g8")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []InputFormat{InputCanonical, InputCanonicalV2} {
		g.EncodeFormat(f, FillCurrent, a)
		for i := 1; i < HistorySlots; i++ {
			if !slices.Equal(a[:PlanesPerSlot*64], a[i*PlanesPerSlot*64:(i+1)*PlanesPerSlot*64]) {
				t.Errorf("format %s fill current: slot %d differs from slot 0", f, i)
			}
		}
		if a[12*64] != 1 {
			t.Errorf("format %s fill current: repetition plane not set", f)
		}
	}
	// After a pawn move the history is the current position alone.
	g, err = ParseGame("startpos", "e2e4")
	if err != nil {
		t.Fatal(err)
	}
	g.EncodeFormat(InputCanonical, FillCurrent, a)
	for i := PlanesPerSlot * 64; i < AuxPlaneBase*64; i++ {
		if a[i] != 0 {
			t.Fatalf("fill current after a pawn move: plane %d not empty", i/64)
		}
	}
}

// TestPolicyIndexTErrors checks the error paths of the transform-aware
// policy functions.
func TestPolicyIndexTErrors(t *testing.T) {
	p, err := ParseFEN("8/8/8/3k4/8/8/8/Q3K3 b - - 0 1")
	if err != nil {
		t.Fatal(err)
	}
	m := p.LegalMoves()[0]
	for _, tr := range []int{-1, 8} {
		if _, err := PolicyIndexT(p, m, tr); err == nil {
			t.Errorf("PolicyIndexT transform %d: no error", tr)
		}
		if _, err := MoveFromIndexT(p, 0, tr); err == nil {
			t.Errorf("MoveFromIndexT transform %d: no error", tr)
		}
		if ms, ix := LegalIndicesT(p, tr); ms != nil || ix != nil {
			t.Errorf("LegalIndicesT transform %d: moves", tr)
		}
	}
	if _, err := MoveFromIndexT(p, PolicySize, 5); err == nil {
		t.Error("MoveFromIndexT out of range: no error")
	}
	// e2e4's index has no legal move here under any transform.
	if _, err := MoveFromIndexT(p, 322, 5); err == nil || !strings.Contains(err.Error(), "transform 5") {
		t.Errorf("MoveFromIndexT(322, 5) = %v", err)
	}
}

// TestPolicySquare pins lc0 v0.32's policy frame: the plane frame without
// the transpose bit, and for every transposing transform the 180 degree
// rotation lc0's MoveToNNIndex uses.
func TestPolicySquare(t *testing.T) {
	for sq := Square(0); sq < 64; sq++ {
		for _, tr := range []int{0, 1, 2, 3} {
			if got, want := policySquare(sq, tr, true), transformSquare(sq, tr); got != want {
				t.Errorf("policySquare(%s, %d) = %s, want %s", sq, tr, got, want)
			}
		}
		for _, tr := range []int{4, 5, 6, 7} {
			if got, want := policySquare(sq, tr, true), NewSquare(7-sq.File(), 7-sq.Rank()); got != want {
				t.Errorf("policySquare(%s, %d) = %s, want %s", sq, tr, got, want)
			}
		}
	}
}

// TestLc0EncoderCases repeats the expectations of lc0's own encoder tests
// (src/neural/encoder_test.cc) for formats 2 and 3: the start position with
// history fill no, and the rule-50 plane after 1. Nf3 and 1... Nf6.
func TestLc0EncoderCases(t *testing.T) {
	const all = ^uint64(0)
	type plane struct {
		mask uint64
		v    float32
	}
	for _, tc := range []struct {
		f     InputFormat
		moves string
		want  map[int]plane // planes not listed are empty from 13 to 111
	}{
		{InputCastlingPlane, "", map[int]plane{
			104: {1 | 1<<56, 1}, 105: {1<<7 | 1<<63, 1}, 111: {all, 1}}},
		{InputCanonical, "", map[int]plane{
			104: {1 | 1<<56, 1}, 105: {1<<7 | 1<<63, 1}, 111: {all, 1}}},
		{InputCanonical, "g1f3", map[int]plane{
			104: {1 | 1<<56, 1}, 105: {1<<7 | 1<<63, 1}, 109: {all, 1}, 111: {all, 1}}},
		{InputCanonical, "g1f3 g8f6", map[int]plane{
			104: {1 | 1<<56, 1}, 105: {1<<7 | 1<<63, 1}, 109: {all, 2}, 111: {all, 1}}},
		{InputCanonicalHectoplies, "g1f3 g8f6", map[int]plane{
			104: {1 | 1<<56, 1}, 105: {1<<7 | 1<<63, 1}, 109: {all, 0.02}, 111: {all, 1}}},
	} {
		g, err := ParseGame("startpos", tc.moves)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, NumPlanes*64)
		if tr := g.EncodeFormat(tc.f, FillNo, got); tr != 0 {
			t.Errorf("%s %q: transform %d", tc.f, tc.moves, tr)
		}
		// Slot 0 is the current position as Encode has it.
		classical := make([]float32, NumPlanes*64)
		g.Encode(FillNo, classical)
		if !slices.Equal(got[:PlanesPerSlot*64], classical[:PlanesPerSlot*64]) {
			t.Errorf("%s %q: current-position planes differ from Encode", tc.f, tc.moves)
		}
		for pl := PlanesPerSlot; pl < NumPlanes; pl++ {
			if tc.moves != "" && pl < AuxPlaneBase {
				continue // history after knight moves: checked by the refdumps
			}
			w := tc.want[pl]
			for sq := 0; sq < 64; sq++ {
				var ws float32
				if w.mask&(1<<uint(sq)) != 0 {
					ws = w.v
				}
				if got[pl*64+sq] != ws {
					t.Errorf("%s %q: plane %d square %s = %v, want %v", tc.f, tc.moves, pl, Square(sq), got[pl*64+sq], ws)
					break
				}
			}
		}
	}
}
