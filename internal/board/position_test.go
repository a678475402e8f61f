package board

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFENErrors(t *testing.T) {
	tests := []struct {
		fen  string
		want string // error text, "" for success
	}{
		{StartFEN, ""},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq -", ""},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR x KQkq - 0 1", `board: fen field 2 (side to move) "x": want w or b`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0", `board: fen "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0": want 6 fields (or 4), got 5`},
		{"", `board: fen "": want 6 fields (or 4), got 0`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP w KQkq - 0 1", `board: fen field 1 (piece placement) "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP": want 8 ranks of 8 squares`},
		{"rnbqkbnr/ppppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", `board: fen field 1 (piece placement) "rnbqkbnr/ppppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR": rank 7 has more than 8 squares`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNX w KQkq - 0 1", `board: fen field 1 (piece placement) "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNX": bad character 'X'`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQQBNR w KQkq - 0 1", `board: fen field 1 (piece placement) "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQQBNR": white has 0 kings, want 1`},
		{"rnbqkbnP/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", `board: fen field 1 (piece placement) "rnbqkbnP/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR": pawn on rank 8`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkx - 0 1", `board: fen field 3 (castling) "KQkx": want - or letters of KQkq (Chess960 castling is not supported)`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq e9 0 1", `board: fen field 4 (en passant) "e9": want - or a square`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq e3 0 1", `board: fen field 4 (en passant) "e3": want a square on rank 6 with white to move`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq e6 0 1", `board: fen field 4 (en passant) "e6": no black pawn just moved two squares to e5`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - -1 1", `board: fen field 5 (halfmove clock) "-1": want a non-negative integer`},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 x", `board: fen field 6 (fullmove number) "x": want a non-negative integer`},
		{"4k3/8/8/8/8/8/8/4K2r w - - 0 1", ""},
		{"4k3/8/8/8/8/8/8/4K2r b - - 0 1", `board: fen "4k3/8/8/8/8/8/8/4K2r b - - 0 1": side not to move (white) is in check`},
	}
	for _, tc := range tests {
		_, err := ParseFEN(tc.fen)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("ParseFEN(%q):\n got %s\nwant %s", tc.fen, got, tc.want)
		}
	}
}

func TestFENRoundTrip(t *testing.T) {
	tests := []struct{ in, out string }{
		{StartFEN, StartFEN},
		{"r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 12 40", "r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 12 40"},
		{"rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3", "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3"},
		// 4-field EPD style, counters default to 0 1.
		{"8/8/8/8/8/8/8/K6k w - -", "8/8/8/8/8/8/8/K6k w - - 0 1"},
		// Rights whose rook has left are dropped; Shredder letters map to KQkq.
		{"r3k3/8/8/8/8/8/8/4K2R w KQkq - 0 1", "r3k3/8/8/8/8/8/8/4K2R w Kq - 0 1"},
		{"r3k2r/8/8/8/8/8/8/R3K2R w HAha - 0 1", "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1"},
	}
	for _, tc := range tests {
		p, err := ParseFEN(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := p.FEN(); got != tc.out {
			t.Errorf("FEN(%s) = %s, want %s", tc.in, got, tc.out)
		}
	}
}

func TestParseEPD(t *testing.T) {
	tests := []struct{ in, fen string }{
		{`1kr5/3n4/q3p2p/p2n2p1/PppB1P2/5BP1/1P2Q2P/3R2K1 w - - bm f5; id "STS(v1.0) Undermine.001"; c0 "f5=100, Bf2=46";`, "1kr5/3n4/q3p2p/p2n2p1/PppB1P2/5BP1/1P2Q2P/3R2K1 w - - 0 1"},
		{"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1 ;D1 20 ;D2 400", StartFEN},
		{"4k3/8/8/8/8/8/8/4K3 w - - 7 30", "4k3/8/8/8/8/8/8/4K3 w - - 7 30"},
		{"4k3/8/8/8/8/8/8/4K3 b - - hmvc 12; fmvn 40;", "4k3/8/8/8/8/8/8/4K3 b - - 12 40"},
		{`4k3/8/8/8/8/8/8/4K3 w - - a "foo\"bar";; ; b "foo\\\\";`, "4k3/8/8/8/8/8/8/4K3 w - - 0 1"},
	}
	for _, tc := range tests {
		p, err := ParseEPD(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := p.FEN(); got != tc.fen {
			t.Errorf("ParseEPD(%s) = %s, want %s", tc.in, got, tc.fen)
		}
	}
	if _, err := ParseEPD("8/8/8 w"); err == nil {
		t.Error("short EPD accepted")
	}
}

func TestParseMoveAndSAN(t *testing.T) {
	tests := []struct {
		fen, in, uci, san string
	}{
		{StartFEN, "e2e4", "e2e4", "e4"},
		{StartFEN, "e4", "e2e4", "e4"},
		{StartFEN, "Nf3", "g1f3", "Nf3"},
		{StartFEN, "Ng1f3", "g1f3", "Nf3"},
		{StartFEN, "Ng1-f3", "g1f3", "Nf3"},
		{StartFEN, "e2-e4", "e2e4", "e4"},
		{StartFEN, "Nf3!?", "g1f3", "Nf3"},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "O-O", "e1g1", "O-O"},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "0-0-0", "e1c1", "O-O-O"},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1h1", "e1g1", "O-O"},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1a1", "e1c1", "O-O-O"},
		{"r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", "e8h8", "e8g8", "O-O"},
		{"r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", "O-O-O", "e8c8", "O-O-O"},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "e8=Q+", "", ""},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "c8=Q+", "c7c8q", "c8=Q+"},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "c8Q", "c7c8q", "c8=Q+"},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "c8=n", "c7c8n", "c8=N"},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "axb8=R+", "a7b8r", "axb8=R+"},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "a7b8n", "a7b8n", "axb8=N"},
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "c7c8", "", ""}, // promotion piece missing
		{"rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3", "exf6", "e5f6", "exf6"},
		{"rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3", "exf6e.p.", "e5f6", "exf6"},
		// Disambiguation: file, rank, both.
		{"4k3/8/8/8/8/8/4K3/R6R w - - 0 1", "Rad1", "a1d1", "Rad1"},
		{"4k3/8/8/8/R7/8/8/R3K3 w - - 0 1", "R1a2", "a1a2", "R1a2"},
		{"k7/8/8/8/8/2Q1Q3/8/2Q1K3 w - - 0 1", "Qc3d2", "c3d2", "Qc3d2"},
		{"k7/8/8/8/8/2Q1Q3/8/2Q1K3 w - - 0 1", "Qd2", "", ""}, // ambiguous
		{"6k1/5ppp/8/8/8/8/5PPP/3R2K1 w - - 0 1", "Rd8", "d1d8", "Rd8#"},
		{StartFEN, "Nf6", "", ""},
		{StartFEN, "e5", "", ""},
		{StartFEN, "--", "", ""},
		{StartFEN, "hello", "", ""},
		{StartFEN, "Kg1", "", ""},
	}
	for _, tc := range tests {
		p, err := ParseFEN(tc.fen)
		if err != nil {
			t.Fatal(err)
		}
		m, err := p.ParseMove(tc.in)
		if tc.uci == "" {
			if err == nil {
				t.Errorf("%s: ParseMove(%q) = %s, want error", tc.fen, tc.in, m)
			}
			continue
		}
		if err != nil || m.UCI() != tc.uci {
			t.Errorf("%s: ParseMove(%q) = %s, %v; want %s", tc.fen, tc.in, m, err, tc.uci)
			continue
		}
		if san := p.SAN(m); san != tc.san {
			t.Errorf("%s: SAN(%s) = %s, want %s", tc.fen, m, san, tc.san)
		}
	}
	p := StartPosition()
	_, err := p.ParseMove("Qd2")
	if !errors.Is(err, ErrIllegalMove) {
		t.Errorf("Qd2: %v, want ErrIllegalMove", err)
	}
	q, _ := ParseFEN("k7/8/8/8/8/2Q1Q3/8/2Q1K3 w - - 0 1")
	if _, err := q.ParseMove("Qd2"); !errors.Is(err, ErrAmbiguousMove) {
		t.Errorf("Qd2: %v, want ErrAmbiguousMove", err)
	}
}

