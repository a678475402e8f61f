package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
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

// TestEncodeMatchesLc0 runs `lczerolens encode` (JSON and NPY) on every reference position of one net's
// dump and compares planes and legal-move indices with lc0's.
func TestEncodeMatchesLc0(t *testing.T) {
	refs := testutil.ReadRefdump(t, testutil.Shared(t, "reference/lc0/maia-1100.refdump.jsonl"))
	dir := t.TempDir()
	for i, r := range refs {
		args := []string{"encode", "--moves", strings.Join(r.MovesFromFEN, " ")}
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
		want := testutil.DecodePlanes(t, r)
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
		if len(legal) != len(r.LegalMoves) {
			t.Fatalf("record %d: %d legal moves, lc0 %d", i, len(legal), len(r.LegalMoves))
		}
		for _, m := range r.LegalMoves {
			if idx, ok := legal[m.UCI]; !ok || idx != m.NNIndex {
				t.Fatalf("record %d: move %s index %d (present %v), lc0 %d", i, m.UCI, idx, ok, m.NNIndex)
			}
		}
		// The NPY form holds the same planes as float32 [1,112,8,8].
		file := filepath.Join(dir, fmt.Sprintf("p%d.npy", i)) // a new file each time: encode does not overwrite without --force
		if code, _, stderr := runCLI(t, nil, append(args, "--format", "npy", "-o", file)...); code != 0 {
			t.Fatalf("npy: %s", stderr)
		}
		shape, data := readNPYFile(t, file)
		if len(shape) != 4 || shape[0] != 1 || shape[1] != 112 {
			t.Fatalf("npy shape %v", shape)
		}
		for k := range want {
			if data[k] != want[k] {
				t.Fatalf("record %d: npy plane value %d = %g, lc0 %g", i, k, data[k], want[k])
			}
		}
	}
}
