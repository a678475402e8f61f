package cli

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	model0 "github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// demoPuzzles are hand-built for the demo network, whose policy takes the most valuable piece: in tDEMO1
// the solver takes a hanging queen, then (after a king move) a rook, so the net solves it; tDEMO2's
// solution is a quiet king move while the queen hangs, so the net misses it.
const demoPuzzles = `PuzzleId,FEN,Moves,Rating,RatingDeviation,Popularity,NbPlays,Themes,GameUrl,OpeningTags
tDEMO1,4k3/8/8/3q4/7r/8/3R4/4K3 b - - 0 1,d5d4 d2d4 e8e7 d4h4,1200,80,90,100,hangingPiece short,u1,
tDEMO2,4k3/8/8/3q4/7r/8/3R4/4K3 b - - 0 1,d5d4 e1f1,2000,80,90,100,quiet,u2,
`

// predictMoves runs predict on fen after moves and returns p by move, the top move, and W/D/L.
func predictMoves(t *testing.T, env map[string]string, model, fen string, moves []string) (map[string]float64, string, []float64) {
	t.Helper()
	args := []string{"predict", "--fen", fen, "--moves", strings.Join(moves, " "), "--top", "0", "--json"}
	if model != "" {
		args = append(args, "--model", model)
	}
	code, stdout, stderr := runCLI(t, env, args...)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, stderr)
	}
	var doc struct {
		Moves []struct {
			UCI string  `json:"uci"`
			P   float64 `json:"p"`
		} `json:"moves"`
		WDL []float64 `json:"wdl"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	ps := map[string]float64{}
	for _, m := range doc.Moves {
		ps[m.UCI] = m.P
	}
	return ps, doc.Moves[0].UCI, doc.WDL
}

type puzzleLine struct {
	ID                   string    `json:"id"`
	Model                string    `json:"model"`
	Rating               int       `json:"rating"`
	Themes               []string  `json:"themes"`
	Score                float64   `json:"score"`
	Perplexity           float64   `json:"perplexity"`
	NormalizedPerplexity float64   `json:"normalized_perplexity"`
	Solved               bool      `json:"solved"`
	PVProbs              []float64 `json:"pv_probs"`
	WDL                  []float64 `json:"wdl"`
}

// writePuzzleInput writes the hand-built demo puzzles and the source fixture's into one CSV and returns
// its path and rows by id.
func writePuzzleInput(t *testing.T, dir string) (string, map[string][]string) {
	t.Helper()
	fixture, err := os.ReadFile(puzzleFixture)
	if err != nil {
		t.Fatal(err)
	}
	text := demoPuzzles + strings.SplitN(string(fixture), "\n", 2)[1]
	in := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string][]string{}
	for _, r := range rows[1:] {
		byID[r[0]] = r
	}
	return in, byID
}

// TestPuzzlesMatchPredict grades the fixture and the hand-built puzzles, then recomputes every field of every
// line from predict's probabilities of each position of the line (with the game so far as --moves).
func TestPuzzlesMatchPredict(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	in, byID := writePuzzleInput(t, dir)
	models := []string{""} // the demo network
	// A real network too, when the shared models are here: its probabilities are not the demo's round ones.
	if _, err := os.Stat(filepath.Join(testutil.Root(t), "..", "shared", "models", "maia-1100.onnx")); err == nil {
		models = append(models, testutil.Shared(t, "models", "maia-1100.onnx"))
	}
	out := filepath.Join(dir, "out")
	args := []string{"puzzles", in, "-o", out, "-q", "--batch-size", "3"}
	for _, m := range models {
		args = append(args, "--model", m) // "" is the demo network
	}
	code, stdout, stderr := runCLI(t, env, args...)
	if code != 0 {
		t.Fatalf("puzzles: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "solve rate") {
		t.Errorf("no summary table on stdout: %q", stdout)
	}
	lines := readLines(t, filepath.Join(out, "puzzles.jsonl"))
	if want := 5 * len(models); len(lines) != want {
		t.Fatalf("%d lines, want %d (5 good puzzles per model)", len(lines), want)
	}
	for _, l := range lines {
		var got puzzleLine
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		row := byID[got.ID]
		model := got.Model
		if model == model0.DemoName {
			model = ""
		}
		moves := strings.Fields(row[2])
		var n, hits int
		logP, logNorm := 0.0, 0.0
		solved := true
		var pv, wdl []float64
		for ply := 1; ply < len(moves); ply++ {
			ps, top, w := predictMoves(t, env, model, row[1], moves[:ply])
			p := ps[moves[ply]]
			pv = append(pv, p)
			if ply == 1 {
				wdl = w
			}
			if ply%2 == 1 {
				n++
				if top == moves[ply] {
					hits++
				} else {
					solved = false
				}
				logP += math.Log(p)
				logNorm += math.Log(float64(len(ps)) * p)
			}
		}
		close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*max(1, math.Abs(b)) }
		rating, _ := strconv.Atoi(row[3])
		if got.Rating != rating || strings.Join(got.Themes, " ") != row[7] || got.Solved != solved ||
			!close(got.Score, float64(hits)/float64(n)) || !close(got.Perplexity, math.Exp(-logP/float64(n))) ||
			!close(got.NormalizedPerplexity, math.Exp(-logNorm/float64(n))) || len(got.PVProbs) != len(pv) {
			t.Errorf("%s on %s: %+v\nwant solved %v score %v perplexity %v normalized %v pv %v", got.ID, got.Model, got,
				solved, float64(hits)/float64(n), math.Exp(-logP/float64(n)), math.Exp(-logNorm/float64(n)), pv)
			continue
		}
		for k := range pv {
			if !close(got.PVProbs[k], pv[k]) {
				t.Errorf("%s pv_probs[%d] = %v, predict %v", got.ID, k, got.PVProbs[k], pv[k])
			}
		}
		if len(got.WDL) != len(wdl) {
			t.Errorf("%s wdl %v, predict %v", got.ID, got.WDL, wdl)
		}
		for k := range wdl {
			if !close(got.WDL[k], wdl[k]) {
				t.Errorf("%s wdl %v, predict %v", got.ID, got.WDL, wdl)
			}
		}
		// The known answers on the demo network.
		if model == "" {
			switch got.ID {
			case "tDEMO1":
				if !got.Solved || got.Score != 1 {
					t.Errorf("tDEMO1 (take the queen, then the rook) not solved by the demo net: %+v", got)
				}
			case "tDEMO2":
				if got.Solved || got.Score != 0 {
					t.Errorf("tDEMO2 (a quiet move while the queen hangs) solved by the demo net: %+v", got)
				}
			}
		}
	}
	var sum struct {
		Models []struct {
			Overall  struct{ Count, Solved int }
			ByRating map[string]struct{ Count int } `json:"by_rating"`
		} `json:"models"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	// Ratings 900, 1200, 1520, 2000, 2610.
	if len(sum.Models) != len(models) || sum.Models[0].Overall.Count != 5 || sum.Models[0].ByRating["<1000"].Count != 1 ||
		sum.Models[0].ByRating["1000-1499"].Count != 1 || sum.Models[0].ByRating[">=2500"].Count != 1 {
		t.Errorf("summary %s", raw)
	}
}

