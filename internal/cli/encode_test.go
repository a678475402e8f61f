package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/npy"
)

func TestNewCmdEncodeFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    EncodeOptions
		wantErr bool
	}{
		{args: []string{"--startpos", "--moves", "e2e4 e7e5"}, want: EncodeOptions{Pos: positionFlags{Startpos: true, Moves: "e2e4 e7e5"}, Format: "json"}},
		{args: []string{"--fen", "8/8/8/8/8/8/8/K6k w - - 0 1", "--format", "npy", "-o", "x.npy"}, want: EncodeOptions{Pos: positionFlags{FEN: "8/8/8/8/8/8/8/K6k w - - 0 1"}, Format: "npy", Output: "x.npy"}},
		{args: []string{"--moves", ""}, want: EncodeOptions{Format: "json"}},
		{args: []string{"--fen", "x", "--startpos"}, wantErr: true},
		{args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		io, _, _, _ := TestIO()
		var got *EncodeOptions
		cmd := NewCmdEncode(NewFactory(io, "test"), func(o *EncodeOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(io.Out)
		cmd.SetErr(io.ErrOut)
		err := cmd.Execute()
		if tt.wantErr {
			if err == nil {
				t.Errorf("%v: no error", tt.args)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if got.Pos.FEN != tt.want.Pos.FEN || got.Pos.Startpos != tt.want.Pos.Startpos || got.Pos.Moves != tt.want.Pos.Moves || got.Format != tt.want.Format || got.Output != tt.want.Output {
			t.Errorf("%v: got %+v, want %+v", tt.args, *got, tt.want)
		}
	}
}

type refRecord struct {
	FENStart string   `json:"fen_start"`
	Moves    []string `json:"moves_from_fen"`
	FENAfter string   `json:"fen_after"`
	Planes   [][2]any `json:"planes"`
	Legal    []struct {
		UCI     string `json:"uci"`
		NNIndex int    `json:"nn_index"`
	} `json:"legal_moves"`
}

func readRefs(t testing.TB, path string) []refRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []refRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r refRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// refPlanes expands lc0's [mask_hex, value] planes to [112*64].
func refPlanes(t testing.TB, r refRecord) []float32 {
	t.Helper()
	out := make([]float32, 112*64)
	for p, e := range r.Planes {
		mask, err := strconv.ParseUint(strings.TrimPrefix(e[0].(string), "0x"), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		v := float32(e[1].(float64))
		for sq := 0; sq < 64; sq++ {
			if mask>>sq&1 == 1 {
				out[p*64+sq] = v
			}
		}
	}
	return out
}

// TestEncodeMatchesLc0 runs `lczerolens encode` (JSON and NPY) on every reference position of one net's
// dump and compares planes and legal-move indices with lc0's.
func TestEncodeMatchesLc0(t *testing.T) {
	refs := readRefs(t, sharedPath(t, "reference/lc0/maia-1100.refdump.jsonl"))
	dir := t.TempDir()
	for i, r := range refs {
		args := []string{"encode", "--moves", strings.Join(r.Moves, " ")}
		if r.FENStart == "startpos" || r.FENStart == "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1" {
			args = append(args, "--startpos")
		} else {
			args = append(args, "--fen", r.FENStart)
		}
		code, stdout, stderr := runCLI(t, nil, args...)
		if code != 0 {
			t.Fatalf("record %d: exit %d: %s", i, code, stderr)
		}
		var doc struct {
			FEN    string          `json:"fen"`
			Planes [][][]float32   `json:"planes"`
			Legal  []legalMoveJSON `json:"legal"`
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Fatal(err)
		}
		want := refPlanes(t, r)
		for p := 0; p < 112; p++ {
			for rank := 0; rank < 8; rank++ {
				for file := 0; file < 8; file++ {
					if got := doc.Planes[p][rank][file]; got != want[p*64+rank*8+file] {
						t.Fatalf("record %d plane %d [%d][%d] = %g, lc0 %g", i, p, rank, file, got, want[p*64+rank*8+file])
					}
				}
			}
		}
		legal := map[string]int{}
		for _, m := range doc.Legal {
			legal[m.UCI] = m.Index
		}
		if len(legal) != len(r.Legal) {
			t.Fatalf("record %d: %d legal moves, lc0 %d", i, len(legal), len(r.Legal))
		}
		for _, m := range r.Legal {
			if idx, ok := legal[m.UCI]; !ok || idx != m.NNIndex {
				t.Fatalf("record %d: move %s index %d (present %v), lc0 %d", i, m.UCI, idx, ok, m.NNIndex)
			}
		}
		// The NPY form holds the same planes as float32 [1,112,8,8].
		file := filepath.Join(dir, "p.npy")
		if code, _, stderr := runCLI(t, nil, append(args, "--format", "npy", "-o", file)...); code != 0 {
			t.Fatalf("npy: %s", stderr)
		}
		fh, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		shape, data, err := npy.Read(fh)
		fh.Close()
		if err != nil || len(shape) != 4 || shape[0] != 1 || shape[1] != 112 {
			t.Fatalf("npy shape %v: %v", shape, err)
		}
		for k := range want {
			if data[k] != want[k] {
				t.Fatalf("record %d: npy plane value %d = %g, lc0 %g", i, k, data[k], want[k])
			}
		}
	}
}
