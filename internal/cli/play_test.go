package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/play"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

func TestNewCmdPlayFlags(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		kind    string
		temp    float64
		gamma   float64
		wantErr string
	}{
		{"defaults", []string{"--white", "a", "--black", "b", "-o", "g.pgn"}, play.Argmax, 1, 1, ""},
		{"sample", []string{"--sampler", "sample", "--temperature", "0.5"}, play.Sample, 0.5, 1, ""},
		{"utility argmax by default", []string{"--sampler", "utility", "--gamma", "0.25"}, play.Utility, 0, 0.25, ""},
		{"utility drawn", []string{"--sampler", "utility", "--temperature", "2"}, play.Utility, 2, 1, ""},
		{"positional", []string{"x.pgn"}, "", 0, 0, "unknown command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := parseFlags(t, NewCmdPlay, tt.args, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			if got.Sampler.Kind != tt.kind || got.Sampler.Temperature != tt.temp || got.Sampler.Gamma != tt.gamma || got.MaxPlies != 400 {
				t.Errorf("got %+v", *got)
			}
		})
	}
}

// TestPlayArgmaxIsPredict plays maia-1100 against tinygyal-8 with argmax twice (the PGNs must be the same)
// and checks each network move against predict's top move for the same position with its history, run
// through the predict command (its own encoding and decoding path), for every move of the first game and
// a sample of the others.
func TestPlayArgmaxIsPredict(t *testing.T) {
	maia := testutil.Shared(t, "models/maia-1100.onnx")
	tiny := testutil.Shared(t, "models/tinygyal-8.onnx")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	openings := filepath.Join(testutil.Root(t), "internal/play/testdata/openings.pgn")
	var texts []string
	for i := 0; i < 2; i++ {
		out := filepath.Join(dir, "g"+string(rune('0'+i))+".pgn")
		code, stdout, stderr := runCLI(t, env, "play", "--white", maia, "--black", tiny, "--openings", openings,
			"--book-plies", "2", "--max-plies", "40", "-o", out)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "maia-1100") || !strings.Contains(stdout, "elo difference") {
			t.Errorf("no result table: %q", stdout)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(raw))
	}
	if texts[0] != texts[1] {
		t.Fatal("two argmax runs wrote different games")
	}
	pr := board.NewPGNReader(strings.NewReader(texts[0]))
	checked := 0
	for gi := 0; ; gi++ {
		g, err := pr.Next()
		if err != nil {
			break
		}
		if g.Tag("Termination") == "" || g.Tag("PlyCount") == "" {
			t.Errorf("game %d lacks tags: %v", gi, g.Tags)
		}
		nets := map[string]string{"maia-1100": maia, "tinygyal-8": tiny}
		var hist []string
		for ply, m := range g.Moves {
			net := nets[g.Tag("White")]
			if ply%2 == 1 {
				net = nets[g.Tag("Black")]
			}
			if ply >= 2 && (gi == 0 || ply%9 == 0) {
				args := []string{"predict", "--model", net, "--fen", g.StartFEN, "--top", "1", "--json"}
				if len(hist) > 0 {
					args = append(args, "--moves", strings.Join(hist, " "))
				}
				code, stdout, stderr := runCLI(t, env, args...)
				if code != 0 {
					t.Fatalf("predict: exit %d: %s", code, stderr)
				}
				doc := decodePredict(t, stdout)
				if doc.Moves[0].UCI != m.UCI() {
					t.Errorf("game %d ply %d (%s): played %s, predict's top move %s", gi, ply, filepath.Base(net), m.UCI(), doc.Moves[0].UCI)
				}
				checked++
			}
			hist = append(hist, m.UCI())
		}
	}
	if checked < 30 {
		t.Errorf("only %d moves checked", checked)
	}
}
