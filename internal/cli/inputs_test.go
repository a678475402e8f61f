package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// puzzleFixture is the small puzzle CSV of the source package's tests.
const puzzleFixture = "../source/testdata/puzzles.csv"

// compressWith writes path compressed by tool (gzip, bzip2, zstd) next to it and returns the new name.
func compressWith(t *testing.T, tool, path, dst string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s tool absent: %v", tool, err)
	}
	out, err := exec.Command(tool, "-c", path).Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestBatchPuzzlesCompressedAndMultiple: batch on a puzzle CSV keeps the puzzle fields in positions.jsonl;
// the same input compressed (gzip, bzip2, zstd) or split in two files gives the same rows and tensors.
func TestBatchPuzzlesCompressedAndMultiple(t *testing.T) {
	lib := testutil.ORTLib(t)
	env := map[string]string{"LCZEROLENS_ORT_LIB": lib}
	dir := t.TempDir()
	text, err := os.ReadFile(puzzleFixture)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(plain, text, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(text), "\n")
	first := filepath.Join(dir, "first.csv")   // header and two puzzles
	second := filepath.Join(dir, "second.csv") // header and the rest
	os.WriteFile(first, []byte(strings.Join(lines[:3], "")), 0o644)
	os.WriteFile(second, []byte(lines[0]+strings.Join(lines[3:], "")), 0o644)

	run := func(name string, inputs ...string) (rows []map[string]any, npy []byte) {
		out := filepath.Join(dir, name)
		args := append([]string{"batch"}, inputs...)
		args = append(args, "--lens", "activation", "--pattern", "^block0/conv2/relu$", "-o", out, "-q")
		if code, _, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		for _, l := range readLines(t, filepath.Join(out, "positions.jsonl")) {
			var r map[string]any
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatal(err)
			}
			delete(r, "source")
			rows = append(rows, r)
		}
		npy, err := os.ReadFile(filepath.Join(out, "block0.conv2.relu_output.npy"))
		if err != nil {
			t.Fatal(err)
		}
		return rows, npy
	}
	want, wantNpy := run("plain", plain)
	if len(want) != 3 {
		t.Fatalf("%d rows, want the 3 good puzzles", len(want))
	}
	r := want[1]
	if r["puzzle_id"] != "tB002" || r["rating"] != 1520.0 || r["ply"] != 1.0 || r["move"] != "e7e5" ||
		!slices.Equal(toStrings(r["themes"]), []string{"opening", "short"}) ||
		!slices.Equal(toStrings(r["solution"]), []string{"e7e5", "g1f3", "b8c6"}) ||
		r["fen"] != "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1" {
		t.Errorf("row of puzzle tB002: %v", r)
	}
	for _, tc := range []struct {
		name   string
		inputs []string
	}{
		{"gzip", []string{compressWith(t, "gzip", plain, filepath.Join(dir, "p.csv.gz"))}},
		{"bzip2", []string{compressWith(t, "bzip2", plain, filepath.Join(dir, "p.csv.bz2"))}},
		{"zstd", []string{compressWith(t, "zstd", plain, filepath.Join(dir, "p.csv.zst"))}},
		{"two", []string{first, second}},
		{"two-mixed", []string{compressWith(t, "zstd", first, filepath.Join(dir, "first.csv.zst")), second}},
	} {
		got, gotNpy := run(tc.name, tc.inputs...)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) || string(gotNpy) != string(wantNpy) {
			t.Errorf("%s: rows %s\nwant %s (or the tensors differ)", tc.name, gj, wj)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
