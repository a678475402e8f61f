package board

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// readDumps reads every reference dump matching pattern in ../shared/<sub...>, keyed by file name, skipping
// the test when there is none.
func readDumps(t *testing.T, pattern string, sub ...string) map[string][]testutil.RefRecord {
	t.Helper()
	dir := testutil.Shared(t, sub...)
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(files) == 0 {
		testutil.Missing(t, "no %s files in %s", pattern, dir)
	}
	out := map[string][]testutil.RefRecord{}
	for _, f := range files {
		out[filepath.Base(f)] = testutil.ReadRefdump(t, f)
	}
	return out
}

// TestRefdumpPlanesAndPolicy is acceptance test 1: planes, legal move sets and
// policy indices against lc0's own output for every record of every refdump.
func TestRefdumpPlanesAndPolicy(t *testing.T) {
	all := readDumps(t, "*.refdump.jsonl", "reference", "lc0")
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	total := 0
	for _, file := range names {
		for _, r := range all[file] {
			total++
			if r.InputFormat != 1 {
				t.Errorf("%s %s: input format %d, test covers 1", file, r.Name, r.InputFormat)
				continue
			}
			g, err := ParseGame(r.FENStart, strings.Join(r.MovesFromFEN, " "))
			if err != nil {
				t.Errorf("%s %s: %v", file, r.Name, err)
				continue
			}
			// lc0 prints its own move counter in the last field; compare the rest.
			if got := g.Current().FEN(); fenHead(got) != fenHead(r.FENAfter) {
				t.Errorf("%s %s: fen after %q, want %q", file, r.Name, got, r.FENAfter)
			}
			if g.Repetitions() != r.Repetitions {
				t.Errorf("%s %s: repetitions %d, want %d", file, r.Name, g.Repetitions(), r.Repetitions)
			}
			want := testutil.DecodePlanes(t, r)
			got := make([]float32, NumPlanes*64)
			g.Encode(FillFENOnly, got)
			for i := range got {
				if got[i] != want[i] {
					pl, sq := i/64, i%64
					t.Errorf("%s %s: plane %d square %s: got %v, want %v", file, r.Name, pl, Square(sq), got[i], want[i])
					break
				}
			}
			p := g.Current()
			moves, idx := LegalIndices(p)
			gotSet := map[string]int{}
			for i, m := range moves {
				gotSet[m.UCI()] = idx[i]
			}
			if len(gotSet) != len(r.LegalMoves) {
				t.Errorf("%s %s: %d legal moves, want %d", file, r.Name, len(gotSet), len(r.LegalMoves))
			}
			for _, lm := range r.LegalMoves {
				i, ok := gotSet[lm.UCI]
				if !ok {
					t.Errorf("%s %s: legal move %s missing", file, r.Name, lm.UCI)
					continue
				}
				if i != lm.NNIndex {
					t.Errorf("%s %s: %s index %d, want %d", file, r.Name, lm.UCI, i, lm.NNIndex)
				}
				// lc0's internal notation parses to the same move.
				m, err := p.ParseMove(lm.Lc0)
				if err != nil || m.UCI() != lm.UCI {
					t.Errorf("%s %s: ParseMove(%q) = %v, %v; want %s", file, r.Name, lm.Lc0, m, err, lm.UCI)
				}
				back, err := MoveFromIndex(p, lm.NNIndex)
				if err != nil || back.UCI() != lm.UCI {
					t.Errorf("%s %s: MoveFromIndex(%d) = %v, %v; want %s", file, r.Name, lm.NNIndex, back, err, lm.UCI)
				}
			}
			mask := make([]float32, PolicySize)
			LegalMask(p, mask)
			n := 0
			for _, v := range mask {
				n += int(v)
			}
			if n != len(r.LegalMoves) {
				t.Errorf("%s %s: mask has %d ones, want %d", file, r.Name, n, len(r.LegalMoves))
			}
		}
	}
	if total == 0 {
		t.Fatal("no records")
	}
	t.Logf("%d records from %d files", total, len(names))
}

func TestPolicyNames(t *testing.T) {
	names := PolicyNames()
	if len(names) != PolicySize {
		t.Fatalf("%d names", len(names))
	}
	sum := sha256.Sum256([]byte(strings.Join(names, ",")))
	if got, want := hex.EncodeToString(sum[:]), "89f7e8b772633e70c06fae4caac5a2858eeeee5c357b19cd355553f79b51b231"; got != want {
		t.Errorf("sha256 %s, want %s", got, want)
	}
	b, err := os.ReadFile(filepath.Join(testutil.Shared(t, "reference", "lc0"), "policy_index_1858.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref []string
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref) != len(names) {
		t.Fatalf("reference has %d names", len(ref))
	}
	for i := range ref {
		if ref[i] != names[i] {
			t.Fatalf("name %d: %s, want %s", i, names[i], ref[i])
		}
	}
}

func fenHead(fen string) string {
	f := strings.Fields(fen)
	if len(f) > 5 {
		f = f[:5]
	}
	return strings.Join(f, " ")
}
