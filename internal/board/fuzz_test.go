package board

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"
)

func FuzzParseFEN(f *testing.F) {
	for _, s := range []string{
		StartFEN,
		"r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
		"rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
		"8/8/8/1k6/3Pp3/8/8/4KQ2 b - d3 0 1",
		"1r2k3/P1P5/8/8/8/8/8/4K3 w - -",
		"8/8/8/8/8/8/8/K6k w - - 99 150",
		"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR b KQkq - 0 1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseFEN(s)
		if err != nil {
			if _, err := ParseEPD(s); err != nil {
				return
			}
			return
		}
		fen := p.FEN()
		q, err := ParseFEN(fen)
		if err != nil {
			t.Fatalf("FEN() output %q does not parse: %v", fen, err)
		}
		if q.FEN() != fen {
			t.Fatalf("round trip %q -> %q", fen, q.FEN())
		}
		g := NewGame(p)
		planes := make([]float32, NumPlanes*64)
		mask := make([]float32, PolicySize)
		for _, fill := range []HistoryFill{FillFENOnly, FillAlways, FillNo, FillCurrent} {
			g.Encode(fill, planes)
			for f := InputClassical; f <= InputCanonicalV2; f++ {
				if tr := g.EncodeFormat(f, fill, planes); tr != Transform(g, f) {
					t.Fatalf("%s: format %s: EncodeFormat transform %d, Transform %d", fen, f, tr, Transform(g, f))
				}
			}
		}
		tr := Transform(g, InputCanonical)
		for _, m := range p.LegalMoves() {
			idx, err := PolicyIndexT(p, m, tr)
			if err != nil {
				t.Fatalf("%s: %s under transform %d: %v", fen, m, tr, err)
			}
			if back, err := MoveFromIndexT(p, idx, tr); err != nil || back != m {
				t.Fatalf("%s: %s -> %d -> %v, %v (transform %d)", fen, m, idx, back, err, tr)
			}
		}
		LegalMask(p, mask)
		for _, m := range p.LegalMoves() {
			san := p.SAN(m)
			if back, err := p.ParseMove(san); err != nil || back != m {
				t.Fatalf("%s: SAN %q of %s parses to %v, %v", fen, san, m, back, err)
			}
			if back, err := p.ParseMove(m.UCI()); err != nil || back != m {
				t.Fatalf("%s: UCI %s parses to %v, %v", fen, m, back, err)
			}
			idx, err := PolicyIndex(p, m)
			if err != nil || mask[idx] != 1 {
				t.Fatalf("%s: %s index %d, %v", fen, m, idx, err)
			}
			g.Play(m)
			g.Encode(FillFENOnly, planes)
			g.Current().LegalMoves()
			g.Truncate(0)
		}
	})
}

func FuzzPGNReader(f *testing.F) {
	for _, s := range []string{
		"[Event \"x\"]\n[Result \"1-0\"]\n\n1. e4 e5 2. Nf3 {c} (2. d4 exd4) Nc6 $1 3. Bb5 1-0\n",
		"1.e4 e6 2.d4 d5",
		"[FEN \"4k3/P7/8/8/8/8/8/R3K2R w KQ - 0 1\"]\n1. O-O-O Kf7 2. a8=Q+ *",
		"% escape\n[Event \"a\"]\n\n[Event \"b\"]\n1. d4 ; comment\n{multi\nline} d5 *\r\n",
		"1. e4 e5 2. Ke3 *\n1. d4 *",
		"[Variant \"Crazyhouse\"]\n1. e4 N@f3 *",
		// Underpromotion, a black first move, en passant and a knight move that needs its file.
		"[FEN \"4k3/8/8/8/8/8/p7/4K3 b - - 0 1\"]\n1... a1=N 2. Kd2 *",
		"1. e4 Nf6 2. e5 d5 3. exd6 Nc6 4. Nc3 Nb4 5. Nge2 1/2-1/2",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Lines read in 16-byte pieces must give what lines read whole give.
		if whole, pieces := readOutcomes(t, bytes.NewReader(data), 0), readOutcomes(t, bytes.NewReader(data), 16); !reflect.DeepEqual(whole, pieces) {
			t.Fatalf("16-byte pieces:\n%+v\nwhole lines:\n%+v", pieces, whole)
		}
		r := NewPGNReader(bytes.NewReader(data))
		planes := make([]float32, NumPlanes*64)
		for i := 0; ; i++ {
			if i > len(data)+2 {
				t.Fatalf("more games than bytes")
			}
			g, err := r.Next()
			if err == io.EOF {
				return
			}
			var ge *GameError
			if errors.As(err, &ge) {
				if ge.Game < 1 || ge.Line < 1 {
					t.Fatalf("bad error position: %+v", ge)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = g.Positions(func(gm *Game, ply int, next *Move) error {
				gm.Encode(FillFENOnly, planes)
				if next != nil {
					p := gm.Current()
					san := p.SAN(*next)
					if back, err := p.ParseMove(san); err != nil || back != *next {
						t.Fatalf("game %d ply %d (%s): SAN %q of %s parses to %v, %v", g.Index, ply, p.FEN(), san, *next, back, err)
					}
				}
				return nil
			})
			sanRoundTrip(t, g)
		}
	})
}

// sanRoundTrip writes g back as PGN, its start as a FEN tag and its moves in the SAN we generate, and reads
// that with a fresh reader: the game must come back with the same start, moves and result.
func sanRoundTrip(t *testing.T, g *PGNGame) {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "[SetUp \"1\"]\n[FEN \"%s\"]\n\n", g.StartFEN)
	_ = g.Positions(func(gm *Game, ply int, next *Move) error {
		if next == nil {
			return nil
		}
		p := gm.Current()
		switch {
		case p.SideToMove() == White:
			fmt.Fprintf(&b, "%d. ", p.FullmoveNumber())
		case ply == 0:
			fmt.Fprintf(&b, "%d... ", p.FullmoveNumber())
		}
		b.WriteString(p.SAN(*next))
		b.WriteByte(' ')
		return nil
	})
	b.WriteString(g.Result)
	b.WriteByte('\n')
	back, err := NewPGNReader(bytes.NewReader(b.Bytes())).Next()
	if err != nil {
		t.Fatalf("game %d written back as\n%s\ndoes not read: %v", g.Index, b.Bytes(), err)
	}
	if back.StartFEN != g.StartFEN || !slices.Equal(back.Moves, g.Moves) || back.Result != g.Result {
		t.Fatalf("game %d written back as\n%s\nreads as start %q, %d moves %v, result %q; want %q, %d moves %v, %q",
			g.Index, b.Bytes(), back.StartFEN, len(back.Moves), back.Moves, back.Result, g.StartFEN, len(g.Moves), g.Moves, g.Result)
	}
}
