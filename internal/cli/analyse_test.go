package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

type envelope struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	Model         struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
	} `json:"model"`
	Lens struct {
		Name    string         `json:"name"`
		Options map[string]any `json:"options"`
	} `json:"lens"`
	Position struct {
		FEN   string   `json:"fen"`
		Moves []string `json:"moves"`
	} `json:"position"`
	Outputs struct {
		Moves []struct {
			UCI string  `json:"uci"`
			P   float64 `json:"p"`
		} `json:"moves"`
		WDL   []float64 `json:"wdl"`
		Value float64   `json:"value"`
	} `json:"outputs"`
	Results map[string]struct {
		DType string          `json:"dtype"`
		Shape []int           `json:"shape"`
		Data  json.RawMessage `json:"data"`
	} `json:"results"`
}

// TestAnalyseSaliencyMaia is issue 5's acceptance 5: a heatmap in JSON, and saliency.npy plus
// input_grad.npy with --format npy; the NPY rows equal the JSON data.
func TestAnalyseSaliencyMaia(t *testing.T) {
	maia := testutil.Shared(t, "models/maia-1100.onnx")
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	fen := "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3"
	code, stdout, stderr := runCLI(t, env, "analyse", "--model", maia, "--lens", "saliency", "--fen", fen)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var e envelope
	if err := json.Unmarshal([]byte(stdout), &e); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if e.Format != "lczerolens-analysis" || e.Model.SHA256 == "" || e.Lens.Name != "saliency" || e.Position.FEN != fen {
		t.Fatalf("envelope: %+v", e)
	}
	if len(e.Outputs.WDL) != 3 || math.Abs(e.Outputs.WDL[0]-e.Outputs.WDL[2]-e.Outputs.Value) > 1e-6 || len(e.Outputs.Moves) != 5 {
		t.Errorf("outputs: %+v", e.Outputs)
	}
	sal, ok := e.Results["saliency"]
	if !ok || sal.DType != "float32" || len(sal.Shape) != 2 || sal.Shape[0] != 8 || sal.Shape[1] != 8 {
		t.Fatalf("saliency result: %+v", sal)
	}
	var heat [][]float32
	if err := json.Unmarshal(sal.Data, &heat); err != nil || len(heat) != 8 || len(heat[0]) != 8 {
		t.Fatalf("heatmap data: %v", err)
	}
	// grad x input on the current piece planes is zero on empty squares (a4 is empty).
	if heat[3][0] != 0 {
		t.Errorf("saliency on empty a4 = %g, want 0", heat[3][0])
	}

	dir := filepath.Join(t.TempDir(), "npy")
	code, _, stderr = runCLI(t, env, "analyse", "--model", maia, "--lens", "saliency", "--fen", fen, "--format", "npy", "-o", dir)
	if code != 0 {
		t.Fatalf("npy: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"saliency.npy", "input_grad.npy", "positions.jsonl", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s", name)
		}
	}
	f, err := os.Open(filepath.Join(dir, "saliency.npy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shape, data, err := npy.Read(f)
	if err != nil || len(shape) != 3 || shape[0] != 1 {
		t.Fatalf("saliency.npy shape %v: %v", shape, err)
	}
	for r := 0; r < 8; r++ {
		for c := 0; c < 8; c++ {
			if data[r*8+c] != heat[r][c] {
				t.Fatalf("saliency.npy [%d][%d] = %g, JSON %g", r, c, data[r*8+c], heat[r][c])
			}
		}
	}
	testutil.NumpyManifest(t, dir, true)
	// --format npy without -o is a usage error.
	if code, _, stderr := runCLI(t, env, "analyse", "--model", maia, "--lens", "saliency", "--startpos", "--format", "npy"); code != ExitUsage || !strings.Contains(stderr, "-o") {
		t.Errorf("npy without -o: exit %d %q", code, stderr)
	}
}

// TestLensesList checks the registry listing and the per-model compatibility marks.
func TestLensesList(t *testing.T) {
	code, stdout, _ := runCLI(t, nil, "lenses", "list", "--json")
	if code != 0 {
		t.Fatal(code)
	}
	var all []lensJSON
	if err := json.Unmarshal([]byte(stdout), &all); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, l := range all {
		names[l.Name] = true
		if l.Doc == "" || l.Compatible != nil {
			t.Errorf("lens %+v", l)
		}
	}
	for _, want := range []string{"activation", "gradient", "saliency"} {
		if !names[want] {
			t.Errorf("lenses list lacks %s", want)
		}
	}
	code, stdout, _ = runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}, "lenses", "list", "--model", testutil.Shared(t, "models/tinygyal-8.onnx"))
	if code != 0 || !strings.Contains(stdout, "compatible") {
		t.Fatalf("lenses list --model: %d %q", code, stdout)
	}
	if code, stdout, _ = runCLI(t, nil, "lenses", "describe", "saliency"); code != 0 || !strings.Contains(stdout, "--attribution") {
		t.Errorf("describe: %d %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, nil, "lenses", "describe", "nosuch"); code != ExitUsage || !strings.Contains(stderr, "saliency") {
		t.Errorf("describe unknown: %d %q", code, stderr)
	}
}
