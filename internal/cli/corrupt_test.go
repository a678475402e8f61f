package cli

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/notnil/chess"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// editBetween names the one edit between two positions' placements, read square by square with PieceAt,
// or "" when they differ in another way.
func editBetween(a, b *board.Position) string {
	var diff []board.Square
	for sq := board.Square(0); sq < 64; sq++ {
		ca, pa, oa := a.PieceAt(sq)
		cb, pb, ob := b.PieceAt(sq)
		if oa != ob || ca != cb || pa != pb {
			diff = append(diff, sq)
		}
	}
	switch len(diff) {
	case 1:
		sq := diff[0]
		_, pa, oa := a.PieceAt(sq)
		cb, pb, ob := b.PieceAt(sq)
		switch {
		case oa && pa == board.Pawn && !ob:
			return "remove " + sq.String()
		case !oa && ob && pb == board.Pawn:
			return "add " + cb.String() + " " + sq.String()
		}
	case 2:
		for _, k := range [][2]board.Square{{diff[0], diff[1]}, {diff[1], diff[0]}} {
			ca, pa, oa := a.PieceAt(k[0])
			cb, pb, ob := b.PieceAt(k[1])
			_, _, toOcc := a.PieceAt(k[1])
			if oa && ob && !toOcc && ca == cb && pa == pb && pa != board.Pawn {
				return k[0].String() + k[1].String()
			}
		}
	}
	return ""
}

// TestCorruptPuzzles runs corrupt on a few lichess puzzles (maia-1900 against maia-1100) and checks each
// output: the move is the puzzle's first solution move, legal for notnil in corrupt_fen; corrupt_fen is a
// legal position that differs from the puzzle position by exactly the reported edit; the reported scores
// pass the selection rules. Then batch --lens patching reads the file as it is, and its clean minus
// corrupted target (W - L of the big net) equals the reported value drop.
func TestCorruptPuzzles(t *testing.T) {
	big := testutil.Shared(t, "models/maia-1900.onnx")
	small := testutil.Shared(t, "models/maia-1100.onnx")
	raw, err := os.ReadFile(testutil.Shared(t, "data/puzzles/lichess_db_puzzle_sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	keep := []string{lines[0]}
	solution := map[string]string{}
	for _, l := range lines[1:] {
		for _, id := range []string{"00143", "001wr", "002Ua"} {
			if strings.HasPrefix(l, id+",") {
				keep = append(keep, l)
				solution[id] = strings.Fields(strings.Split(l, ",")[2])[1]
			}
		}
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(in, []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	out := filepath.Join(dir, "c.jsonl")
	code, _, stderr := runCLI(t, env, "corrupt", in, "--model", big, "--sparring", small, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "of 3 positions have a corruption") {
		t.Errorf("summary: %q", stderr)
	}
	fh, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var recs []corruptJSON
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var r corruptJSON
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) < 2 {
		t.Fatalf("%d corruptions of 3 puzzles, want at least 2 (3 when this test was written)", len(recs))
	}
	th := corruptThresholdsForTest()
	for _, r := range recs {
		g, err := board.ParseGame(r.FEN, r.Moves)
		if err != nil {
			t.Fatal(err)
		}
		c, err := board.ParseFEN(r.CorruptFEN)
		if err != nil {
			t.Errorf("%s: corrupt_fen: %v", r.PuzzleID, err)
			continue
		}
		if got := editBetween(g.Current(), c); got != r.Edit {
			t.Errorf("%s: positions differ by %q, reported %q", r.PuzzleID, got, r.Edit)
		}
		if r.Move != solution[r.PuzzleID] {
			t.Errorf("%s: move %s, want the solution's %s", r.PuzzleID, r.Move, solution[r.PuzzleID])
		}
		opt, err := chess.FEN(r.CorruptFEN)
		if err != nil {
			t.Fatal(err)
		}
		if err := chess.NewGame(opt, chess.UseNotation(chess.UCINotation{})).MoveStr(r.Move); err != nil {
			t.Errorf("%s: %s illegal in %s for notnil", r.PuzzleID, r.Move, r.CorruptFEN)
		}
		s := r.Scores
		if !(s.SparringLogOddsDrop < th[0] && s.ValueDrop > th[1] && s.BigP < th[2] && s.JSD <= th[3]) {
			t.Errorf("%s: scores %+v break the rules", r.PuzzleID, s)
		}
	}
	pdir := filepath.Join(dir, "patch")
	code, _, stderr = runCLI(t, env, "batch", out, "--model", big, "--lens", "patching", "--pattern", "^block0/conv2/relu$", "--format", "json", "-o", pdir, "--quiet")
	if code != 0 {
		t.Fatalf("batch --lens patching: exit %d: %s", code, stderr)
	}
	res, err := os.ReadFile(filepath.Join(pdir, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(res)), "\n")
	if len(rows) != len(recs) {
		t.Fatalf("patching wrote %d rows for %d records", len(rows), len(recs))
	}
	for i, row := range rows {
		var doc struct {
			Results map[string]struct{ Data []float64 } `json:"results"`
		}
		if err := json.Unmarshal([]byte(row), &doc); err != nil {
			t.Fatal(err)
		}
		drop := doc.Results["target_clean"].Data[0] - doc.Results["target_corrupted"].Data[0]
		if math.Abs(drop-recs[i].Scores.ValueDrop) > 1e-4 {
			t.Errorf("%s: patching's clean - corrupted value %.6f, corrupt's value drop %.6f", recs[i].PuzzleID, drop, recs[i].Scores.ValueDrop)
		}
	}
}

// corruptThresholdsForTest are leela-interp's constants, written out here rather than read from the package.
func corruptThresholdsForTest() [4]float64 { return [4]float64{0.2, 0.1, 0.1, 0.2} }
