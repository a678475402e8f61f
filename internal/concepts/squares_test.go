package concepts

import (
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
)

func TestBoardConcepts(t *testing.T) {
	// Black to move: black's own knight on c6; e4 (white pawn) is attacked by nothing black but by white's
	// knight on f3? No: f3 attacks e5, g5, d4, h4, d2, e1, g1, h2. e5 (black pawn) is attacked by white's
	// knight on f3 and defended by black's knight on c6.
	p, err := board.ParseFEN("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 3 3")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range BoardConcepts() {
		for _, sq := range []string{"c6", "e4", "e5", "d4", "a4"} {
			s, _ := board.ParseSquare(sq)
			if c.Label(p, s) {
				got[c.Name+"@"+sq] = true
			}
		}
	}
	for _, want := range []string{"own-n@c6", "opponent-p@e4", "own-p@e5", "attacked-by-opponent@e5", "attacked-by-own@e5",
		"attacked-by-own@d4", "attacked-by-opponent@d4", "empty@a4", "empty@d4"} {
		if !got[want] {
			t.Errorf("%s not labelled", want)
		}
	}
	for _, bad := range []string{"own-p@e4", "empty@c6", "attacked-by-own@e4", "attacked-by-own@a4", "attacked-by-opponent@a4"} {
		if got[bad] {
			t.Errorf("%s labelled", bad)
		}
	}
}
