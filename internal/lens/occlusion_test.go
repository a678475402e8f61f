package lens

import (
	"math"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

func sq(t *testing.T, s string) board.Square {
	t.Helper()
	q, err := board.ParseSquare(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestEditSquare(t *testing.T) {
	tests := []struct {
		name, fen, square string
		with              board.PieceType
		want              string // "" means the edit is refused
	}{
		{"remove a knight", board.StartFEN, "g1", board.NoPieceType, "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKB1R w KQkq - 0 1"},
		{"removing a rook drops its castling right", board.StartFEN, "h8", board.NoPieceType, "rnbqkbn1/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQq - 0 1"},
		{"replace a pawn by a queen", board.StartFEN, "d2", board.Queen, "rnbqkbnr/pppppppp/8/8/8/8/PPPQPPPP/RNBQKBNR w KQkq - 0 1"},
		{"no pawn on the back rank", board.StartFEN, "b1", board.Pawn, ""},
		{"king", board.StartFEN, "e1", board.NoPieceType, ""},
		{"empty square", board.StartFEN, "e4", board.NoPieceType, ""},
		// Removing the pinned bishop would leave the side not to move (black) in check.
		{"side not to move in check", "4k3/4b3/8/8/8/8/8/4RK2 w - - 0 1", "e7", board.NoPieceType, ""},
		{"the side to move may be left in check", "4k3/4b3/8/8/8/8/8/4RK2 b - - 0 1", "e7", board.NoPieceType, "4k3/8/8/8/8/8/8/4RK2 b - - 0 1"},
		{"removing the pawn that just moved clears en passant", "8/2k5/8/3Pp3/8/8/5K2/8 w - e6 0 40", "e5", board.NoPieceType, "8/2k5/8/3P4/8/8/5K2/8 w - - 0 40"},
		{"en passant kept when still valid", "8/2k5/8/3Pp3/8/8/5K2/8 w - e6 0 40", "d5", board.NoPieceType, "8/2k5/8/4p3/8/8/5K2/8 w - e6 0 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pos, err := board.ParseFEN(tt.fen)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EditSquare(pos, sq(t, tt.square), tt.with)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("edit accepted: %s", got.FEN())
			case tt.want != "" && err != nil:
				t.Errorf("edit refused: %v", err)
			case tt.want != "" && got.FEN() != tt.want:
				t.Errorf("got %s, want %s", got.FEN(), tt.want)
			}
		})
	}
}

// forwardFEN runs the network on fen encoded as a fresh game, independently of the lens's code path.
func forwardFEN(t *testing.T, r *model.SessionCache, n *model.Network, fen string) *model.HeadOutputs {
	t.Helper()
	g, err := board.ParseGame(fen, "")
	if err != nil {
		t.Fatal(err)
	}
	planes := make([]float32, board.NumPlanes*64)
	g.Encode(board.FillFENOnly, planes)
	h, err := n.Forward(r, planes, 1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestOcclusionConsistency is the occlusion half of issue 8's acceptance 2: every heatmap entry equals the
// target on the original position minus the target on the edited FEN, each run through Network.Forward on
// its own, and the edited squares are exactly the occupied, non-king squares whose edit is legal.
func TestOcclusionConsistency(t *testing.T) {
	r := runtimeFor(t)
	for _, net := range []string{"tinygyal-8", "maia-1100"} {
		n, err := model.Load(testutil.Shared(t, "models/"+net+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			target, replace string
		}{{"value", "none"}, {"wdl:d", "knight"}, {"policy:best", "none"}} {
			t.Run(net+"/"+tc.target+"/"+tc.replace, func(t *testing.T) {
				if tc.target == "wdl:d" && n.Heads.WDL == "" {
					t.Skip("no wdl head")
				}
				b := batchOf(t, board.FillFENOnly)
				res := runLens(t, r, n, b, Occlusion, map[string]string{"target": tc.target, "replace": tc.replace})
				heat, base, vars := res["heatmap"], res["target"], res["variants"]
				tg, _ := ParseTarget(tc.target)
				with := replaceTypes[tc.replace]
				for i, pos := range b.Positions {
					h0 := forwardFEN(t, r, n, pos.FEN())
					want0, err := tg.Value(h0, pos, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					if math.Abs(float64(base.Data[i]-want0)) > 1e-5 {
						t.Errorf("position %d: target %g, forward on its FEN %g", i, base.Data[i], want0)
					}
					followed := tg
					if tg.Kind == TargetPolicyBest {
						pi, _ := tg.policyIndex(pos, 0, h0, 0)
						m, _ := board.MoveFromIndex(pos, pi)
						followed = Target{Kind: TargetPolicyMove, Move: m.UCI()}
					}
					byS := map[string]OccludedVariant{}
					for _, v := range vars.JSON[i].([]OccludedVariant) {
						byS[v.Square] = v
					}
					for s := board.Square(0); s < 64; s++ {
						got := heat.Data[i*64+int(s)]
						_, pt, occupied := pos.PieceAt(s)
						edited, editErr := EditSquare(pos, s, with)
						applicable := occupied && pt != board.King && pt != with && editErr == nil
						v, listed := byS[s.String()]
						if listed != applicable {
							t.Errorf("position %d %s: listed %v, applicable %v", i, s, listed, applicable)
							continue
						}
						if !applicable {
							if got != 0 {
								t.Errorf("position %d %s: heatmap %g on a square with no edit", i, s, got)
							}
							continue
						}
						if v.FEN != edited.FEN() {
							t.Errorf("position %d %s: variant fen %s, want %s", i, s, v.FEN, edited.FEN())
						}
						ep, err := board.ParseFEN(v.FEN)
						if err != nil {
							t.Fatal(err)
						}
						he := forwardFEN(t, r, n, v.FEN)
						want, err := followed.Value(he, ep, 0, 0)
						if err != nil {
							if !math.IsNaN(float64(got)) || v.Target != nil {
								t.Errorf("position %d %s: target move illegal, heatmap %g, variant target %v", i, s, got, v.Target)
							}
							continue
						}
						if d := math.Abs(float64(got - (want0 - want))); d > 1e-5*(1+math.Abs(float64(want0))) {
							t.Errorf("position %d %s: heatmap %g, forward gives %g - %g = %g", i, s, got, want0, want, want0-want)
						}
						if v.Target == nil || math.Abs(*v.Target-float64(want)) > 1e-5*(1+math.Abs(float64(want))) {
							t.Errorf("position %d %s: variant target %v, forward %g", i, s, v.Target, want)
						}
					}
				}
			})
		}
	}
}

// TestOcclusionIllegalMoveIsNaN: with --target policy:e2e4, removing the e2 pawn leaves no such move, so
// that square is NaN and its variant's target null; the others are numbers.
func TestOcclusionIllegalMoveIsNaN(t *testing.T) {
	r := runtimeFor(t)
	pos := board.StartPosition()
	planes := make([]float32, board.NumPlanes*64)
	board.NewGame(pos).Encode(board.FillFENOnly, planes)
	b := &Batch{Positions: []*board.Position{pos}, Planes: planes}
	res := runLens(t, r, model.Demo(), b, Occlusion, map[string]string{"target": "policy:e2e4"})
	e2 := sq(t, "e2")
	for s := board.Square(0); s < 64; s++ {
		v := res["heatmap"].Data[s]
		if (s == e2) != math.IsNaN(float64(v)) {
			t.Errorf("%s: heatmap %g", s, v)
		}
	}
	vars := res["variants"].JSON[0].([]OccludedVariant)
	if len(vars) != 30 {
		t.Errorf("%d variants of the start position, want 30 (32 pieces less the kings)", len(vars))
	}
	for _, v := range vars {
		if (v.Square == "e2") != (v.Target == nil) {
			t.Errorf("variant %+v", v)
		}
		if v.Square == "e2" && (v.Piece != "P" || !strings.HasPrefix(v.FEN, "rnbqkbnr/pppppppp/8/8/8/8/PPPP1PPP/")) {
			t.Errorf("e2 variant %+v", v)
		}
	}
}
