package board

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/notnil/chess"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func encode(t testing.TB, g *Game, fill HistoryFill) []float32 {
	t.Helper()
	out := make([]float32, NumPlanes*64)
	g.Encode(fill, out)
	return out
}

// slotPlanes returns the 13 planes of history slot i.
func slotPlanes(planes []float32, i int) []float32 {
	return planes[i*PlanesPerSlot*64 : (i+1)*PlanesPerSlot*64]
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// planeMask turns one 64-float plane back into a bitboard.
func planeMask(planes []float32, plane int) uint64 {
	var m uint64
	for sq := 0; sq < 64; sq++ {
		if planes[plane*64+sq] != 0 {
			m |= 1 << uint(sq)
		}
	}
	return m
}

func TestRepetitions(t *testing.T) {
	tests := []struct {
		name, fen, moves string
		want             []int // repetition count after each ply (index 0 = start)
	}{
		{"knights out and back", "startpos", "g1f3 g8f6 f3g1 f6g8", []int{0, 0, 0, 0, 1}},
		{"twice", "startpos", "g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8", []int{0, 0, 0, 0, 1, 1, 1, 1, 2}},
		{"pawn move in between", "startpos", "g1f3 g8f6 f3g1 f6g8 e2e3 e7e6 g1f3 g8f6 f3g1 f6g8", []int{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}},
		// The FEN position has an en-passant right; the same placement at
		// ply 4 has none, so it is not a repetition of it (lc0 compares the
		// flag), while plies 5-8 repeat plies 1-4.
		{"en passant right differs", "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
			"g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8", []int{0, 0, 0, 0, 0, 1, 1, 1, 1}},
		// Lost castling rights make a different position: plies 4 and 5 have
		// the placement of plies 0 and 1 but fewer rights; plies 6-8 repeat
		// plies 2-4.
		{"castling rights differ", "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1",
			"e1e2 e8e7 e2e1 e7e8 e1e2 e8e7 e2e1 e7e8", []int{0, 0, 0, 0, 0, 0, 1, 1, 1}},
	}
	for _, tc := range tests {
		g, err := ParseGame(tc.fen, tc.moves)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []int
		for i := range g.reps {
			got = append(got, g.reps[i])
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: repetitions %v, want %v", tc.name, got, tc.want)
		}
		planes := encode(t, g, FillFENOnly)
		if on := planes[12*64] == 1; on != (tc.want[len(tc.want)-1] > 0) {
			t.Errorf("%s: repetition plane %v", tc.name, on)
		}
	}
}

func TestHistoryFill(t *testing.T) {
	const epFEN = "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3"
	t.Run("fen-only undoes the en-passant push", func(t *testing.T) {
		g, _ := ParseGame(epFEN, "")
		pl := encode(t, g, FillFENOnly)
		s0, s1 := slotPlanes(pl, 0), slotPlanes(pl, 1)
		f5, f7 := uint64(1)<<NewSquare(5, 4), uint64(1)<<NewSquare(5, 6)
		if got, want := planeMask(s1, 6), planeMask(s0, 6)&^f5|f7; got != want {
			t.Errorf("their pawns in filled slot %#x, want %#x", got, want)
		}
		for j := 0; j < PlanesPerSlot; j++ {
			if j != 6 && !slices.Equal(s0[j*64:(j+1)*64], s1[j*64:(j+1)*64]) {
				t.Errorf("filled slot plane %d differs from the current one", j)
			}
		}
		for i := 2; i < HistorySlots; i++ {
			if !slices.Equal(slotPlanes(pl, i), s1) {
				t.Errorf("slot %d differs from slot 1", i)
			}
		}
	})
	t.Run("fen-only fills black-to-move copies in black's frame", func(t *testing.T) {
		g, _ := ParseGame("4k3/8/8/8/8/8/p7/4K3 b - - 0 1", "")
		pl := encode(t, g, FillFENOnly)
		// Ours = black, mirrored: the a2 pawn appears on a7, the king on e1.
		if planeMask(pl, 0) != 1<<NewSquare(0, 6) || planeMask(pl, 5) != 1<<E1 || planeMask(pl, 11) != 1<<E8 {
			t.Errorf("current slot: pawns %#x king %#x", planeMask(pl, 0), planeMask(pl, 5))
		}
		for i := 1; i < HistorySlots; i++ {
			if !slices.Equal(slotPlanes(pl, i), slotPlanes(pl, 0)) {
				t.Errorf("slot %d differs", i)
			}
		}
	})
	t.Run("no leaves empty slots zero", func(t *testing.T) {
		g, _ := ParseGame(epFEN, "g1f3")
		pl := encode(t, g, FillNo)
		if allZero(slotPlanes(pl, 0)) || allZero(slotPlanes(pl, 1)) {
			t.Error("real history slots empty")
		}
		for i := 2; i < HistorySlots; i++ {
			if !allZero(slotPlanes(pl, i)) {
				t.Errorf("slot %d not zero", i)
			}
		}
	})
	t.Run("startpos is not filled by fen-only but by always", func(t *testing.T) {
		g, _ := ParseGame("startpos", "e2e4")
		fo, al := encode(t, g, FillFENOnly), encode(t, g, FillAlways)
		for i := 2; i < HistorySlots; i++ {
			if !allZero(slotPlanes(fo, i)) {
				t.Errorf("fen-only slot %d not zero", i)
			}
			if !slices.Equal(slotPlanes(al, i), slotPlanes(al, 1)) {
				t.Errorf("always slot %d differs from the start position", i)
			}
		}
		if !slices.Equal(fo[:2*PlanesPerSlot*64], al[:2*PlanesPerSlot*64]) || !slices.Equal(fo[AuxPlaneBase*64:], al[AuxPlaneBase*64:]) {
			t.Error("fill changed real slots or aux planes")
		}
	})
	t.Run("start board without its castling rights is filled", func(t *testing.T) {
		g, _ := ParseGame("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w - - 0 1", "")
		pl := encode(t, g, FillFENOnly)
		if allZero(slotPlanes(pl, 7)) {
			t.Error("slot 7 empty")
		}
	})
	t.Run("start board with black to move is filled (lc0 compares the side to move)", func(t *testing.T) {
		g, _ := ParseGame("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR b KQkq - 0 1", "")
		pl := encode(t, g, FillFENOnly)
		if allZero(slotPlanes(pl, 7)) {
			t.Error("slot 7 empty")
		}
	})
	t.Run("current repeats the current position", func(t *testing.T) {
		g, _ := ParseGame("startpos", "g1f3 g8f6 f3g1 f6g8 e2e4")
		pl := encode(t, g, FillCurrent)
		for i := 1; i < HistorySlots; i++ {
			if !slices.Equal(slotPlanes(pl, i), slotPlanes(pl, 0)) {
				t.Errorf("slot %d differs", i)
			}
		}
	})
}

func TestParseHistoryFill(t *testing.T) {
	for _, f := range []HistoryFill{FillFENOnly, FillAlways, FillNo, FillCurrent} {
		got, err := ParseHistoryFill(f.String())
		if err != nil || got != f {
			t.Errorf("round trip %v: %v %v", f, got, err)
		}
	}
	if _, err := ParseHistoryFill("sometimes"); err == nil {
		t.Error("bad fill accepted")
	}
}

func TestEncodeAuxPlanes(t *testing.T) {
	// Black to move, white may castle queenside only, black kingside only,
	// rule-50 count 37.
	g, err := ParseGame("r3k2r/8/8/8/8/8/8/R3K2R b Qk - 37 60", "")
	if err != nil {
		t.Fatal(err)
	}
	pl := encode(t, g, FillFENOnly)
	want := map[int]float32{104: 0, 105: 1, 106: 1, 107: 0, 108: 1, 109: 37, 110: 0, 111: 1}
	for plane, v := range want {
		for sq := 0; sq < 64; sq++ {
			if pl[plane*64+sq] != v {
				t.Fatalf("plane %d square %d = %v, want %v", plane, sq, pl[plane*64+sq], v)
			}
		}
	}
}

func TestEncodePanicsOnWrongLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	NewGame(nil).Encode(FillFENOnly, make([]float32, 10))
}