// TestPuzzlesResume: a run stopped after its second puzzle (the state says so, and puzzles.jsonl holds a
// partial line written after that commit) finishes with --resume into the lines of an uninterrupted run.
func TestPuzzlesResume(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	in, _ := writePuzzleInput(t, dir)
	full := filepath.Join(dir, "full")
	base := []string{"puzzles", in, "--model", "", "--model", "", "-q", "--batch-size", "2"}
	if code, _, stderr := runCLI(t, env, append(base, "-o", full)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := readLines(t, filepath.Join(full, "puzzles.jsonl"))
	if len(want) != 10 {
		t.Fatalf("%d lines, want 10", len(want))
	}
	// The first model done, then the second model's first two puzzles (records 0 and 1).
	cut := filepath.Join(dir, "cut")
	os.MkdirAll(cut, 0o755)
	kept := strings.Join(want[:7], "\n") + "\n"
	os.WriteFile(filepath.Join(cut, "puzzles.jsonl"), []byte(kept+`{"id":"tB0`), 0o644)
	state, _ := json.Marshal(map[string]any{"inputs": []string{in}, "models": []string{"", ""}, "model": 1, "records": 2, "bytes": len(kept), "errors": 0})
	os.WriteFile(filepath.Join(cut, "puzzles.state.json"), state, 0o644)
	if code, _, stderr := runCLI(t, env, append(base, "-o", cut)...); code != ExitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("rerun without --resume: exit %d %q, want 2 naming --resume", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, append(base, "-o", cut, "--resume")...); code != 0 {
		t.Fatalf("--resume: exit %d: %s", code, stderr)
	}
	if got := readLines(t, filepath.Join(cut, "puzzles.jsonl")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("resumed lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPuzzlesFilter: --filter keeps exactly the puzzles that leela-interp's rules keep, computed here from
// predict's probabilities, writes them unchanged as a puzzle CSV, and that CSV reads as input again.
func TestPuzzlesFilter(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	in, byID := writePuzzleInput(t, dir)
	big := "" // the demo network, or maia-1100 when present; the sparring net is the demo network
	if _, err := os.Stat(filepath.Join(testutil.Root(t), "..", "shared", "models", "maia-1100.onnx")); err == nil {
		big = testutil.Shared(t, "models", "maia-1100.onnx")
	}
	type th struct{ hard, correct, forcing float64 }
	for i, o := range []th{{0.05, 0.5, 0.7}, {1.01, 0, 0}, {0.5, 0, 0}, {1.01, 0.35, 0.5}} {
		out := filepath.Join(dir, "sel"+strconv.Itoa(i))
		f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		code, _, stderr := runCLI(t, env, "puzzles", in, "--filter", "--model", big, "--sparring", "", "-o", out, "-q",
			"--hard-p", f(o.hard), "--correct-p", f(o.correct), "--forcing-p", f(o.forcing))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var want []string
		for _, id := range []string{"tDEMO1", "tDEMO2", "tB001", "tB002", "tB003"} { // input order
			row := byID[id]
			moves := strings.Fields(row[2])
			if len(moves)-1 <= 2 || strings.Contains(" "+row[7]+" ", " mateIn1 ") {
				continue
			}
			s1, _, _ := predictMoves(t, env, "", row[1], moves[:1])
			s2, _, _ := predictMoves(t, env, "", row[1], moves[:2])
			if !(s1[moves[1]] < o.hard && s2[moves[2]] > o.forcing) {
				continue
			}
			ok := true
			for ply := 1; ply < len(moves); ply += 2 {
				b, _, _ := predictMoves(t, env, big, row[1], moves[:ply])
				ok = ok && b[moves[ply]] > o.correct
			}
			if ok {
				want = append(want, strings.Join(row, ","))
			}
		}
		raw, err := os.ReadFile(filepath.Join(out, "filtered.csv"))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if got[0] != strings.Join([]string{"PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes", "GameUrl", "OpeningTags"}, ",") {
			t.Errorf("header %q", got[0])
		}
		// The CSV writer quotes the field with a space that the fixture quotes too; compare parsed rows.
		gotRows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var gotJoined []string
		for _, r := range gotRows[1:] {
			gotJoined = append(gotJoined, strings.Join(r, ","))
		}
		if strings.Join(gotJoined, "\n") != strings.Join(want, "\n") {
			t.Errorf("thresholds %+v: kept\n%s\nwant\n%s", o, strings.Join(gotJoined, "\n"), strings.Join(want, "\n"))
		}
		t.Logf("thresholds %+v: %d kept", o, len(want))
		if i == 1 {
			if len(want) == 0 {
				t.Fatalf("loose thresholds keep nothing: the test checks nothing")
			}
			code, _, stderr := runCLI(t, env, "batch", filepath.Join(out, "filtered.csv"), "--lens", "activation", "-o", filepath.Join(dir, "acts"), "-q")
			if code != 0 {
				t.Errorf("batch on the filtered CSV: exit %d: %s", code, stderr)
			}
		}
	}
}

// TestPuzzlesFilterResume stops --filter at every commit in turn (both passes), as a kill would, and
// finishes each with --resume: filtered.csv must equal an uninterrupted run's, and no state file is left.
func TestPuzzlesFilterResume(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	in, _ := writePuzzleInput(t, dir)
	// Thresholds under which the demo networks keep some puzzles and drop others in each pass.
	base := []string{"puzzles", in, "--filter", "--model", "", "--sparring", "", "-q", "--batch-size", "2",
		"--hard-p", "1.01", "--correct-p", "0", "--forcing-p", "0"}
	clean := filepath.Join(dir, "clean")
	if code, _, stderr := runCLI(t, env, append(base, "-o", clean)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(filepath.Join(clean, "filtered.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(want), "\n"); n < 3 {
		t.Fatalf("the clean run keeps %d rows: the test proves little", n-1)
	}
	errStop := errors.New("stopped at a commit (test)")
	defer func() { commitFault = nil }()
	stops := 0
	for k := 1; ; k++ {
		out := filepath.Join(dir, fmt.Sprintf("cut%d", k))
		commitFault = func(_ string, n int) error {
			if n == k {
				return errStop
			}
			return nil
		}
		code, _, stderr := runCLI(t, env, append(base, "-o", out)...)
		commitFault = nil
		if code == 0 {
			break // k is past the last commit
		}
		if code != ExitFailure || !strings.Contains(stderr, errStop.Error()) {
			t.Fatalf("stop at commit %d: exit %d %q", k, code, stderr)
		}
		stops++
		if code, _, stderr := runCLI(t, env, append(base, "-o", out, "--resume")...); code != 0 {
			t.Fatalf("resume after commit %d: exit %d: %s", k, code, stderr)
		}
		got, err := os.ReadFile(filepath.Join(out, "filtered.csv"))
		if err != nil || string(got) != string(want) {
			t.Fatalf("resume after a stop at commit %d: filtered.csv\n%s\nwant\n%s (%v)", k, got, want, err)
		}
		for _, n := range []string{"filter.state.json", "filter.hard", "filtered.csv.part"} {
			if _, err := os.Stat(filepath.Join(out, n)); err == nil {
				t.Errorf("after the resume of commit %d, %s is left", k, n)
			}
		}
	}
	if stops < 4 {
		t.Fatalf("only %d commits to stop at", stops)
	}
	t.Logf("%d stop points, each resumed to the clean run's filtered.csv", stops)
}
