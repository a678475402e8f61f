package board

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func readKasparov(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.Shared(b, "data", "pgn"), "educhess-Kasparov.pgn"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkPGNEncode parses every game of a 2,000-game PGN held in memory
// and encodes every position (FillFENOnly), reporting positions/s.
func BenchmarkPGNEncode(b *testing.B) {
	data := readKasparov(b)
	planes := make([]float32, NumPlanes*64)
	positions := 0
	b.ResetTimer()
	for b.Loop() {
		r := NewPGNReader(bytes.NewReader(data))
		for {
			g, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			_ = g.Positions(func(gm *Game, ply int, next *Move) error {
				gm.Encode(FillFENOnly, planes)
				positions++
				return nil
			})
		}
	}
	b.ReportMetric(float64(positions)/b.Elapsed().Seconds(), "positions/s")
}

// BenchmarkPGNRead parses the same PGN without encoding.
func BenchmarkPGNRead(b *testing.B) {
	data := readKasparov(b)
	plies := 0
	for b.Loop() {
		r := NewPGNReader(bytes.NewReader(data))
		for {
			g, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			plies += len(g.Moves)
		}
	}
	b.ReportMetric(float64(plies)/b.Elapsed().Seconds(), "plies/s")
}

// BenchmarkEncode encodes one middlegame position with full history.
func BenchmarkEncode(b *testing.B) {
	g, err := ParseGame("startpos", "e2e4 c7c5 g1f3 d7d6 d2d4 c5d4 f3d4 g8f6 b1c3 a7a6")
	if err != nil {
		b.Fatal(err)
	}
	planes := make([]float32, NumPlanes*64)
	for b.Loop() {
		g.Encode(FillFENOnly, planes)
	}
}

func BenchmarkLegalMoves(b *testing.B) {
	p, err := ParseFEN("r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1")
	if err != nil {
		b.Fatal(err)
	}
	var buf [maxMoves]Move
	for b.Loop() {
		_ = p.genLegal(buf[:0])
	}
}

// BenchmarkEncodeFormat encodes with input format 3 (canonical): a
// middlegame with castling rights (no transform, history cut at the last
// pawn move) and a transposed pawnless endgame with 8 history slots.
func BenchmarkEncodeFormat(b *testing.B) {
	for _, bc := range []struct{ name, fen, moves string }{
		{"middlegame", "startpos", "e2e4 c7c5 g1f3 d7d6 d2d4 c5d4 f3d4 g8f6 b1c3 a7a6 f1e2 e7e5 d4b3 f8e7 e1g1 e8g8"},
		{"endgame-transposed", "8/5k2/8/8/3R4/8/2K5/3r4 w - - 40 60", "c2b3 d1b1 b3c4 b1c1 c4b4 c1b1 b4c4 b1c1"},
	} {
		g, err := ParseGame(bc.fen, bc.moves)
		if err != nil {
			b.Fatal(err)
		}
		if bc.name == "endgame-transposed" && Transform(g, InputCanonical) == 0 {
			b.Fatal("endgame position is not transformed")
		}
		planes := make([]float32, NumPlanes*64)
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				g.EncodeFormat(InputCanonical, FillFENOnly, planes)
			}
		})
	}
}
