package corrupt

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/notnil/chess"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/play"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// grid is a FEN's placement as 64 characters, a1 first, '.' for empty: parsed here, independently of the
// board package.
func grid(t *testing.T, fen string) []byte {
	t.Helper()
	g := make([]byte, 64)
	rank, file := 7, 0
	for _, c := range strings.Fields(fen)[0] {
		switch {
		case c == '/':
			rank, file = rank-1, 0
		case c >= '1' && c <= '8':
			for k := 0; k < int(c-'0'); k++ {
				g[rank*8+file] = '.'
				file++
			}
		default:
			g[rank*8+file] = byte(c)
			file++
		}
	}
	return g
}

func sqName(i int) string { return string([]byte{byte('a' + i%8), byte('1' + i/8)}) }

// editOf names the one edit between two grids (as Candidates names them), or "" when they differ otherwise.
func editOf(a, b []byte) string {
	var diff []int
	for i := range a {
		if a[i] != b[i] {
			diff = append(diff, i)
		}
	}
	switch len(diff) {
	case 1:
		i := diff[0]
		switch {
		case (a[i] == 'P' || a[i] == 'p') && b[i] == '.':
			return "remove " + sqName(i)
		case a[i] == '.' && b[i] == 'P':
			return "add white " + sqName(i)
		case a[i] == '.' && b[i] == 'p':
			return "add black " + sqName(i)
		}
	case 2:
		for _, k := range [][2]int{{diff[0], diff[1]}, {diff[1], diff[0]}} {
			from, to := k[0], k[1]
			if a[to] == '.' && b[from] == '.' && a[from] == b[to] && a[from] != 'P' && a[from] != 'p' {
				return sqName(from) + sqName(to)
			}
		}
	}
	return ""
}

func gridFEN(g []byte, rest string) string {
	return testutil.PlacementFEN(g) + " " + rest
}

func notnilLegal(fen, uci string) bool {
	opt, err := chess.FEN(fen)
	if err != nil {
		return false
	}
	g := chess.NewGame(opt, chess.UseNotation(chess.UCINotation{}))
	return g.MoveStr(uci) == nil
}

// TestCandidates: every candidate differs from the original by exactly its edit (compared on FEN grids
// parsed here), is a position the FEN reader accepts with at most 8 pawns and 16 men a side, keeps the side
// to move, and has the move legal for notnil; and every edit enumerated here independently that is not a
// candidate breaks one of those rules.
func TestCandidates(t *testing.T) {
	for _, c := range []struct{ fen, move string }{
		{"r2qr1k1/b1p2ppp/pp4n1/P1P1p3/4P1n1/B2P2Pb/3NBP1P/RN1QR1K1 w - - 0 17", "e2g4"},
		{"r3k2r/ppp2ppp/2n5/3pP3/8/8/PPP2PPP/R3K2R w KQkq d6 0 10", "e5d6"},
		{"8/8/4k3/8/8/3K4/8/7R b - - 0 1", "e6e5"},
		{board.StartFEN, "g1f3"},
	} {
		t.Run(c.fen, func(t *testing.T) {
			p, err := board.ParseFEN(c.fen)
			if err != nil {
				t.Fatal(err)
			}
			m, err := p.ParseMove(c.move)
			if err != nil {
				t.Fatal(err)
			}
			orig := grid(t, c.fen)
			cands := Candidates(p, m)
			byEdit := map[string]string{} // edit -> the candidate's piece placement
			for _, cd := range cands {
				fen := cd.Pos.FEN()
				if got := editOf(orig, grid(t, fen)); got != cd.Edit {
					t.Errorf("%s: grids differ by %q", cd.Edit, got)
				}
				if _, err := board.ParseFEN(fen); err != nil {
					t.Errorf("%s: %v", cd.Edit, err)
				}
				if cd.Pos.SideToMove() != p.SideToMove() {
					t.Errorf("%s: side to move changed", cd.Edit)
				}
				if !notnilLegal(fen, c.move) {
					t.Errorf("%s: %s illegal for notnil in %s", cd.Edit, c.move, fen)
				}
				byEdit[cd.Edit] = strings.Fields(fen)[0]
			}
			if len(byEdit) != len(cands) {
				t.Errorf("duplicate edits")
			}
			rest := strings.Join(strings.Fields(c.fen)[1:], " ")
			seen := 0 // candidates met again by the independent enumeration below
			try := func(edit string, g []byte) {
				fen := gridFEN(g, rest)
				if placed, ok := byEdit[edit]; ok {
					// The enumeration must rebuild the candidate's board, or its "nothing dropped" half proves nothing.
					if got := strings.Fields(fen)[0]; got != placed {
						t.Errorf("edit %s: the test's own board %s, the candidate's %s", edit, got, placed)
					}
					seen++
					return
				}
				q, err := board.ParseFEN(fen)
				if err != nil {
					return // no legal position (an en-passant field that no longer fits is dropped by Placed instead)
				}
				wp, bp, wm, bm := 0, 0, 0, 0
				for _, x := range g {
					switch {
					case x == 'P':
						wp++
					case x == 'p':
						bp++
					}
					if x >= 'A' && x <= 'Z' {
						wm++
					} else if x >= 'a' && x <= 'z' {
						bm++
					}
				}
				if wp > 8 || bp > 8 || wm > 16 || bm > 16 {
					return
				}
				if !notnilLegal(q.FEN(), c.move) {
					return
				}
				t.Errorf("edit %s (%s) passes every rule but is no candidate", edit, fen)
			}
			for i := range orig {
				switch orig[i] {
				case 'P', 'p':
					g := append([]byte(nil), orig...)
					g[i] = '.'
					try("remove "+sqName(i), g)
				case '.':
					for _, pc := range []byte{'P', 'p'} {
						g := append([]byte(nil), orig...)
						g[i] = pc
						name := "add white "
						if pc == 'p' {
							name = "add black "
						}
						try(name+sqName(i), g)
					}
				}
			}
			for from := range orig {
				if orig[from] == '.' || orig[from] == 'P' || orig[from] == 'p' {
					continue
				}
				for to := range orig {
					if orig[to] != '.' {
						continue
					}
					g := append([]byte(nil), orig...)
					g[to], g[from] = g[from], '.'
					try(sqName(from)+sqName(to), g)
				}
			}
			if seen != len(cands) {
				t.Errorf("the enumeration met %d of the %d candidates", seen, len(cands))
			}
			t.Logf("%d candidates", len(cands))
		})
	}
}