func TestPlay(t *testing.T) {
	tests := []struct {
		fen, moves, want string
	}{
		// Double push sets the en-passant square only when a pawn can take.
		{StartFEN, "e2e4", "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"},
		{StartFEN, "e2e4 g8f6 e4e5 d7d5", "rnbqkb1r/ppp1pppp/5n2/3pP3/8/8/PPPP1PPP/RNBQKBNR w KQkq d6 0 3"},
		{StartFEN, "e2e4 g8f6 e4e5 d7d5 e5d6", "rnbqkb1r/ppp1pppp/3P1n2/8/8/8/PPPP1PPP/RNBQKBNR b KQkq - 0 3"},
		// Castling both ways, rights lost by king and rook moves and captures.
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 3 10", "e1g1 e8c8", "2kr3r/8/8/8/8/8/8/R4RK1 w - - 5 11"},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 3 10", "a1a8", "R3k2r/8/8/8/8/8/8/4K2R b Kk - 0 10"},
		{"r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 3 10", "h1h2 h8h7", "r3k3/7r/8/8/8/8/7R/R3K3 w Qq - 5 11"},
		// Underpromotion with capture.
		{"1r2k3/P1P5/8/8/8/8/8/4K3 w - - 0 1", "a7b8n", "1N2k3/2P5/8/8/8/8/8/4K3 b - - 0 1"},
	}
	for _, tc := range tests {
		g, err := ParseGame(tc.fen, tc.moves)
		if err != nil {
			t.Errorf("%s %s: %v", tc.fen, tc.moves, err)
			continue
		}
		if got := g.Current().FEN(); got != tc.want {
			t.Errorf("%s + %s:\n got %s\nwant %s", tc.fen, tc.moves, got, tc.want)
		}
	}
}

func TestParseGameErrors(t *testing.T) {
	_, err := ParseGame("startpos", "e2e4 e7e5 e2e5")
	want := `board: move 3 "e2e5": illegal in rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2`
	var me *MoveError
	if err == nil || err.Error() != want || !errors.Is(err, ErrIllegalMove) || !errors.As(err, &me) || me.Ply != 3 {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, err := ParseGame("startpos", "1. e4 e5 2. Nf3 Nc6"); err != nil {
		t.Errorf("move numbers: %v", err)
	}
	if g, err := ParseGame("startpos", ""); err != nil || g.Ply() != 0 {
		t.Errorf("empty moves: %v", err)
	}
	if _, err := ParseGame("not a fen", ""); err == nil || !strings.HasPrefix(err.Error(), "board: fen") {
		t.Errorf("bad fen: %v", err)
	}
}
