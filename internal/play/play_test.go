package play

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/notnil/chess"

	"github.com/lczerolens/lczerolens/internal/board"
)

// fakeEval is a deterministic stand-in for a network: each move's logit is a hash of its squares, Q and
// the moves left depend on the material, so games are varied without ONNX Runtime.
type fakeEval struct{ calls, positions int }

func (f *fakeEval) Evaluate(_ context.Context, games []*board.Game) ([]Eval, error) {
	f.calls++
	f.positions += len(games)
	out := make([]Eval, len(games))
	for i, g := range games {
		p := g.Current()
		moves := p.LegalMoves()
		w := make([]float64, len(moves))
		var sum float64
		for k, m := range moves {
			w[k] = math.Exp(float64((int(m.From)*7+int(m.To)*13+int(m.Promo))%11) / 3)
			sum += w[k]
		}
		ev := Eval{Moves: moves, P: make([]float32, len(moves)), HasML: true, MLH: float32(len(moves))}
		for k := range w {
			ev.P[k] = float32(w[k] / sum)
		}
		ev.Q = float32(math.Tanh(float64(len(moves)-20) / 20))
		ev.WDL = []float32{(1 + ev.Q) / 2 * 0.8, 0.2, (1 - ev.Q) / 2 * 0.8}
		out[i] = ev
	}
	return out, nil
}

