package board

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type refRecord struct {
	Name         string               `json:"name"`
	FenStart     string               `json:"fen_start"`
	MovesFromFen []string             `json:"moves_from_fen"`
	FenAfter     string               `json:"fen_after"`
	Rule50       int                  `json:"rule50_ply"`
	Repetitions  int                  `json:"repetitions"`
	InputFormat  int                  `json:"input_format"`
	Planes       [][2]json.RawMessage `json:"planes"`
	LegalMoves   []struct {
		UCI     string `json:"uci"`
		Lc0     string `json:"lc0_internal"`
		NNIndex int    `json:"nn_index"`
	} `json:"legal_moves"`
}

func readRefdumps(t *testing.T) map[string][]refRecord {
	t.Helper()
	dir := sharedDir(t, "reference", "lc0")
	files, err := filepath.Glob(filepath.Join(dir, "*.refdump.jsonl"))
	if err != nil || len(files) == 0 {
		t.Skipf("no refdump files in %s", dir)
	}
	out := map[string][]refRecord{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			var r refRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], r)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}
	return out
}

// refPlanes expands the [mask_hex, value] pairs into dense planes.
func refPlanes(t *testing.T, r refRecord) []float32 {
	t.Helper()
	if len(r.Planes) != NumPlanes {
		t.Fatalf("%s: %d planes", r.Name, len(r.Planes))
	}
	out := make([]float32, NumPlanes*64)
	for i, pl := range r.Planes {
		var hexs string
		var val float64
		if err := json.Unmarshal(pl[0], &hexs); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(pl[1], &val); err != nil {
			t.Fatal(err)
		}
		mask, err := strconv.ParseUint(strings.TrimPrefix(hexs, "0x"), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		for sq := 0; sq < 64; sq++ {
			if mask&(1<<uint(sq)) != 0 {
				out[i*64+(sq/8)*8+sq%8] = float32(val)
			}
		}
	}
	return out
}

// TestRefdumpPlanesAndPolicy is acceptance test 1: planes, legal move sets and
// policy indices against lc0's own output for every record of every refdump.
func TestRefdumpPlanesAndPolicy(t *testing.T) {
	all := readRefdumps(t)
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
			g, err := ParseGame(r.FenStart, strings.Join(r.MovesFromFen, " "))
			if err != nil {
				t.Errorf("%s %s: %v", file, r.Name, err)
				continue
			}
			// lc0 prints its own move counter in the last field; compare the rest.
			if got := g.Current().FEN(); fenHead(got) != fenHead(r.FenAfter) {
				t.Errorf("%s %s: fen after %q, want %q", file, r.Name, got, r.FenAfter)
			}
			if g.Repetitions() != r.Repetitions {
				t.Errorf("%s %s: repetitions %d, want %d", file, r.Name, g.Repetitions(), r.Repetitions)
			}
			want := refPlanes(t, r)
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
	b, err := os.ReadFile(filepath.Join(sharedDir(t, "reference", "lc0"), "policy_index_1858.json"))
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
