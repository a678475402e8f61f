package board

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// readAll reads every game of a PGN stream, returning the good games and the
// game errors in order.
func readAll(t testing.TB, r io.Reader) ([]*PGNGame, []*GameError) {
	t.Helper()
	pr := NewPGNReader(r)
	var games []*PGNGame
	var errs []*GameError
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("reader does not reach EOF")
		}
		g, err := pr.Next()
		if err == io.EOF {
			return games, errs
		}
		var ge *GameError
		if errors.As(err, &ge) {
			errs = append(errs, ge)
			continue
		}
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		games = append(games, g)
	}
}

// TestPGNSharedFiles reads every shared PGN file. Expected counts come from
// the data README ([Event] counts, python-chess's where noted), adjusted for
// games this package rejects on purpose (variants, null moves, illegal
// moves).
func TestPGNSharedFiles(t *testing.T) {
	want := map[string][2]int{ // good, bad
		"educhess-Kasparov.pgn":      {1999, 0},
		"educhess-Carlsen.pgn":       {1347, 0},
		"educhess-Fischer.pgn":       {827, 0},
		"educhess-Marshall.pgn":      {1027, 0},
		"educhess-Morozevich.pgn":    {1465, 0}, // forfeits "1.d4 0-1" after two blank lines stay one game
		"educhess-Morphy.pgn":        {211, 0},
		"educhess-PolgarJ.pgn":       {1645, 0},
		"educhess-Topalov.pgn":       {1826, 0},
		"educhess-Waitzkin.pgn":      {385, 0},
		"tcec-S1-Division_1.pgn":     {56, 0},
		"corentings-lichess-big.pgn": {1000, 0},

		"fastchess-black2move.pgn":                                          {0, 1}, // 1...0-0-0 is illegal
		"fastchess-corrupted.pgn":                                           {0, 1}, // truncated "63. Kx"
		"fastchess-data-dfrc.pgn":                                           {0, 4}, // Chess960
		"fastchess-data-test.pgn":                                           {6, 0},
		"fastchess-data-test_invalid.pgn":                                   {1, 1},
		"fastchess-empty_body.pgn":                                          {2, 0},
		"fastchess-no_moves.pgn":                                            {1, 0},
		"fastchess-no_moves_two_games.pgn":                                  {2, 0},
		"fastchess-no_moves_but_game_termination_multiple.pgn":              {2, 0},
		"fastchess-no_moves_but_game_termination_multiple_2.pgn":            {3, 0},
		"fastchess-no_moves_but_comment_followed_by_termination_marker.pgn": {2, 0},
		"fastchess-skip.pgn":                                                {2, 0},
		"fastchess-multiple.pgn":                                            {4, 0},
		"notnil-0006.pgn":                                                   {5, 0},
		"notnil-0007.pgn":                                                   {5, 0},
		"notnil-0008.pgn":                                                   {1, 0},
		"notnil-0013.pgn":                                                   {3, 0},
		"notnil-0014.pgn":                                                   {5, 0},
		"pychess-anastasian-lewis.pgn":                                      {0, 1}, // null move Z0
		"pychess-antichess-programfox.pgn":                                  {0, 2},
		"pychess-chessbase-empty-line.pgn":                                  {1, 0},
		"pychess-cutechess-fischerrandom.pgn":                               {0, 4},
		"pychess-kasparov-deep-blue-1997.pgn":                               {6, 0},
		"pychess-knightvuillaume-jannlee-zh-lichess.pgn":                    {0, 1},
		"pychess-utf8-bom.pgn":                                              {2, 0},
		"pychess-saturs-jannlee-zh-lichess.pgn":                             {0, 1},
		"tcec-S16-Frc_Cpu_League_2_Playoff.pgn":                             {0, 6},
		"tcec-S22-Dfrc_Unbust_Bonus.pgn":                                    {0, 10},
	}
	// Test files cut short on purpose; their PlyCount tags describe the
	// original games.
	truncated := map[string]bool{"fastchess-corrupted.pgn": true, "fastchess-castling.pgn": true, "fastchess-newline.pgn": true}
	var files []string
	for _, sub := range []string{"edge-cases", "pgn"} {
		dir := testutil.Shared(t, "data", sub)
		fs, err := filepath.Glob(filepath.Join(dir, "*.pgn"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	seen := 0
	for _, f := range files {
		base := filepath.Base(f)
		t.Run(base, func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			games, errs := readAll(t, fh)
			for i, g := range games {
				if g.Start == nil || g.StartFEN != g.Start.FEN() {
					t.Errorf("game %d: bad start", i)
				}
				if n := g.Tag("PlyCount"); n != "" && len(g.Moves) > 0 && n != strconv.Itoa(len(g.Moves)) && !truncated[base] {
					t.Errorf("game %d (line %d): %d plies, PlyCount %s", g.Index, g.Line, len(g.Moves), n)
				}
			}
			for i := 1; i < len(games); i++ {
				if games[i].Index <= games[i-1].Index {
					t.Errorf("indices not increasing: %d then %d", games[i-1].Index, games[i].Index)
				}
			}
			if w, ok := want[base]; ok {
				seen++
				if len(games) != w[0] || len(errs) != w[1] {
					t.Errorf("got %d games and %d errors, want %d and %d; errors: %v", len(games), len(errs), w[0], w[1], errs)
				}
			} else if len(errs) > 0 {
				t.Errorf("unexpected errors: %v", errs)
			}
		})
	}
	if seen == 0 {
		t.Fatal("no expected file found")
	}
}

func openShared(t *testing.T, sub, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(testutil.Shared(t, "data", sub), name))
	if err != nil {
		testutil.Missing(t, "%s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPGNKnownGames checks facts that can be verified by hand.
func TestPGNKnownGames(t *testing.T) {
	t.Run("molinari-bordais mate in 10 plies", func(t *testing.T) {
		games, errs := readAll(t, openShared(t, "edge-cases", "pychess-molinari-bordais-1979.pgn"))
		if len(games) != 1 || len(errs) != 0 {
			t.Fatalf("%d games, %v", len(games), errs)
		}
		g := games[0].Game()
		p := g.Current()
		if g.Ply() != 10 || !p.InCheck() || len(p.LegalMoves()) != 0 {
			t.Fatalf("ply %d, check %v, %d moves: want a checkmate after 10 plies", g.Ply(), p.InCheck(), len(p.LegalMoves()))
		}
		if san := g.Position(9).SAN(g.Moves()[9]); san != "Nd3#" {
			t.Errorf("last move %s, want Nd3#", san)
		}
		if games[0].Result != "0-1" {
			t.Errorf("result %q", games[0].Result)
		}
	})
	t.Run("threefold repetition", func(t *testing.T) {
		games, _ := readAll(t, openShared(t, "edge-cases", "fastchess-threefold_repetition.pgn"))
		if len(games) != 1 {
			t.Fatalf("%d games", len(games))
		}
		g := games[0].Game()
		// 1... h5 then Rh6 Rh7 Re6 Rg7 twice. The placement after 1... h5
		// comes back twice, but right after h7h5 the g5 pawn could take en
		// passant, so (as in lc0 and the FIDE rules) that first one is a
		// different position: the final position repeats once, not twice.
		if g.Ply() != 9 || g.Repetitions() != 1 || g.Position(1).EnPassant() != NewSquare(7, 5) {
			t.Errorf("ply %d repetitions %d ep %s, want 9, 1, h6", g.Ply(), g.Repetitions(), g.Position(1).EnPassant())
		}
		if g.Position(5).sameBoard(g.Position(1)) || !g.Position(9).sameBoard(g.Position(5)) {
			t.Error("position 5 should differ from 1 (en passant) and equal 9")
		}
	})
	t.Run("illegal move reported, stream continues", func(t *testing.T) {
		games, errs := readAll(t, openShared(t, "edge-cases", "fastchess-data-test_invalid.pgn"))
		if len(errs) != 1 || len(games) != 1 {
			t.Fatalf("%d games %d errors", len(games), len(errs))
		}
		e := errs[0]
		if e.Game != 1 || e.Line != 3 || !errors.Is(e, ErrIllegalMove) ||
			e.Error() != `board: pgn game 1 (line 3): illegal move "Ka1" at ply 7` {
			t.Errorf("error %+v: %v", e, e)
		}
		if games[0].Index != 1 || len(games[0].Moves) != 16 || games[0].Result != "1/2-1/2" {
			t.Errorf("second game: index %d, %d plies, result %s", games[0].Index, len(games[0].Moves), games[0].Result)
		}
	})
	t.Run("tags", func(t *testing.T) {
		games, _ := readAll(t, openShared(t, "edge-cases", "pychess-utf8-bom.pgn"))
		if len(games) != 2 || games[0].Tag("Event") != "A" || games[1].Tag("Event") != "B" || games[1].Line != 14 {
			t.Errorf("bom file: %+v", games)
		}
		games, _ = readAll(t, openShared(t, "edge-cases", "fastchess-unescaped_quote_header.pgn"))
		if len(games) != 1 || games[0].Tag("Event") != `Tournament "Championship" Finals` {
			t.Errorf("unescaped quotes: %q", games[0].Tag("Event"))
		}
		games, _ = readAll(t, openShared(t, "edge-cases", "fastchess-square_bracket_in_header.pgn"))
		if len(games) != 1 || games[0].Tag("Variation") != "closing ] opening" || games[0].Tag("White") != `New-cfe8"dsadsa"ce842c` {
			t.Errorf("brackets: %q %q", games[0].Tag("Variation"), games[0].Tag("White"))
		}
		games, _ = readAll(t, openShared(t, "edge-cases", "pychess-chessbase-empty-line.pgn"))
		if len(games) != 1 || games[0].Tag("Date") != "2017.12.04" || len(games[0].Moves) != 134 {
			t.Errorf("chessbase empty line: %d games", len(games))
		}
	})
	t.Run("termination marker wins over Result tag", func(t *testing.T) {
		games, _ := readAll(t, openShared(t, "edge-cases", "fastchess-no_moves_but_game_termination_2.pgn"))
		if len(games) != 1 || games[0].Result != "1/2-1/2" || len(games[0].Moves) != 0 {
			t.Errorf("%+v", games)
		}
	})
	t.Run("FEN start with black to move", func(t *testing.T) {
		games, _ := readAll(t, openShared(t, "edge-cases", "fastchess-empty_body.pgn"))
		if len(games) != 2 {
			t.Fatalf("%d games", len(games))
		}
		g := games[1]
		if g.StartFEN != "r2qk1nr/ppp3pp/2n1bp2/2p1p3/2P1P3/3P1N2/PP2BPPP/RN1Q1RK1 b kq - 0 8" ||
			len(g.Moves) != 252 || g.Result != "0-1" || g.Moves[0].UCI() != "g8e7" {
			t.Errorf("start %s, %d plies, result %s", g.StartFEN, len(g.Moves), g.Result)
		}
	})
}

// TestPGNSyntax covers the tokenizer on small inputs.
func TestPGNSyntax(t *testing.T) {
	long := "[Event \"long\"]\n1. e4 {" + strings.Repeat("x", 100_000) + "} e5 " + strings.Repeat("{c} ", 20_000) + "2. Nf3 *\n"
	tests := []struct {
		name   string
		in     string
		moves  []string // UCI of each good game, space-separated
		errors int
	}{
		{"empty", "", nil, 0},
		{"blank lines only", "\n\n  \r\n", nil, 0},
		{"no tags no result", "1.e4 e6 2.d4 d5", []string{"e2e4 e7e6 d2d4 d7d5"}, 0},
		{"black move numbers", "1. e4 e5 2. Nf3 2... Nc6 *", []string{"e2e4 e7e5 g1f3 b8c6"}, 0},
		{"glued move number", "1.e4 1...e5 2.Nf3 *", []string{"e2e4 e7e5 g1f3"}, 0},
		{"detached ellipsis and e.p.", "1. e4 ... Nf6 2. e5 d5 3. exd6 e.p. *", []string{"e2e4 g8f6 e4e5 d7d5 e5d6"}, 0},
		{"comments", "1. e4 {best [%clk 0:01:02]} e5{x}; rest ( ignored\n2. Nf3 *", []string{"e2e4 e7e5 g1f3"}, 0},
		{"multi-line comment", "1. e4 {a\n[Event \"not a tag\"]\n b} e5 *", []string{"e2e4 e7e5"}, 0},
		{"nested variations", "1. e4 (1. d4 d5 (1... Nf6 2. c4) 2. c4) e5 (1... c5 (1... e6)) 2. Nf3 *", []string{"e2e4 e7e5 g1f3"}, 0},
		{"NAGs and glyphs", "1. e4! $1 e5?! $6 2. Nf3 +- *", []string{"e2e4 e7e5 g1f3"}, 0},
		{"escape line", "% comment line\n1. e4 e5 *\n%another\n", []string{"e2e4 e7e5"}, 0},
		{"CRLF", "[Event \"x\"]\r\n\r\n1. e4 e5\r\n2. Nf3 1-0\r\n", []string{"e2e4 e7e5 g1f3"}, 0},
		{"results", "1. e4 1-0 1. d4 0-1 1. c4 1/2-1/2 1. Nf3 *", []string{"e2e4", "d2d4", "c2c4", "g1f3"}, 0},
		{"castling and promotion", "[FEN \"4k3/P7/8/8/8/8/8/R3K2R w KQ - 0 1\"]\n1. O-O-O Kf7 2. a8=Q+ *", []string{"e1c1 e8f7 a7a8q"}, 0},
		{"zero castling", "[FEN \"4k3/8/8/8/8/8/8/4K2R w K - 0 1\"]\n1. 0-0 *", []string{"e1g1"}, 0},
		{"uci moves", "e2e4 e7e5 g1f3 *", []string{"e2e4 e7e5 g1f3"}, 0},
		{"tags without result then next game", "[Event \"a\"]\n1. e4\n[Event \"b\"]\n1. d4 *", []string{"e2e4", "d2d4"}, 0},
		{"header-only games", "[Event \"a\"]\n\n[Event \"b\"]\n\n1. d4 *", []string{"", "d2d4"}, 0},
		{"illegal then good", "1. e4 e5 2. Ke3 *\n\n1. d4 *", []string{"d2d4"}, 1},
		{"bad FEN tag", "[FEN \"8/8/8 w - - 0 1\"]\n1. e4 *\n1. d4 *", []string{"d2d4"}, 1},
		{"unsupported variant", "[Variant \"Crazyhouse\"]\n1. e4 *", nil, 1},
		{"long line", long, []string{"e2e4 e7e5 g1f3"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			games, errs := readAll(t, strings.NewReader(tc.in))
			var got []string
			for _, g := range games {
				var s []string
				for _, m := range g.Moves {
					s = append(s, m.UCI())
				}
				got = append(got, strings.Join(s, " "))
			}
			if strings.Join(got, "|") != strings.Join(tc.moves, "|") || len(got) != len(tc.moves) {
				t.Errorf("games %q, want %q", got, tc.moves)
			}
			if len(errs) != tc.errors {
				t.Errorf("errors %v, want %d", errs, tc.errors)
			}
		})
	}
}

func TestPGNLinesAndIndices(t *testing.T) {
	in := "[Event \"a\"]\n[FEN \"bad\"]\n\n1. e4 *\n\n[Event \"b\"]\n\n1. e4 e5 2. Qxf7 *\n\n1. d4 *\n"
	pr := NewPGNReader(strings.NewReader(in))
	_, err := pr.Next()
	var ge *GameError
	if !errors.As(err, &ge) || ge.Game != 1 || ge.Line != 2 || !strings.HasPrefix(ge.Reason, "bad FEN tag") {
		t.Fatalf("game 1: %v", err)
	}
	_, err = pr.Next()
	if !errors.As(err, &ge) || ge.Game != 2 || ge.Line != 8 || ge.Reason != `illegal move "Qxf7" at ply 3` {
		t.Fatalf("game 2: %v", err)
	}
	g, err := pr.Next()
	if err != nil || g.Index != 2 || g.Line != 10 || len(g.Tags) != 0 {
		t.Fatalf("game 3: %+v %v", g, err)
	}
	if _, err := pr.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestPGNPositions(t *testing.T) {
	games, _ := readAll(t, strings.NewReader("1. e4 e5 2. Nf3 *"))
	var plies []int
	var nexts []string
	err := games[0].Positions(func(gm *Game, ply int, next *Move) error {
		if gm.Ply() != ply {
			t.Errorf("game at ply %d, want %d", gm.Ply(), ply)
		}
		plies = append(plies, ply)
		if next == nil {
			nexts = append(nexts, "nil")
		} else {
			nexts = append(nexts, next.UCI())
		}
		return nil
	})
	if err != nil || len(plies) != 4 || strings.Join(nexts, " ") != "e2e4 e7e5 g1f3 nil" {
		t.Errorf("plies %v nexts %v err %v", plies, nexts, err)
	}
	stop := errors.New("stop")
	if err := games[0].Positions(func(*Game, int, *Move) error { return stop }); err != stop {
		t.Errorf("error not propagated: %v", err)
	}
}

// readBytes is a reader that returns one byte at a time, to exercise line
// assembly across buffer refills.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestPGNSmallReads(t *testing.T) {
	in := "[Event \"x\"]\r\n1. e4 e5 {" + strings.Repeat("y", 70_000) + "} 2. Nf3 *\r\n"
	a, _ := readAll(t, strings.NewReader(in))
	b, _ := readAll(t, oneByteReader{bytes.NewReader([]byte(in))})
	if len(a) != 1 || len(b) != 1 || len(a[0].Moves) != 3 || len(b[0].Moves) != 3 {
		t.Fatalf("got %d/%d games", len(a), len(b))
	}
}
