package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

type compareLine struct {
	Record int     `json:"record"`
	FEN    string  `json:"fen"`
	TopA   string  `json:"top_a"`
	TopB   string  `json:"top_b"`
	Agree  bool    `json:"agree"`
	PA     float64 `json:"p_a"`
	PB     float64 `json:"p_b"`
	JSD    float64 `json:"jsd"`
	A      struct {
		Value float64   `json:"value"`
		WDL   []float64 `json:"wdl"`
	} `json:"a"`
}

func compareRun(t *testing.T, env map[string]string, a, b, in, out string) ([]compareLine, map[string]any) {
	t.Helper()
	code, _, stderr := runCLI(t, env, "compare", "--model", a, "--model", b, in, "-o", out, "-q", "--batch-size", "2")
	if code != 0 {
		t.Fatalf("compare: exit %d: %s", code, stderr)
	}
	var lines []compareLine
	for _, l := range readLines(t, filepath.Join(out, "compare.jsonl")) {
		var c compareLine
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, c)
	}
	raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return lines, doc["summary"].(map[string]any)
}

// TestCompareSelfAndPredict: a network against itself agrees everywhere with JSD 0 and value correlation
// 1; the demo network against maia-1100 matches the JSD, tops and cross probabilities recomputed from
// predict's distributions of each position.
func TestCompareSelfAndPredict(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	in, byID := writePuzzleInput(t, dir)
	lines, sum := compareRun(t, env, "", "", in, filepath.Join(dir, "self"))
	if len(lines) != 5 {
		t.Fatalf("%d positions, want the 5 good puzzles' positions", len(lines))
	}
	for _, l := range lines {
		if !l.Agree || l.JSD != 0 || l.TopA != l.TopB || l.PA != l.PB {
			t.Errorf("self-compare: %+v", l)
		}
	}
	if sum["agreement"] != 1.0 || sum["mean_jsd"] != 0.0 {
		t.Errorf("self-compare summary %v", sum)
	}
	if c, ok := sum["value_correlation"].(float64); !ok || math.Abs(c-1) > 1e-9 {
		t.Errorf("self-compare value correlation %v, want 1", sum["value_correlation"])
	}
	maia := testutil.Shared(t, "models", "maia-1100.onnx")
	lines, _ = compareRun(t, env, "", maia, in, filepath.Join(dir, "pair"))
	var disagree int
	for _, l := range lines {
		// Records in input order; record 4 is the bad puzzle.
		row := byID[[]string{"tDEMO1", "tDEMO2", "tB001", "tB002", "tBbad", "tB003"}[l.Record]]
		first := strings.Fields(row[2])[:1]
		pa, topA, _ := predictMoves(t, env, "", row[1], first)
		pb, topB, _ := predictMoves(t, env, maia, row[1], first)
		var p, q []float64
		for m, x := range pa {
			p, q = append(p, x), append(q, pb[m])
		}
		var jsd float64
		for i := range p {
			m := (p[i] + q[i]) / 2
			if p[i] > 0 {
				jsd += p[i] * math.Log2(p[i]/m) / 2
			}
			if q[i] > 0 {
				jsd += q[i] * math.Log2(q[i]/m) / 2
			}
		}
		if l.TopA != topA || l.TopB != topB || math.Abs(l.JSD-jsd) > 1e-5 || math.Abs(l.PA-pa[topB]) > 1e-6 || math.Abs(l.PB-pb[topA]) > 1e-6 {
			t.Errorf("%s: %+v\nwant tops %s %s, jsd %v, p_a %v, p_b %v", l.FEN, l, topA, topB, jsd, pa[topB], pb[topA])
		}
		if !l.Agree {
			disagree++
		}
	}
	if disagree == 0 {
		t.Errorf("the demo net and maia agree everywhere: the test would not see a swapped A and B")
	}
}

// TestCompareResumeInsideAGame: a run cut after its tenth position (inside the first game; the state says
// so and compare.jsonl holds a torn line after that commit) finishes with --resume into the lines and
// summary of an uninterrupted run; without --resume the earlier run is not overwritten.
func TestCompareResumeInsideAGame(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	pgn := filepath.Join(dir, "opera.pgn")
	if err := os.WriteFile(pgn, []byte("[Event \"a\"]\n\n"+operaGame+"\n\n[Event \"b\"]\n\n"+operaGame+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"compare", "--model", "", "--model", "", pgn, "-q", "--batch-size", "4"}
	full := filepath.Join(dir, "full")
	if code, _, stderr := runCLI(t, env, append(base, "-o", full)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := readLines(t, filepath.Join(full, "compare.jsonl"))
	if len(want) != 68 {
		t.Fatalf("%d lines, want 68", len(want))
	}
	var state map[string]any
	raw, err := os.ReadFile(filepath.Join(full, "compare.state.json"))
	if err != nil || json.Unmarshal(raw, &state) != nil {
		t.Fatalf("state: %v %s", err, raw)
	}
	cut := filepath.Join(dir, "cut")
	if err := os.MkdirAll(cut, 0o755); err != nil {
		t.Fatal(err)
	}
	kept := strings.Join(want[:10], "\n") + "\n"
	state["records"], state["open_items"], state["positions"], state["bytes"] = 0, 10, 10, len(kept)
	raw, _ = json.Marshal(state)
	os.WriteFile(filepath.Join(cut, "compare.state.json"), raw, 0o644)
	os.WriteFile(filepath.Join(cut, "compare.jsonl"), []byte(kept+`{"source":"op`), 0o644)
	if code, _, stderr := runCLI(t, env, append(base, "-o", cut)...); code != ExitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("rerun without --resume: exit %d %q, want 2 naming --resume", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, append(base, "-o", cut, "--resume")...); code != 0 {
		t.Fatalf("--resume: exit %d: %s", code, stderr)
	}
	if got := readLines(t, filepath.Join(cut, "compare.jsonl")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("resumed compare.jsonl has %d lines and differs from the uninterrupted run's %d", len(got), len(want))
	}
	a, _ := os.ReadFile(filepath.Join(full, "summary.json"))
	b, _ := os.ReadFile(filepath.Join(cut, "summary.json"))
	if string(a) != string(b) {
		t.Errorf("summary after resume\n%s\nwant\n%s", b, a)
	}
}