// TestSelection scores readings whose results were worked out by hand and checks which candidate wins.
func TestSelection(t *testing.T) {
	a, b, c := board.Move{From: 12, To: 28}, board.Move{From: 11, To: 27}, board.Move{From: 6, To: 21}
	th := DefaultThresholds()
	orig := Reading{BigValue: 0.5, BigP: 0.8, SparringP: 0.3, Sparring: map[board.Move]float64{a: 0.6, b: 0.4}}
	// log(0.3/0.7) - log(0.25/0.75) = 0.2513 > 0.2: fails the sparring rule.
	s := Score(orig, Reading{BigValue: 0, BigP: 0.05, SparringP: 0.25, Sparring: map[board.Move]float64{a: 0.6, b: 0.4}}, th)
	if math.Abs(s.SparringLogOddsDrop-0.2513144282809062) > 1e-12 || s.Pass {
		t.Errorf("sparring drop %v pass %v", s.SparringLogOddsDrop, s.Pass)
	}
	// JSD({a .6, b .4}, {a .5, c .5}) = 0.31419209939778303 nats, and everything else passes.
	s = Score(orig, Reading{BigValue: 0.3, BigP: 0.09, SparringP: 0.3, Sparring: map[board.Move]float64{a: 0.5, c: 0.5}}, th)
	if math.Abs(s.JSD-0.31419209939778303) > 1e-12 || !s.Pass || math.Abs(s.ValueDrop-0.2) > 1e-12 {
		t.Errorf("jsd %v pass %v value drop %v", s.JSD, s.Pass, s.ValueDrop)
	}
	if got := JSD(map[board.Move]float64{a: 0.5, b: 0.5}, map[board.Move]float64{a: 1}); math.Abs(got-0.21576155433883565) > 1e-12 {
		t.Errorf("jsd %v", got)
	}
	scores := []Scores{
		{JSD: 0.01, Pass: false}, // lowest JSD, but filtered
		{JSD: 0.15, Pass: true},  // passes
		{JSD: 0.12, Pass: true},  // passes with a lower JSD: the choice
		{JSD: 0.12, Pass: true},  // tie: the first wins
		{JSD: 0.30, Pass: true},
	}
	if got := Select(scores, th); got != 2 {
		t.Errorf("Select = %d, want 2", got)
	}
	// Best above 0.2: none.
	if got := Select([]Scores{{JSD: 0.21, Pass: true}, {JSD: 0.01}}, th); got != -1 {
		t.Errorf("Select = %d, want -1", got)
	}
	// Each rule on its own boundary: value must drop by more than 0.1, p below 0.1.
	for _, r := range []Reading{
		{BigValue: 0.4, BigP: 0.05, SparringP: 0.3, Sparring: orig.Sparring}, // value drop 0.1: not more
		{BigValue: 0.2, BigP: 0.1, SparringP: 0.3, Sparring: orig.Sparring},  // p 0.1: not below
	} {
		if s := Score(orig, r, th); s.Pass {
			t.Errorf("%+v passes: %+v", r, s)
		}
	}
}

// constEval reads every position the same way: uniform policy, value 0.
type constEval struct{}

func (constEval) Evaluate(_ context.Context, games []*board.Game) ([]play.Eval, error) {
	out := make([]play.Eval, len(games))
	for i, g := range games {
		moves := g.Current().LegalMoves()
		p := make([]float32, len(moves))
		for k := range p {
			p[k] = 1 / float32(len(moves))
		}
		out[i] = play.Eval{Moves: moves, P: p}
	}
	return out, nil
}

// TestSearchEdges: a mated position has no candidates (and is no error), an illegal given move is an
// error, and networks that see no change find no corruption.
func TestSearchEdges(t *testing.T) {
	mated, err := board.ParseGame("startpos", "f2f3 e7e5 g2g4 d8h4")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Search(context.Background(), constEval{}, constEval{}, mated, nil, DefaultThresholds())
	if err != nil || res.Best != nil || res.Candidates != 0 {
		t.Errorf("mated: %+v %v", res, err)
	}
	g := board.NewGame(nil)
	bad := board.Move{From: 12, To: 36}
	if _, err := Search(context.Background(), constEval{}, constEval{}, g, &bad, DefaultThresholds()); err == nil {
		t.Error("e2e5 accepted")
	}
	res, err = Search(context.Background(), constEval{}, constEval{}, g, nil, DefaultThresholds())
	if err != nil || res.Best != nil || res.Candidates == 0 || res.Passing != 0 {
		t.Errorf("constant nets: %+v %v", res, err)
	}
}
