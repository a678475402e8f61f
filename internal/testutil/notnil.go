package testutil

import (
	"testing"

	"github.com/notnil/chess"
)

// NotnilGame replays UCI moves from fen with notnil/chess, the oracle the move generator and game ends are
// checked against; a FEN or a move the oracle rejects fails the test.
func NotnilGame(t testing.TB, fen string, moves []string) *chess.Game {
	t.Helper()
	opt, err := chess.FEN(fen)
	if err != nil {
		t.Fatal(err)
	}
	g := chess.NewGame(opt, chess.UseNotation(chess.UCINotation{}))
	for _, m := range moves {
		if err := g.MoveStr(m); err != nil {
			t.Fatalf("notnil rejects %s after %v: %v", m, moves, err)
		}
	}
	return g
}