// replay runs f over every position of the good games of a shared PGN file
// (at most limit games).
func replay(t *testing.T, sub, name string, limit int, f func(pg *PGNGame, gm *Game, ply int, next *Move)) int {
	t.Helper()
	fh := openShared(t, sub, name)
	pr := NewPGNReader(fh)
	n := 0
	for n < limit {
		pg, err := pr.Next()
		if err != nil {
			if _, ok := err.(*GameError); ok {
				continue
			}
			break
		}
		n++
		_ = pg.Positions(func(gm *Game, ply int, next *Move) error {
			f(pg, gm, ply, next)
			return nil
		})
	}
	return n
}

// TestAgainstNotnil replays every game of a collection through SAN strings we
// generate in an independent implementation (notnil/chess) and compares the
// positions' full FEN (placement, side, castling, en passant, both clocks),
// checking our SAN writer, move parser and move application.
func TestAgainstNotnil(t *testing.T) {
	files := []string{"educhess-Morphy.pgn", "tcec-S1-Division_1.pgn"}
	if testing.Short() {
		files = files[:1]
	}
	for _, name := range files {
		var npos *chess.Position
		mismatches := 0
		// How often the fields beyond castling were non-trivial: a comparison of fields that are always "-"
		// and "0" would prove nothing.
		withEP, withClock := 0, 0
		games := replay(t, "pgn", name, 1<<30, func(pg *PGNGame, gm *Game, ply int, next *Move) {
			p := gm.Current()
			if ply == 0 {
				opt, err := chess.FEN(pg.StartFEN)
				if err != nil {
					t.Fatal(err)
				}
				npos = chess.NewGame(opt).Position()
			}
			got, want := p.FEN(), notnilFEN(npos)
			if got != want && mismatches < 5 {
				mismatches++
				t.Errorf("%s game %d ply %d: %s, notnil %s", name, pg.Index, ply, got, want)
			}
			if f := strings.Fields(want); f[3] != "-" {
				withEP++
			} else if f[4] != "0" {
				withClock++
			}
			if next == nil {
				return
			}
			san := p.SAN(*next)
			if m, err := p.ParseMove(san); err != nil || m != *next {
				t.Errorf("%s game %d ply %d: ParseMove(SAN(%s) = %q) = %v, %v", name, pg.Index, ply, next, san, m, err)
			}
			nm, err := chess.AlgebraicNotation{}.Decode(npos, san)
			if err != nil {
				t.Fatalf("%s game %d ply %d: notnil rejects %q: %v", name, pg.Index, ply, san, err)
			}
			npos = npos.Update(nm)
		})
		if games == 0 {
			t.Errorf("%s: no games", name)
		}
		if withEP == 0 || withClock == 0 {
			t.Errorf("%s: %d positions with an en-passant square, %d with a non-zero halfmove clock; want some of each", name, withEP, withClock)
		}
		t.Logf("%s: %d games, %d positions with an en-passant square, %d more with a non-zero halfmove clock", name, games, withEP, withClock)
	}
}

