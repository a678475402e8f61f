package board

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/notnil/chess"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// notnilOutcome is the oracle's view of a game: notnil's automatic checkmate, stalemate and
// insufficient-material methods, its claimable threefold repetition (counted here over positions whose
// en-passant square is kept only when a capture is legal, as FIDE and lc0 count them; keys holds the key of
// every position so far, the current one last) and its fifty-move clock.
func notnilOutcome(g *chess.Game, keys []string) (Termination, string) {
	switch g.Method() {
	case chess.Checkmate:
		return Checkmate, g.Outcome().String()
	case chess.Stalemate:
		return Stalemate, "1/2-1/2"
	case chess.InsufficientMaterial:
		return InsufficientMaterial, "1/2-1/2"
	}
	reps := 0
	for _, k := range keys {
		if k == keys[len(keys)-1] {
			reps++
		}
	}
	if reps >= 3 {
		return ThreefoldRepetition, "1/2-1/2"
	}
	if g.Position().HalfMoveClock() >= 100 {
		return FiftyMoveRule, "1/2-1/2"
	}
	return NotOver, "*"
}

func notnilKey(p *chess.Position) string { return strings.Join(strings.Fields(notnilFEN(p))[:4], " ") }

func notnilKeys(g *chess.Game) []string {
	var keys []string
	for _, p := range g.Positions() {
		keys = append(keys, notnilKey(p))
	}
	return keys
}

// TestOutcomeConstructed adjudicates hand-built positions, each compared with the notnil oracle and with
// the termination the position was built for.
func TestOutcomeConstructed(t *testing.T) {
	shuffle := "g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8"
	for _, c := range []struct {
		name, fen, moves string
		want             Termination
		result           string
	}{
		{"fool's mate", StartFEN, "f2f3 e7e5 g2g4 d8h4", Checkmate, "0-1"},
		{"back-rank mate", "6k1/5ppp/8/8/8/8/5PPP/3R2K1 w - - 0 1", "d1d8", Checkmate, "1-0"},
		{"stalemate", "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1", "", Stalemate, "1/2-1/2"},
		{"stalemate by a move", "7k/8/6K1/8/8/8/8/5Q2 w - - 0 1", "f1f7", Stalemate, "1/2-1/2"},
		{"king v king", "8/8/4k3/8/8/3K4/8/8 w - - 0 1", "", InsufficientMaterial, "1/2-1/2"},
		{"capture to king and knight", "8/8/4k3/8/8/3K4/3r4/6N1 w - - 0 1", "d3d2", InsufficientMaterial, "1/2-1/2"},
		{"king and bishop", "8/8/4k3/8/2B5/3K4/8/8 b - - 0 1", "", InsufficientMaterial, "1/2-1/2"},
		{"bishops on one colour", "8/1b6/7k/8/2B5/3K4/8/8 w - - 0 1", "", InsufficientMaterial, "1/2-1/2"},
		{"bishops on both colours", "8/b7/7k/8/2B5/3K4/8/8 w - - 0 1", "", NotOver, "*"},
		{"two knights", "8/8/4k3/8/2N5/3K4/8/6N1 w - - 0 1", "", NotOver, "*"},
		{"knight and bishop", "8/8/7k/8/2B5/3K4/8/6N1 w - - 0 1", "", NotOver, "*"},
		{"a pawn", "8/8/4k3/8/8/3K4/7P/8 w - - 0 1", "", NotOver, "*"},
		{"threefold", StartFEN, shuffle, ThreefoldRepetition, "1/2-1/2"},
		{"twice only", StartFEN, shuffle[:len(shuffle)-5], NotOver, "*"},
		{"fifty moves", "8/8/4k3/8/8/3K4/3R4/8 w - - 99 80", "d2d1", FiftyMoveRule, "1/2-1/2"},
		{"ninety-nine half-moves", "8/8/4k3/8/8/3K4/3R4/8 w - - 98 80", "d2d1", NotOver, "*"},
		{"pawn move resets", "8/8/4k3/8/8/3K4/3R3P/8 w - - 99 80", "h2h3", NotOver, "*"},
		{"mate on the hundredth", "7k/8/6K1/8/8/8/8/R7 w - - 99 80", "a1a8", Checkmate, "1-0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := ParseGame(c.fen, c.moves)
			if err != nil {
				t.Fatal(err)
			}
			term, res := g.Outcome()
			if term != c.want || res != c.result {
				t.Errorf("Outcome = %v %s, want %v %s", term, res, c.want, c.result)
			}
			ng := testutil.NotnilGame(t, c.fen, strings.Fields(c.moves))
			oTerm, oRes := notnilOutcome(ng, notnilKeys(ng))
			if term != oTerm || res != oRes {
				t.Errorf("Outcome = %v %s, notnil %v %s", term, res, oTerm, oRes)
			}
		})
	}
}

// TestOutcomeRandomGames plays seeded random games from sparse and full positions and compares the
// adjudication with notnil's after every ply, until one of them ends the game.
func TestOutcomeRandomGames(t *testing.T) {
	starts := []string{
		StartFEN,
		"4k3/8/8/8/8/8/8/RN2K1B1 w - - 0 1",
		"r3k3/8/8/3p4/8/8/4P3/1N2K1B1 w - - 0 1",
		"4k3/2n5/8/8/8/8/3B4/4K3 w - - 90 1",
		"4k3/pp6/8/8/8/8/6PP/4K3 w - - 0 1",
	}
	rng := rand.New(rand.NewPCG(15, 1))
	seen := map[Termination]int{}
	games := 20
	if testing.Short() {
		games = 10
	}
	for i := 0; i < games; i++ {
		fen := starts[i%len(starts)]
		g, err := ParseGame(fen, "")
		if err != nil {
			t.Fatal(err)
		}
		var moves []string
		ng := testutil.NotnilGame(t, fen, nil)
		keys := notnilKeys(ng)
		for ply := 0; ; ply++ {
			term, res := g.Outcome()
			oTerm, oRes := notnilOutcome(ng, keys)
			if term != oTerm || res != oRes {
				t.Fatalf("game %d from %s after %v: Outcome %v %s, notnil %v %s", i, fen, moves, term, res, oTerm, oRes)
			}
			if term != NotOver || ply == 400 {
				seen[term]++
				break
			}
			legal := g.Current().LegalMoves()
			m := legal[rng.IntN(len(legal))]
			g.Play(m)
			moves = append(moves, m.UCI())
			if err := ng.MoveStr(m.UCI()); err != nil {
				t.Fatalf("notnil rejects %s after %v: %v", m, moves, err)
			}
			keys = append(keys, notnilKey(ng.Position()))
		}
	}
	t.Logf("terminations: %v", seen)
	if seen[InsufficientMaterial] == 0 || seen[FiftyMoveRule]+seen[ThreefoldRepetition] == 0 {
		t.Errorf("random games reached too few kinds of ending: %v", seen)
	}
}
