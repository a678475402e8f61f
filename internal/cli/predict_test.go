package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/demonet"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

func TestNewCmdPredictFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    PredictOptions
		wantErr string
	}{
		{"defaults", nil, PredictOptions{Top: 5}, ""},
		{"fen top json", []string{"--fen", "8/8/8/8/8/8/8/K6k w - - 0 1", "--top", "0", "--json"},
			PredictOptions{Pos: positionFlags{FEN: "8/8/8/8/8/8/8/K6k w - - 0 1"}, Top: 0, JSON: true}, ""},
		{"startpos moves", []string{"--startpos", "--moves", "e2e4 e7e5"}, PredictOptions{Pos: positionFlags{Startpos: true, Moves: "e2e4 e7e5"}, Top: 5}, ""},
		{"fen and startpos", []string{"--fen", "8/8/8/8/8/8/8/K6k w - - 0 1", "--startpos"}, PredictOptions{}, "none of the others"},
		{"bad top", []string{"--top", "x"}, PredictOptions{}, "invalid argument"},
		{"positional", []string{"e2e4"}, PredictOptions{}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseFlags(t, NewCmdPredict, tt.args, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			if got.Top != tt.want.Top || got.JSON != tt.want.JSON || got.Pos.FEN != tt.want.Pos.FEN ||
				got.Pos.Startpos != tt.want.Pos.Startpos || got.Pos.Moves != tt.want.Pos.Moves {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

type predictDoc struct {
	FEN           string       `json:"fen"`
	InputEncoding encodingJSON `json:"input_encoding"`
	Moves         []struct {
		UCI   string  `json:"uci"`
		P     float64 `json:"p"`
		Logit float64 `json:"logit"`
	} `json:"moves"`
	WDL   []float64 `json:"wdl"`
	Value *float64  `json:"value"`
	MLH   *float64  `json:"mlh"`
}

func decodePredict(t *testing.T, stdout string) predictDoc {
	t.Helper()
	if strings.Count(stdout, "\n") != 1 {
		t.Fatalf("want one JSON line, got %q", stdout)
	}
	var doc predictDoc
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%v in %q", err, stdout)
	}
	return doc
}

// TestPredictMaiaStartpos compares predict's start position output on maia-1100 with lc0's own reference.
func TestPredictMaiaStartpos(t *testing.T) {
	lib := testutil.ORTLib(t)
	net := testutil.Shared(t, "models/maia-1100.onnx")
	ref := lc0Startpos(t, testutil.Shared(t, "reference/lc0/maia-1100.refdump.jsonl"))
	code, stdout, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": lib}, "predict", "--model", net, "--startpos", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc := decodePredict(t, stdout)
	if doc.FEN != "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1" || len(doc.Moves) != 5 {
		t.Fatalf("fen %q, %d moves", doc.FEN, len(doc.Moves))
	}
	if doc.Moves[0].UCI != "e2e4" || math.Abs(doc.Moves[0].P-0.66) > 0.02 {
		t.Errorf("first move %s p=%g, want e2e4 about 0.66", doc.Moves[0].UCI, doc.Moves[0].P)
	}
	for i, m := range doc.Moves {
		r, ok := ref.moves[m.UCI]
		if !ok || math.Abs(m.P-r.p) > 1e-5 || math.Abs(m.Logit-r.logit) > 1e-4 {
			t.Errorf("%s: p %g logit %g, lc0 %+v", m.UCI, m.P, m.Logit, r)
		}
		if i > 0 && m.P > doc.Moves[i-1].P {
			t.Errorf("moves not sorted by p at %d", i)
		}
	}
	if len(doc.WDL) != 3 || math.Abs(doc.WDL[0]-ref.w) > 1e-5 || math.Abs(doc.WDL[2]-ref.l) > 1e-5 {
		t.Errorf("wdl %v, lc0 w %g l %g", doc.WDL, ref.w, ref.l)
	}
	if doc.Value == nil || math.Abs(*doc.Value-ref.q) > 2e-5 || doc.MLH != nil {
		t.Errorf("value %v mlh %v, lc0 q %g", doc.Value, doc.MLH, ref.q)
	}

	code, stdout, _ = runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": lib}, "predict", "--model", net, "--startpos", "--top", "0")
	if code != 0 || !strings.Contains(stdout, "e2e4") || !strings.Contains(stdout, "wdl") || strings.Count(stdout, "\n") < 20 {
		t.Errorf("text output (exit %d):\n%s", code, stdout)
	}
}

type lc0Ref struct {
	q, w, l float64
	moves   map[string]struct{ p, logit float64 }
}

func lc0Startpos(t *testing.T, path string) lc0Ref {
	t.Helper()
	for _, rec := range testutil.ReadRefdump(t, path) {
		if rec.Name != "startpos" {
			continue
		}
		r := lc0Ref{q: rec.Q, w: rec.W, l: rec.L, moves: map[string]struct{ p, logit float64 }{}}
		for _, m := range rec.LegalMoves {
			r.moves[m.UCI] = struct{ p, logit float64 }{m.PExact, m.Logit}
		}
		return r
	}
	t.Fatalf("%s: no startpos record", path)
	return lc0Ref{}
}

// TestPredictDemo runs the built-in network, whose outputs have closed forms.
func TestPredictDemo(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	tests := []struct {
		name  string
		fen   string
		top   string
		first string
		all   int
	}{
		{"queen capture first", "4k3/1P6/8/3q4/4P3/8/8/4K2R w K - 0 1", "3", "e4d5", 3},
		{"castling as e1g1, all moves", "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "0", "", 26},
		{"black takes the rook", "8/8/3k4/2n5/4R3/8/8/4K3 b - - 0 1", "1", "c5e4", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, env, "predict", "--fen", tt.fen, "--top", tt.top, "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, "demo network") {
				t.Errorf("no demo notice on stderr: %q", stderr)
			}
			doc := decodePredict(t, stdout)
			if len(doc.Moves) != tt.all {
				t.Fatalf("%d moves, want %d", len(doc.Moves), tt.all)
			}
			if tt.first != "" && doc.Moves[0].UCI != tt.first {
				t.Errorf("first move %s, want %s", doc.Moves[0].UCI, tt.first)
			}
			pos, err := board.ParseFEN(tt.fen)
			if err != nil {
				t.Fatal(err)
			}
			planes := make([]float32, board.NumPlanes*64)
			board.NewGame(pos).Encode(board.FillFENOnly, planes)
			logits := demonet.PolicyLogits(planes)
			moves, idx := board.LegalIndices(pos)
			byUCI := map[string]float64{}
			for k, m := range moves {
				byUCI[m.UCI()] = logits[idx[k]]
			}
			for _, m := range doc.Moves {
				if want, ok := byUCI[m.UCI]; !ok || math.Abs(m.Logit-want) > 1e-5 {
					t.Errorf("%s: logit %g, closed form %g (legal %v)", m.UCI, m.Logit, want, ok)
				}
			}
			w, d, l := demonet.Value(planes)
			if math.Abs(doc.WDL[0]-w) > 1e-5 || math.Abs(doc.WDL[1]-d) > 1e-5 || math.Abs(*doc.Value-(w-l)) > 1e-5 {
				t.Errorf("wdl %v value %v, closed form %g %g %g", doc.WDL, *doc.Value, w, d, l)
			}
			if tt.top == "0" {
				if _, ok := byUCI["e1g1"]; !ok || !strings.Contains(stdout, `"e1g1"`) || strings.Contains(stdout, `"e1h1"`) {
					t.Errorf("castling not written as e1g1: %s", stdout)
				}
			}
		})
	}
}

func TestPredictErrors(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a network"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"negative top", []string{"predict", "--top", "-1"}, "--top -1"},
		{"bad fen", []string{"predict", "--fen", "xyz"}, "fen"},
		{"missing model", []string{"predict", "--model", filepath.Join(dir, "none.onnx")}, "none.onnx"},
		{"not onnx", []string{"predict", "--model", bad}, "not an onnx model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, env, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d stderr %q, want %d and %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
}