func readOpeningsFile(t *testing.T, name string, book int) []Opening {
	t.Helper()
	fh, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	ops, err := ReadOpenings(fh, strings.HasSuffix(name, ".pgn"), book)
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

func TestReadOpenings(t *testing.T) {
	ops := readOpeningsFile(t, "openings.pgn", 4)
	if len(ops) != 2 || ops[0].Name != "Sicilian" || len(ops[0].Moves) != 4 || len(ops[1].Moves) != 3 || ops[1].Name != "game 2" {
		t.Fatalf("pgn openings: %+v", ops)
	}
	if got := ops[1].Start.FEN(); got != "4k3/pppp4/8/8/8/8/4PPPP/4K3 w - - 0 1" {
		t.Errorf("start %s", got)
	}
	ops = readOpeningsFile(t, "openings.epd", 0)
	if len(ops) != 2 || ops[1].Start.SideToMove() != board.Black || ops[0].Name != "line 2" {
		t.Fatalf("epd openings: %+v", ops)
	}
	if _, err := ReadOpenings(strings.NewReader("not a fen\n"), false, 0); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}

// TestUtilityHandComputed checks ModelSampler's utility on two children against numbers worked out by hand.
func TestUtilityHandComputed(t *testing.T) {
	s := DefaultSampler()
	s.Kind, s.Temperature, s.Alpha, s.Beta, s.Gamma, s.DrawScore = Utility, 0, 1, 1, 0.5, 0.1
	parent := Eval{Moves: make([]board.Move, 3), P: []float32{0.5, 0.25, 0.25}, MLH: 40, HasML: true}
	children := []Eval{
		// Child WDL for the side to move there (the opponent): the mover's q = -0.05 + 0.1*0.1 + 0.85 = 0.81.
		{Moves: make([]board.Move, 5), WDL: []float32{0.05, 0.1, 0.85}, MLH: 30, HasML: true},
		// No WDL: q = -value = 0.3, below the threshold, so no moves-left term.
		{Moves: make([]board.Move, 5), Q: -0.3, MLH: 60, HasML: true},
		// Checkmated: q = 1 by the rules, no moves-left term.
		{Moves: nil, Q: 0.7, MLH: 0, HasML: true},
	}
	u := s.Utilities(parent, children, []bool{false, false, true})
	// Child 0: d = clamp(0.0027 * (30 - 40), ±0.0345) = -0.027; s = (0.81 - 0.8)/0.2 = 0.05;
	// poly = 1.6521*0.05 - 0.6521*0.0025 = 0.08097475; m = -1 * -0.027 * 0.08097475 = 0.00218631825.
	want := []float64{
		0.81 + 0.00218631825 + 0.5*math.Log(0.5),
		0.3 + 0.5*math.Log(0.25),
		1 + 0.5*math.Log(0.25),
	}
	for i := range want {
		if math.Abs(u[i]-want[i]) > 1e-6 {
			t.Errorf("utility %d = %.9f, want %.9f", i, u[i], want[i])
		}
	}
	if got := s.Choose(parent, u, nil); got != 0 {
		t.Errorf("argmax utility chose %d, want 0 (0.466 against the mate's 0.307)", got)
	}
	// The moves-left term is clamped at m_max: child MLH 100 would give d = 0.162.
	children[0].MLH = 100
	u = s.Utilities(parent, children, []bool{false, false, true})
	if w := 0.81 - 0.0345*0.08097475 + 0.5*math.Log(0.5); math.Abs(u[0]-w) > 1e-6 {
		t.Errorf("clamped utility %.9f, want %.9f", u[0], w)
	}
}

// TestSampleTemperature draws many times and compares frequencies with p^(1/T) normalised.
func TestSampleTemperature(t *testing.T) {
	s := DefaultSampler()
	s.Kind, s.Temperature = Sample, 0.5
	parent := Eval{Moves: make([]board.Move, 3), P: []float32{0.6, 0.3, 0.1}}
	u := s.Utilities(parent, nil, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	counts := make([]float64, 3)
	const n = 20000
	for i := 0; i < n; i++ {
		counts[s.Choose(parent, u, rng)]++
	}
	z := 0.36 + 0.09 + 0.01
	for i, p := range []float64{0.36 / z, 0.09 / z, 0.01 / z} {
		if math.Abs(counts[i]/n-p) > 4*math.Sqrt(p*(1-p)/n) {
			t.Errorf("move %d drawn %.4f of the time, want %.4f", i, counts[i]/n, p)
		}
	}
}

func TestElo(t *testing.T) {
	for _, c := range []struct {
		t         Tally
		elo       float64
		lo, hi    float64
		checkBand bool
	}{
		{Tally{10, 10, 10}, 0, 0, 0, false},
		{Tally{3, 0, 1}, 400 * math.Log10(3), 0, 0, false},
		// 6 wins, 4 draws, 2 losses: s = 8/12; per-game variance (6/9*... ) worked out below.
		{Tally{6, 4, 2}, EloDiff(8.0 / 12), 0, 0, true},
	} {
		elo, lo, hi := c.t.Elo()
		if math.Abs(elo-c.elo) > 1e-9 {
			t.Errorf("%+v: elo %v, want %v", c.t, elo, c.elo)
		}
		if c.checkBand {
			s := 8.0 / 12
			v := (6*(1-s)*(1-s) + 4*(0.5-s)*(0.5-s) + 2*s*s) / 12
			se := math.Sqrt(v / 12)
			if math.Abs(lo-EloDiff(s-1.96*se)) > 1e-9 || math.Abs(hi-EloDiff(s+1.96*se)) > 1e-9 || !(lo < elo && elo < hi) {
				t.Errorf("%+v: interval [%v, %v]", c.t, lo, hi)
			}
		}
	}
	if _, lo, hi := (Tally{5, 0, 0}).Elo(); !math.IsInf(lo, 1) || !math.IsInf(hi, 1) {
		t.Errorf("all wins: interval [%v, %v], want +inf", lo, hi)
	}
}

func runMatch(t *testing.T, ops []Opening, s Sampler, seed uint64, games, maxPlies int) ([]*Record, *fakeEval) {
	t.Helper()
	a, b := &fakeEval{}, &fakeEval{}
	recs, err := Run(context.Background(), [2]Player{{Name: "a", Eval: a, Sampler: s}, {Name: "b", Eval: b, Sampler: s}}, ops,
		Options{Games: games, MaxPlies: maxPlies, Seed: seed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.calls += b.calls
	return recs, a
}

func pgnText(t *testing.T, recs []*Record) string {
	t.Helper()
	var buf bytes.Buffer
	h := PGNHeader{Event: "test", Date: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Names: [2]string{"a", "b"}}
	for _, r := range recs {
		if err := WritePGN(&buf, h, r); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// TestRunGames plays games with every sampler from both kinds of openings: every move is legal (notnil
// replays the PGN), runs are reproducible, seeds matter for drawn samplers, each opening is played with
// both colours, and the PGN reads back through the project's reader and notnil with the same moves and
// results.
func TestRunGames(t *testing.T) {
	epd := readOpeningsFile(t, "openings.epd", 0)
	pgn := readOpeningsFile(t, "openings.pgn", 0)
	sample := DefaultSampler()
	sample.Kind, sample.Temperature = Sample, 1
	util := DefaultSampler()
	util.Kind, util.Temperature = Utility, 0
	for _, c := range []struct {
		name string
		ops  []Opening
		s    Sampler
	}{
		{"argmax epd", epd, DefaultSampler()},
		{"sample pgn", pgn, sample},
		{"utility epd", epd, util},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs, ev := runMatch(t, c.ops, c.s, 7, 4, 120)
			again, _ := runMatch(t, c.ops, c.s, 7, 4, 120)
			text := pgnText(t, recs)
			if text != pgnText(t, again) {
				t.Error("same seed, different games")
			}
			if c.s.Kind == Sample {
				other, _ := runMatch(t, c.ops, c.s, 8, 4, 120)
				if pgnText(t, other) == text {
					t.Error("seed 7 and 8 drew the same games")
				}
			}
			// One batched call per player per ply at most: never one call per game.
			maxPly := 0
			for _, r := range recs {
				maxPly = max(maxPly, r.Game.Ply()-r.Book)
			}
			if ev.calls > 2*maxPly+2 {
				t.Errorf("%d evaluator calls for %d plies", ev.calls, maxPly)
			}
			for i, r := range recs {
				if r.Opening.Name != c.ops[i/2].Name || r.WhiteIsA != (i%2 == 0) {
					t.Errorf("game %d: opening %s white-is-a %v", i, r.Opening.Name, r.WhiteIsA)
				}
			}
			checkPGN(t, text, recs)
		})
	}
}

func checkPGN(t *testing.T, text string, recs []*Record) {
	t.Helper()
	pr := board.NewPGNReader(strings.NewReader(text))
	for i, r := range recs {
		g, err := pr.Next()
		if err != nil {
			t.Fatalf("our reader, game %d: %v\n%s", i, err, text)
		}
		if len(g.Moves) != r.Game.Ply() || g.Result != r.Result || g.StartFEN != r.Game.Start().FEN() {
			t.Fatalf("our reader, game %d: %d moves %s from %s, want %d %s", i, len(g.Moves), g.Result, g.StartFEN, r.Game.Ply(), r.Result)
		}
		for k, m := range g.Moves {
			if m != r.Game.Moves()[k] {
				t.Fatalf("our reader, game %d ply %d: %s, want %s", i, k, m, r.Game.Moves()[k])
			}
		}
	}
	scanner := chess.NewScanner(strings.NewReader(text))
	n := 0
	for scanner.Scan() {
		g := scanner.Next()
		if len(g.TagPairs()) == 0 && len(g.Moves()) == 0 {
			continue // notnil's scanner yields an empty game for the blank line after the last one
		}
		if n >= len(recs) {
			t.Fatalf("notnil read more than %d games; game %d: %v\n%s", len(recs), n, g, text)
		}
		r := recs[n]
		if len(g.Moves()) != r.Game.Ply() {
			t.Fatalf("notnil, game %d: %d moves, want %d", n, len(g.Moves()), r.Game.Ply())
		}
		enc := chess.UCINotation{}
		for k, m := range g.Moves() {
			if got := enc.Encode(g.Positions()[k], m); got != r.Game.Moves()[k].UCI() {
				t.Fatalf("notnil, game %d ply %d: %s, want %s", n, k, got, r.Game.Moves()[k].UCI())
			}
		}
		if g.Outcome().String() != r.Result && !(r.Result == "1/2-1/2" && g.Outcome() == chess.NoOutcome) {
			t.Errorf("notnil, game %d: outcome %s, want %s", n, g.Outcome(), r.Result)
		}
		// A game the rules ended must be over for notnil too (threefold and fifty moves are claims there).
		if r.Termination == board.Checkmate && g.Method() != chess.Checkmate {
			t.Errorf("notnil, game %d: method %s, want checkmate", n, g.Method())
		}
		n++
	}
	if err := scanner.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if n != len(recs) {
		t.Fatalf("notnil read %d games, want %d", n, len(recs))
	}
}