// notnilFEN is notnil's FEN of p with its en-passant field in our convention: notnil names the square after
// every double push, we (like lc0 and Stockfish) only when a legal en-passant capture exists, which is asked
// of notnil's own move generator here.
func notnilFEN(p *chess.Position) string {
	f := strings.Fields(p.String())
	if f[3] != "-" {
		legal := false
		for _, m := range p.ValidMoves() {
			if m.HasTag(chess.EnPassant) && m.S2().String() == f[3] {
				legal = true
			}
		}
		if !legal {
			f[3] = "-"
		}
	}
	return strings.Join(f, " ")
}

// TestPolicyRoundTripPGN: MoveFromIndex(PolicyIndex(m)) == m for every legal
// move of every position of a game collection, and indices are distinct.
func TestPolicyRoundTripPGN(t *testing.T) {
	limit := 1 << 30
	if testing.Short() {
		limit = 30
	}
	positions := 0
	names := PolicyNames()
	replay(t, "pgn", "educhess-Morphy.pgn", limit, func(pg *PGNGame, gm *Game, ply int, next *Move) {
		p := gm.Current()
		positions++
		moves, idx := LegalIndices(p)
		seen := map[int]bool{}
		for i, m := range moves {
			if seen[idx[i]] {
				t.Fatalf("%s: index %d used twice", p.FEN(), idx[i])
			}
			seen[idx[i]] = true
			back, err := MoveFromIndex(p, idx[i])
			if err != nil || back != m {
				t.Fatalf("%s: MoveFromIndex(%d) = %v, %v; want %v", p.FEN(), idx[i], back, err, m)
			}
			name := names[idx[i]]
			if p.SideToMove() == White && m.Promo != Knight && m.UCI() != name && !isCastle(p, m) {
				t.Fatalf("%s: %s has index of %s", p.FEN(), m, name)
			}
		}
	})
	if positions == 0 {
		t.Fatal("no positions")
	}
}

func isCastle(p *Position, m Move) bool {
	_, pt, _ := p.PieceAt(m.From)
	return pt == King && (m.To-m.From == 2 || m.From-m.To == 2)
}

func TestPolicyIndexCases(t *testing.T) {
	tests := []struct {
		fen, move string
		want      int
	}{
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1g1", 103},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1h1", 103},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1c1", 97},
		{"r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", "e8g8", 103},
		{"r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", "e8c8", 97},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "a7a8n", 1401},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "a7a8q", 1792},
		{"4k3/8/8/8/8/8/p7/4K3 b - - 0 1", "a2a1q", 1792},
	}
	for _, tc := range tests {
		p, _ := ParseFEN(tc.fen)
		m, err := p.ParseMove(tc.move)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := PolicyIndex(p, m); err != nil || got != tc.want {
			t.Errorf("%s %s: %d, %v; want %d", tc.fen, tc.move, got, err, tc.want)
		}
	}
	if _, err := PolicyIndex(StartPosition(), Move{From: A1, To: NewSquare(1, 3)}); err == nil {
		t.Error("a1b4 has no index")
	}
	if _, err := MoveFromIndex(StartPosition(), PolicySize); err == nil {
		t.Error("index out of range accepted")
	}
	if _, err := MoveFromIndex(StartPosition(), 0); err == nil {
		t.Error("a1b1 is not legal in the start position")
	}
}

// TestLichessPuzzles replays the lichess puzzle sample (FEN + UCI moves, all
// legal by construction) through ParseGame.
func TestLichessPuzzles(t *testing.T) {
	b, err := os.ReadFile(testutil.Shared(t, "data", "puzzles", "lichess_db_puzzle_sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n") {
		f := strings.Split(line, ",")
		if i == 0 || len(f) < 3 {
			continue
		}
		g, err := ParseGame(f[1], f[2])
		if err != nil {
			t.Errorf("puzzle %s: %v", f[0], err)
			continue
		}
		n++
		_ = encode(t, g, FillFENOnly)
	}
	if n < 900 {
		t.Errorf("only %d puzzles", n)
	}
}
