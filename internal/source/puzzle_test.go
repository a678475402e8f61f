package source

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// puzzleRows reads the fixture with encoding/csv: the expected puzzles, independent of the walker's parsing.
func puzzleRows(t *testing.T, text string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows[1:]
}

// notnilAfter plays moves (UCI) from fen with notnil/chess and returns placement and side to move.
func notnilAfter(t *testing.T, fen string, moves []string) string {
	t.Helper()
	g := testutil.NotnilGame(t, fen, moves)
	return strings.Join(strings.Fields(g.Position().String())[:2], " ")
}

func placement(fen string) string { return strings.Join(strings.Fields(fen)[:2], " ") }

func TestWalkPuzzles(t *testing.T) {
	text := readFixture(t, "puzzles.csv")
	rows := puzzleRows(t, text)
	for _, solution := range []bool{false, true} {
		var items []*Item
		var hist []int
		var bads []*Bad
		records, err := Walk(strings.NewReader(text), "p.csv", Puzzles, Options{Solution: solution}, func(it *Item) error {
			cp := *it
			hist = append(hist, it.History.Ply())
			if it.History.Start().FEN() != it.Puzzle.FEN && placement(it.History.Start().FEN()) != placement(it.Puzzle.FEN) {
				t.Errorf("history of %s starts at %s, want the CSV's FEN", it.Puzzle.ID, it.History.Start().FEN())
			}
			cp.History = nil
			items = append(items, &cp)
			return nil
		}, func(b *Bad) error { bads = append(bads, b); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if records != len(rows) {
			t.Fatalf("%d records, want %d (the header is none)", records, len(rows))
		}
		if len(bads) != 1 || bads[0].Record != 2 || bads[0].Line != 4 || !strings.Contains(bads[0].Reason, "e2e5") {
			t.Fatalf("bad records %+v, want record 2 (line 4) naming e2e5", bads)
		}
		k := 0
		for r, row := range rows {
			if r == 2 {
				continue
			}
			moves := strings.Fields(row[2])
			last := 1
			if solution {
				last = len(moves) - 1
			}
			for ply := 1; ply <= last; ply++ {
				it := items[k]
				if it.Record != r || it.Ply != ply || hist[k] != ply || it.Next == nil || it.Next.UCI() != moves[ply] {
					t.Fatalf("solution=%v item %d: record %d ply %d (history %d) next %v, want record %d ply %d next %s",
						solution, k, it.Record, it.Ply, hist[k], it.Next, r, ply, moves[ply])
				}
				if got, want := placement(it.Pos.FEN()), notnilAfter(t, row[1], moves[:ply]); got != want {
					t.Fatalf("%s ply %d: position %s, notnil %s", row[0], ply, got, want)
				}
				p := it.Puzzle
				if p.ID != row[0] || strings.Join(p.Themes, " ") != row[7] || !slices.Equal(p.Solution(), moves[1:]) ||
					!slices.Equal(p.Columns, row) {
					t.Fatalf("puzzle %+v, want row %v", p, row)
				}
				k++
			}
		}
		if k != len(items) {
			t.Fatalf("solution=%v: %d items, want %d", solution, len(items), k)
		}
		if items[0].Puzzle.Rating != 900 || items[len(items)-1].Puzzle.Rating != 2610 {
			t.Errorf("ratings %d, %d: want 900, 2610", items[0].Puzzle.Rating, items[len(items)-1].Puzzle.Rating)
		}
	}
}

func TestPuzzleHeaderChecked(t *testing.T) {
	_, err := Walk(strings.NewReader("a,b,c\n1,2,3\n"), "other.csv", Puzzles, Options{}, func(*Item) error { return nil }, func(*Bad) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not a lichess puzzle CSV") {
		t.Fatalf("another CSV: %v, want an error saying it is not a puzzle CSV", err)
	}
	// A headerless puzzle file (lichess's older dumps) reads as one.
	rows := strings.SplitN(readFixture(t, "puzzles.csv"), "\n", 2)
	items, bads, _ := collectOpts(t, rows[1], Puzzles, Options{})
	if len(items) != 3 || len(bads) != 1 {
		t.Fatalf("headerless: %d items %d bad, want 3 and 1", len(items), len(bads))
	}
}

func TestDetectTypeCompressed(t *testing.T) {
	for path, want := range map[string]Type{
		"a.csv": Puzzles, "lichess_db_puzzle.csv.zst": Puzzles, "g.PGN.GZ": PGN, "l.epd.bz2": FEN, "x.jsonl.zst": JSONL,
	} {
		if got, err := DetectType(path, ""); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := DetectType("a.gz", ""); err == nil {
		t.Errorf("a.gz: want an error (no type under the compression)")
	}
	if got, err := DetectType("-", "puzzles"); err != nil || got != Puzzles {
		t.Errorf("--input-type puzzles: %q, %v", got, err)
	}
}

// compressed returns text compressed by each codec: gzip and zstd from Go encoders, bzip2 from the
// bzip2 tool (Go has no bzip2 encoder), which the test needs.
func compressed(t *testing.T, text string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(text))
	zw.Close()
	out["gzip"] = gz.Bytes()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	out["zstd"] = enc.EncodeAll([]byte(text), nil)
	enc.Close()
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = strings.NewReader(text)
	bz, err := cmd.Output()
	if err != nil {
		t.Fatalf("bzip2 tool: %v (install bzip2)", err)
	}
	out["bzip2"] = bz
	return out
}

// TestCompressedEqualsPlain walks every input type plain and compressed: the same items and bad records.
func TestCompressedEqualsPlain(t *testing.T) {
	for _, tc := range []struct {
		typ  Type
		text string
	}{
		{PGN, twoGamesAndABadOne},
		{Puzzles, readFixture(t, "puzzles.csv")},
		{FEN, "8/8/8/8/8/8/8/K6k w - - 0 1\nnot a fen\n4k3/8/8/8/8/8/4P3/4K3 w - - 0 1\n"},
		{JSONL, `{"fen":"startpos","moves":"e2e4"}` + "\n"},
	} {
		summarize := func(r []byte) string {
			var b strings.Builder
			n, err := Walk(bytes.NewReader(r), "x", tc.typ, Options{Solution: true}, func(it *Item) error {
				b.WriteString(it.Pos.FEN() + "|")
				return nil
			}, func(bd *Bad) error { b.WriteString(bd.Reason + "|"); return nil })
			if err != nil {
				t.Fatalf("%s: %v", tc.typ, err)
			}
			b.WriteString(strings.Repeat("r", n))
			return b.String()
		}
		want := summarize([]byte(tc.text))
		for codec, data := range compressed(t, tc.text) {
			if got := summarize(data); got != want {
				t.Errorf("%s %s: %q\nwant plain %q", tc.typ, codec, got, want)
			}
		}
	}
	// A truncated stream is a read error naming the codec, not a silent end.
	data := compressed(t, readFixture(t, "puzzles.csv"))["zstd"]
	_, err := Walk(bytes.NewReader(data[:len(data)/2]), "x", Puzzles, Options{}, func(*Item) error { return nil }, func(*Bad) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("truncated zstd: %v, want a zstd error", err)
	}
}

// TestWalkOffset numbers records from Options.Offset, as the second file of a run is.
func TestWalkOffset(t *testing.T) {
	items, bads, n := collectOpts(t, readFixture(t, "puzzles.csv"), Puzzles, Options{Offset: 10, Shard: Shard{Index: 0, Count: 2}})
	if n != 14 || len(bads) != 1 || bads[0].Record != 12 {
		t.Fatalf("records %d, bad %+v: want 14 and record 12", n, bads)
	}
	for _, it := range items {
		if it.Record%2 != 0 {
			t.Errorf("shard 0/2 holds record %d", it.Record)
		}
	}
}
