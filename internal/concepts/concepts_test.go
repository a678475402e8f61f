package concepts

import (
	"os"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

func pos(t *testing.T, fen string) *board.Position {
	t.Helper()
	if fen == "startpos" {
		return board.StartPosition()
	}
	p, err := board.ParseFEN(fen)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func move(t *testing.T, p *board.Position, s string) *board.Move {
	t.Helper()
	m, err := p.ParseMove(s)
	if err != nil {
		t.Fatal(err)
	}
	return &m
}

func TestConcepts(t *testing.T) {
	const (
		scholar   = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4" // Qxf7# available
		scholarB  = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 4 4" // same, black to move
		epFEN     = "8/2k5/8/3Pp3/8/8/5K2/8 w - e6 0 40"                                  // d5xe6 en passant
		checkFEN  = "rnb1kbnr/pppp1ppp/8/4p3/6Pq/5P2/PPPPP2P/RNBQKBNR w KQkq - 1 3"       // fool's mate: white mated
		queenless = "4k3/8/8/8/8/8/4P3/4K2R b K - 0 1"                                    // black: king only
	)
	tests := []struct {
		concept, fen, move string
		want               float64
		ok                 bool
	}{
		{"material-balance", "startpos", "", 0, true},
		{"material-balance", queenless, "", -6, true}, // black to move: 0 - (1 + 5)
		{"material-balance", "4k3/8/8/8/8/8/4P3/4K2R w K - 0 1", "", 6, true},
		{"has-piece:Q", scholar, "", 1, true},
		{"has-piece:q", scholar, "", 1, true},
		{"has-piece:R", queenless, "", 0, true}, // black to move has no rook
		{"has-piece:r", queenless, "", 1, true}, // white (the opponent) has one
		{"has-piece:n", queenless, "", 0, true},
		{"in-check", checkFEN, "", 1, true},
		{"in-check", "startpos", "", 0, true},
		{"has-mate-threat", scholar, "", 1, true},
		{"has-mate-threat", scholarB, "", 0, true},
		{"has-mate-threat", checkFEN, "", 0, true}, // mated: no move at all
		{"has-mate-threat", "startpos", "", 0, true},
		{"piece-under-attack", "startpos", "", 0, true},
		{"piece-under-attack", scholarB, "", 1, true}, // Qh5 and Bc4 hit f7
		{"piece-under-attack", epFEN, "", 0, true},    // d5 pawn: e5 pawn attacks d4/f4, not d5
		{"best-move-is-capture", scholar, "h5f7", 1, true},
		{"best-move-is-capture", scholar, "e1f1", 0, true},
		{"best-move-is-capture", epFEN, "d5e6", 1, true}, // en passant
		{"best-move-is-capture", scholar, "", 0, false},  // no move known: undefined
	}
	for _, tt := range tests {
		t.Run(tt.concept+" "+tt.fen+" "+tt.move, func(t *testing.T) {
			c, err := Parse(tt.concept)
			if err != nil {
				t.Fatal(err)
			}
			p := pos(t, tt.fen)
			s := Sample{Pos: p}
			if tt.move != "" {
				s.Move = move(t, p, tt.move)
			}
			v, ok := c.Label(s)
			if v != tt.want || ok != tt.ok {
				t.Errorf("label = %v, %v; want %v, %v", v, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "material", "has-piece:", "has-piece:x", "has-piece:QQ", "column:x"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("%q accepted", s)
		} else if !strings.HasPrefix(err.Error(), "concepts: ") {
			t.Errorf("%q: error %q lacks the package prefix", s, err)
		}
	}
	for _, i := range List() {
		name := strings.Replace(i.Syntax, ":X", ":Q", 1)
		c, err := Parse(name)
		if err != nil {
			t.Fatalf("listed concept %s: %v", name, err)
		}
		if string(c.Kind) != i.Kind {
			t.Errorf("%s: kind %s, listed as %s", name, c.Kind, i.Kind)
		}
	}
}

// placement writes a FEN piece-placement field from a square -> piece-letter map.
func placement(pieces map[board.Square]byte) string {
	grid := []byte(strings.Repeat(".", 64))
	for r := range 8 {
		for f := range 8 {
			if c, ok := pieces[board.NewSquare(f, r)]; ok {
				grid[r*8+f] = c
			}
		}
	}
	return testutil.PlacementFEN(grid)
}

// TestAttackedAgainstInCheck compares Attacked with the board's own check detection: moving the defender's
// king onto a square makes "attacked" and "in check" the same question. Positions come from real games.
func TestAttackedAgainstInCheck(t *testing.T) {
	f, err := os.Open(testutil.Shared(t, "data", "pgn", "educhess-Morphy.pgn"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := board.NewPGNReader(f)
	checked, attacked := 0, 0
	for games := 0; games < 30; games++ {
		g, err := r.Next()
		if err != nil {
			break
		}
		_ = g.Positions(func(gm *board.Game, _ int, _ *board.Move) error {
			p := gm.Current()
			for _, by := range []board.Color{board.White, board.Black} {
				def := by.Other()
				for sq := board.Square(0); sq < 64; sq++ {
					pieces := map[board.Square]byte{}
					for s := board.Square(0); s < 64; s++ {
						c, pt, ok := p.PieceAt(s)
						if !ok || (c == def && pt == board.King) {
							continue
						}
						l := pt.String()[0]
						if c == board.White {
							l -= 'a' - 'A'
						}
						pieces[s] = l
					}
					k := byte('k')
					if def == board.White {
						k = 'K'
					}
					pieces[sq] = k
					stm := "w"
					if def == board.Black {
						stm = "b"
					}
					q, err := board.ParseFEN(placement(pieces) + " " + stm + " - - 0 1")
					if err != nil {
						continue // e.g. the attacker's king now in check, or a pawn on a back rank
					}
					checked++
					got, want := Attacked(q, sq, by), q.InCheck()
					if got {
						attacked++
					}
					if got != want {
						t.Fatalf("%s: Attacked(%v by %v) = %v, InCheck says %v", q.FEN(), sq, by, got, want)
					}
				}
			}
			return nil
		})
	}
	if checked < 1000 || attacked == 0 || attacked == checked {
		t.Fatalf("only %d squares checked (%d attacked): the comparison proves little", checked, attacked)
	}
	t.Logf("%d squares compared, %d attacked", checked, attacked)
}

// TestSquareConcepts checks the per-square labels on positions worked out by hand.
func TestSquareConcepts(t *testing.T) {
	sq := func(s string) board.Square { return board.NewSquare(int(s[0]-'a'), int(s[1]-'1')) }
	start := board.StartPosition()
	pieces := SquarePieces(start)
	for name, want := range map[string]int{"a1": 4, "e1": 6, "e2": 1, "e4": 0, "d8": 11, "e8": 12, "h7": 7} {
		if pieces[sq(name)] != want {
			t.Errorf("startpos %s: class %d, want %d", name, pieces[sq(name)], want)
		}
	}
	// After 1. e4, black is to move: black's pieces are "ours" (1..6), white's e4 pawn "theirs" (7).
	e4, err := start.ParseMove("e2e4")
	if err != nil {
		t.Fatal(err)
	}
	after := start.Play(e4)
	if p := SquarePieces(after); p[sq("e4")] != 7 || p[sq("e8")] != 6 || p[sq("e1")] != 12 {
		t.Errorf("after e4: e4 %d e8 %d e1 %d", p[sq("e4")], p[sq("e8")], p[sq("e1")])
	}
	us, _ := ParseSquare("square-attacked-by:us")
	them, _ := ParseSquare("square-attacked-by:them")
	lu, _ := us.Label(Sample{Pos: start})
	lt, _ := them.Label(Sample{Pos: start})
	for name, want := range map[string][2]int{"f3": {1, 0}, "e4": {0, 0}, "f6": {0, 1}, "d2": {1, 0}, "a1": {0, 0}} {
		if lu[sq(name)] != want[0] || lt[sq(name)] != want[1] {
			t.Errorf("startpos %s attacked by us %d them %d, want %v", name, lu[sq(name)], lt[sq(name)], want)
		}
	}
	mt, err := ParseSquare("move-target:2")
	if err != nil {
		t.Fatal(err)
	}
	e5, _ := after.ParseMove("e7e5")
	if _, ok := mt.Label(Sample{Pos: start, Line: []board.Move{e4}}); ok {
		t.Error("move-target:2 defined on a one-move line")
	}
	if l, ok := mt.Label(Sample{Pos: start, Line: []board.Move{e4, e5}}); !ok || l[sq("e5")] != 1 || l[sq("e4")] != 0 {
		t.Errorf("move-target:2: %v %v", l[sq("e5")], ok)
	}
	if mt.Anchor == nil || mt.Anchor(Sample{Pos: start, Line: []board.Move{e4, e5}}) != sq("e4") {
		t.Error("move-target:2: anchor is not the first move's target e4")
	}
	if m1, _ := ParseSquare("move-target:1"); m1.Anchor != nil {
		t.Error("move-target:1 has an anchor (it would be its own label)")
	}
	for _, bad := range []string{"move-target:0", "square-attacked-by:all", "square-nothing"} {
		if _, err := ParseSquare(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
